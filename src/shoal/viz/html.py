"""The stage graph as one self-contained HTML page: inline SVG and CSS, no scripts,
nothing fetched. Stages are boxes listing their operators; each exchange is an
arrow from producer to consumer labelled with its kind, keys and partitions and,
after a run, rows, bytes, skew and producer blocked time. Hot spots (the slowest
stage, the most skewed exchange, spill) are marked and summed up above the graph.

The input is ``graph_dict`` data (what ``Result.explain_analyze_json`` returns).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from html import escape
from typing import Any

from shoal.units import human_bytes
from shoal.viz.hotspots import HotSpots, find_hot_spots
from shoal.viz.layout import (
    BOX_PAD,
    CHAR_WIDTH,
    FONT_SIZE,
    HEADER_HEIGHT,
    LINE_HEIGHT,
    Layout,
    StageBox,
    layout,
)

KIND_COLOURS = {
    "hash": "#2563eb",
    "broadcast": "#7c3aed",
    "gather": "#059669",
    "merge": "#0d9488",
    "round_robin": "#6b7280",
}
HOT = "#dc2626"
WARN = "#ea580c"
LABEL_WIDTH = 340


def render_html(data: Mapping[str, Any], title: str = "shoal stage graph", sql: str = "") -> str:
    """The whole page for ``data`` (a ``graph_dict``, analyzed or not)."""
    analyzed = bool(data.get("analyzed", True))
    hot = find_hot_spots(data)
    figures = {int(s["stage"]): _operator_figures(s, analyzed) for s in data["stages"]}
    geometry = layout(data, figures)
    svg = _svg(data, geometry, hot, analyzed)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        _summary(data, hot, analyzed),
    ]
    if sql.strip():
        parts.append(f'<pre class="sql">{escape(sql.strip())}</pre>')
    parts += [svg, "</body></html>"]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------- summary


def _summary(data: Mapping[str, Any], hot: HotSpots, analyzed: bool) -> str:
    stages = data["stages"]
    exchanges = sum(1 for s in stages if s.get("output_spec") or s.get("consumer") is not None)
    items = [f"{len(stages)} stages", f"{exchanges} exchanges"]
    if analyzed:
        items.insert(0, f"ran in {float(data.get('seconds', 0.0)) * 1000:.1f} ms")
        if hot.slowest_stage is not None:
            items.append(
                f'<span class="hot">slowest stage: {hot.slowest_stage}'
                f" ({hot.slowest_busy_seconds * 1000:.1f} ms busy)</span>"
            )
        if hot.most_skewed_exchange is not None:
            cls = "hot" if hot.skew_alarming else "mild"
            items.append(
                f'<span class="{cls}">most skewed exchange: from stage '
                f"{hot.most_skewed_exchange} (skew {_skew(hot.max_skew)})</span>"
            )
        spill = (
            ", ".join(f"stage {s}" for s, _ in hot.spills) if hot.spills else "no operator spilled"
        )
        items.append(f'<span class="{"hot" if hot.spills else "mild"}">spill: {spill}</span>')
    else:
        items.append("plan only (EXPLAIN ANALYZE adds rows, bytes, time and skew)")
    legend = " ".join(
        f'<span class="key" style="border-color:{colour};color:{colour}">{kind}</span>'
        for kind, colour in KIND_COLOURS.items()
    )
    return f'<p class="summary">{" · ".join(items)}</p><p class="legend">exchanges: {legend}</p>'


# ----------------------------------------------------------------------- SVG


def _svg(data: Mapping[str, Any], geo: Layout, hot: HotSpots, analyzed: bool) -> str:
    out = [
        f'<svg class="graph" width="{geo.width:.0f}" height="{geo.height:.0f}" '
        f'viewBox="0 0 {geo.width:.0f} {geo.height:.0f}" role="img" '
        'aria-label="stage graph">',
        "<defs>",
    ]
    for kind, colour in KIND_COLOURS.items():
        out.append(
            f'<marker id="arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
            f'fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    # Arrows under boxes, labels over everything.
    labels = []
    for box in geo.boxes.values():
        consumer = box.data.get("consumer")
        if consumer is None or int(consumer) not in geo.boxes:
            continue
        target = geo.boxes[int(consumer)]
        arrow, label = _exchange(box, target, hot, analyzed)
        out.append(arrow)
        labels.append(label)
    for box in geo.boxes.values():
        out.append(_stage(box, hot, analyzed))
    out += labels
    out.append("</svg>")
    return "\n".join(out)


def _stage(box: StageBox, hot: HotSpots, analyzed: bool) -> str:
    stage = box.data
    slow = analyzed and box.stage_id == hot.slowest_stage
    cls = "stage slowest" if slow else "stage"
    head = f"Stage {box.stage_id} · {stage.get('partitions')} tasks"
    if analyzed:
        head += f" · {float(stage.get('seconds', 0.0)) * 1000:.1f} ms"
    if stage.get("consumer") is None:
        head += " → result"
    parts = [
        f'<g id="stage-{box.stage_id}" class="{cls}">',
        f"<title>Stage {box.stage_id}: {escape(str(stage.get('output', '')))}</title>",
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{box.height:.1f}" rx="6" class="box"/>',
        f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width:.1f}" '
        f'height="{HEADER_HEIGHT}" rx="6" class="head"/>',
        f'<text x="{box.x + BOX_PAD:.1f}" y="{box.y + 15:.1f}" class="head">{escape(head)}</text>',
    ]
    if slow:
        parts.append(_badge(box.x + box.width - 8, box.y + 15, "slowest", HOT, anchor="end"))
    y = box.y + HEADER_HEIGHT + BOX_PAD + FONT_SIZE
    spilled = {i for s, i in hot.spills if s == box.stage_id}
    for index, op in enumerate(box.operators):
        parts.append(f'<g class="op"><title>{escape(op.full)}</title>')
        for line in op.text:
            parts.append(
                f'<text x="{box.x + BOX_PAD:.1f}" y="{y:.1f}" xml:space="preserve">'
                f"{escape(line)}</text>"
            )
            y += LINE_HEIGHT
        if op.figures is not None:
            indent = len(op.text[0]) - len(op.text[0].lstrip(" ")) + 2
            fig_cls = "fig spill" if index in spilled else "fig"
            parts.append(
                f'<text x="{box.x + BOX_PAD + indent * CHAR_WIDTH:.1f}" y="{y:.1f}" '
                f'class="{fig_cls}">{escape(op.figures)}</text>'
            )
            y += LINE_HEIGHT
        parts.append("</g>")
    parts.append("</g>")
    return "\n".join(parts)


def _exchange(
    producer: StageBox, consumer: StageBox, hot: HotSpots, analyzed: bool
) -> tuple[str, str]:
    stage = producer.data
    spec = stage.get("output_spec") or {}
    ex = stage.get("exchange") or {}
    kind = str(spec.get("kind") or ex.get("kind") or "hash")
    colour = KIND_COLOURS.get(kind, "#374151")
    # Entry points spread over the consumer's bottom edge in producer order.
    siblings = [c.stage_id for c in consumer.children]
    slot = siblings.index(producer.stage_id) if producer.stage_id in siblings else 0
    entry_x = consumer.x + consumer.width * (slot + 1) / (len(siblings) + 1)
    start_x, start_y = producer.centre_x, producer.y
    bend_y = consumer.bottom + 18
    path = (
        f"M{start_x:.1f},{start_y:.1f} L{start_x:.1f},{bend_y:.1f} "
        f"L{entry_x:.1f},{bend_y:.1f} L{entry_x:.1f},{consumer.bottom + 1:.1f}"
    )
    ident = f"exchange-{producer.stage_id}-{consumer.stage_id}"
    arrow = (
        f'<path id="{ident}-arrow" d="{path}" fill="none" stroke="{colour}" stroke-width="2" '
        f'marker-end="url(#arrow-{kind})"/>'
    )
    lines = [str(stage.get("output", kind))]
    partitions = spec.get("partitions")
    keys = spec.get("keys") or []
    detail = f"{producer.data.get('partitions')} → {partitions} partitions"
    if keys:
        detail += f" · keys {', '.join(keys)}"
    lines.append(detail)
    skewed = analyzed and producer.stage_id == hot.most_skewed_exchange
    if analyzed and ex:
        lines.append(
            f"{int(ex.get('rows', 0)):,} rows · {human_bytes(float(ex.get('bytes', 0)), spaced=True)}"
            f" · buffer peak {human_bytes(float(ex.get('buffer_high_water_bytes', 0)), spaced=True)}"
        )
        lines.append(
            f"skew {_skew(float(ex.get('skew', 1.0)))}"
            f" · blocked {float(ex.get('producer_blocked_seconds', 0.0)) * 1000:.1f} ms"
            f" · wait {float(ex.get('consumer_wait_seconds', 0.0)) * 1000:.1f} ms"
        )
    max_chars = int((LABEL_WIDTH - 12) / CHAR_WIDTH)
    lines = [line if len(line) <= max_chars else line[: max_chars - 1] + "…" for line in lines]
    height = 8 + LINE_HEIGHT * len(lines) + (LINE_HEIGHT if skewed else 0)
    x = start_x - LABEL_WIDTH / 2
    y = start_y - 10 - height
    stroke = (HOT if hot.skew_alarming else WARN) if skewed else colour
    parts = [
        f'<g id="{ident}" class="exchange kind-{kind}{" skewed" if skewed else ""}">',
        f"<title>exchange from stage {producer.stage_id} to stage {consumer.stage_id}: "
        f"{escape(lines[0])}</title>",
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{LABEL_WIDTH}" height="{height:.1f}" rx="4" '
        f'class="label" stroke="{stroke}"/>',
    ]
    ty = y + 4 + FONT_SIZE
    for i, line in enumerate(lines):
        cls = "lab strong" if i == 0 else "lab"
        fill = f' fill="{colour}"' if i == 0 else ""
        parts.append(
            f'<text x="{x + 6:.1f}" y="{ty:.1f}" class="{cls}"{fill}>{escape(line)}</text>'
        )
        ty += LINE_HEIGHT
    if skewed:
        parts.append(
            f'<text x="{x + 6:.1f}" y="{ty:.1f}" class="lab strong" fill="{stroke}">'
            f"▲ most skewed exchange</text>"
        )
    parts.append("</g>")
    return arrow, "\n".join(parts)


def _badge(x: float, y: float, text: str, colour: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" class="badge" '
        f'fill="{colour}">● {escape(text)}</text>'
    )


# ------------------------------------------------------------------ figures


def _operator_figures(stage: Mapping[str, Any], analyzed: bool) -> list[str | None]:
    if not analyzed:
        return [None] * len(stage["operators"])
    out: list[str | None] = []
    for op in stage["operators"]:
        items = [
            f"rows {int(op.get('rows', 0)):,}",
            f"{float(op.get('seconds_inclusive', 0.0)) * 1000:.1f} ms",
        ]
        if op.get("rows_in"):
            items.append(f"in {int(op['rows_in']):,}")
        if op.get("peak_state_rows"):
            items.append(f"state {int(op['peak_state_rows']):,} rows")
        if op.get("row_groups_read") or op.get("row_groups_skipped"):
            items.append(f"row groups {op.get('row_groups_read', 0)}/-{op['row_groups_skipped']}")
        if op.get("spilled_bytes"):
            items.append(f"SPILL {human_bytes(float(op['spilled_bytes']), spaced=True)}")
        out.append(" · ".join(items))
    return out


def _skew(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.2f}"


_CSS = """
body { font-family: 'DejaVu Sans', 'Liberation Sans', Arial, sans-serif; margin: 16px;
       color: #111827; background: #ffffff; }
h1 { font-size: 18px; margin: 0 0 6px 0; }
p.summary, p.legend { font-size: 13px; margin: 4px 0; }
.hot { color: #dc2626; font-weight: bold; }
.mild { color: #92400e; }
.key { border: 1px solid; border-radius: 3px; padding: 0 4px; margin-right: 4px; }
pre.sql { font-size: 11px; background: #f3f4f6; padding: 6px; max-height: 12em;
          overflow: auto; white-space: pre-wrap; }
svg.graph text { font-family: 'DejaVu Sans Mono', 'Liberation Mono', monospace;
                 font-size: 11px; fill: #111827; }
svg.graph rect.box { fill: #ffffff; stroke: #9ca3af; stroke-width: 1.2; }
svg.graph rect.head { fill: #e5e7eb; stroke: none; }
svg.graph g.slowest rect.box { stroke: #dc2626; stroke-width: 3; }
svg.graph g.slowest rect.head { fill: #fee2e2; }
svg.graph text.head { font-weight: bold; font-size: 12px; }
svg.graph text.fig { fill: #6b7280; }
svg.graph text.spill { fill: #dc2626; font-weight: bold; }
svg.graph text.badge { font-weight: bold; font-size: 11px; }
svg.graph rect.label { fill: #ffffff; stroke-width: 1.5; }
svg.graph g.skewed rect.label { stroke-width: 3; }
svg.graph text.strong { font-weight: bold; }
"""
