"""Geometry of the stage-graph picture: stage boxes placed as a tree, root on top.

Each stage consumes the stages it reads, so the graph is a tree rooted at the
result stage. A stage's subtree gets the width of its box or of its producers side
by side, whichever is wider, and the stage is centred over its producers; rows
(one per distance from the root) are as tall as their tallest box. Text is
monospace, so its width is estimated from the character count, no font metrics.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

FONT_SIZE = 11
CHAR_WIDTH = FONT_SIZE * 0.61  # DejaVu Sans Mono / Liberation Mono advance width
LINE_HEIGHT = 14
BOX_WIDTH = 430
BOX_PAD = 8
HEADER_HEIGHT = 22
COLUMN_GAP = 36
ROW_GAP = 124  # room for an exchange label between a producer and its consumer
MARGIN = 24
MAX_TEXT_LINES = 3  # per operator; the full text is in the tooltip


@dataclass
class OperatorLines:
    full: str
    text: list[str]  # wrapped and indented operator text
    figures: str | None  # "rows 8,590 · 495.0 ms" after a run


@dataclass
class StageBox:
    stage_id: int
    data: Mapping[str, Any]
    operators: list[OperatorLines]
    inputs: list[int]
    x: float = 0.0
    y: float = 0.0
    width: float = BOX_WIDTH
    height: float = 0.0
    row: int = 0
    subtree_width: float = 0.0
    children: list[StageBox] = field(default_factory=list)

    @property
    def centre_x(self) -> float:
        return self.x + self.width / 2

    @property
    def bottom(self) -> float:
        return self.y + self.height


@dataclass
class Layout:
    boxes: dict[int, StageBox]
    width: float
    height: float


def chars_per_line(width: float = BOX_WIDTH) -> int:
    return int((width - 2 * BOX_PAD) / CHAR_WIDTH)


def wrap(text: str, indent: int, width: int) -> list[str]:
    """``text`` wrapped at ``width`` characters, hanging-indented, at most MAX_TEXT_LINES."""
    lead = " " * indent
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=lead,
        subsequent_indent=lead + "    ",
        break_long_words=True,
        break_on_hyphens=False,
    ) or [lead]
    if len(lines) > MAX_TEXT_LINES:
        lines = lines[:MAX_TEXT_LINES]
        last = lines[-1]
        lines[-1] = (last[: width - 1] if len(last) >= width else last) + "…"
    return lines


def layout(data: Mapping[str, Any], figures: Mapping[int, list[str | None]]) -> Layout:
    """Place every stage of ``data`` (``graph_dict`` output); ``figures`` gives, per stage,
    each operator's figures line (or None)."""
    stages: Sequence[Mapping[str, Any]] = data["stages"]
    width = chars_per_line()
    boxes: dict[int, StageBox] = {}
    for stage in stages:
        sid = int(stage["stage"])
        ops = []
        for i, op in enumerate(stage["operators"]):
            fig = figures.get(sid, [])
            ops.append(
                OperatorLines(
                    op["operator"],
                    wrap(op["operator"], 2 * int(op.get("depth", 0)), width),
                    fig[i] if i < len(fig) else None,
                )
            )
        lines = sum(len(o.text) + (o.figures is not None) for o in ops)
        box = StageBox(sid, stage, ops, [int(i) for i in stage.get("inputs", [])])
        box.height = HEADER_HEIGHT + 2 * BOX_PAD + lines * LINE_HEIGHT
        boxes[sid] = box
    roots = [b for b in boxes.values() if _consumer(b) is None or _consumer(b) not in boxes]
    for box in boxes.values():
        box.children = [boxes[i] for i in box.inputs if i in boxes]

    def measure(box: StageBox, row: int) -> float:
        box.row = row
        kids = sum(measure(c, row + 1) for c in box.children)
        kids += COLUMN_GAP * max(len(box.children) - 1, 0)
        box.subtree_width = max(box.width, kids)
        return box.subtree_width

    def place(box: StageBox, left: float) -> None:
        box.x = left + (box.subtree_width - box.width) / 2
        kids = sum(c.subtree_width for c in box.children)
        kids += COLUMN_GAP * max(len(box.children) - 1, 0)
        cursor = left + (box.subtree_width - kids) / 2
        for child in box.children:
            place(child, cursor)
            cursor += child.subtree_width + COLUMN_GAP

    left = float(MARGIN)
    for root in roots:
        measure(root, 0)
        place(root, left)
        left += root.subtree_width + COLUMN_GAP
    rows = max((b.row for b in boxes.values()), default=0) + 1
    row_heights = [0.0] * rows
    for box in boxes.values():
        row_heights[box.row] = max(row_heights[box.row], box.height)
    tops = [float(MARGIN)]
    for h in row_heights[:-1]:
        tops.append(tops[-1] + h + ROW_GAP)
    for box in boxes.values():
        box.y = tops[box.row]
    total_w = left - COLUMN_GAP + MARGIN if boxes else 2 * MARGIN
    total_h = tops[-1] + row_heights[-1] + MARGIN
    return Layout(boxes, total_w, total_h)


def _consumer(box: StageBox) -> int | None:
    c = box.data.get("consumer")
    return None if c is None else int(c)
