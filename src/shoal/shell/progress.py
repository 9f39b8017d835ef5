"""A live progress display on a terminal: one line per stage, redrawn in place.

Nothing is drawn for a query that ends within ``delay`` seconds (about one), nor
when the output is not a terminal (``enabled=False``). While drawn, each stage shows
its tasks done of total, the rows and bytes it has emitted, and the stage holding
the query back is marked; the display is erased before the result is printed.
"""

from __future__ import annotations

import shutil
import threading
from types import TracebackType
from typing import TextIO

from shoal.metrics.progress import ProgressTracker, QueryProgress
from shoal.units import human_bytes

BAR_WIDTH = 16
MAX_STAGE_LINES = 12


class TerminalProgress:
    """A context manager: ``with TerminalProgress(stream) as p: con.sql(q, progress=p.tracker)``."""

    def __init__(
        self, stream: TextIO, enabled: bool, delay: float = 1.0, interval: float = 0.1
    ) -> None:
        self.stream = stream
        self.enabled = enabled
        self.delay = delay
        self.interval = interval
        self.tracker = ProgressTracker()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._drawn_lines = 0
        self.draws = 0

    def __enter__(self) -> TerminalProgress:
        if self.enabled:
            self._thread = threading.Thread(target=self._loop, name="shoal-progress", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._erase()

    def _loop(self) -> None:
        if self._stop.wait(self.delay):
            return
        while not self._stop.is_set():
            snapshot = self.tracker.snapshot()
            if snapshot.stages and not snapshot.finished:
                self._draw(render_progress(snapshot, shutil.get_terminal_size().columns))
            self._stop.wait(self.interval)

    def _draw(self, lines: list[str]) -> None:
        out = self._erase_sequence() + "\n".join(lines) + "\n"
        self.stream.write(out)
        self.stream.flush()
        self._drawn_lines = len(lines)
        self.draws += 1

    def _erase_sequence(self) -> str:
        # Cursor up to the first drawn line, then clear to the end of the screen.
        return f"\x1b[{self._drawn_lines}F\x1b[J" if self._drawn_lines else ""

    def _erase(self) -> None:
        if self._drawn_lines:
            self.stream.write(self._erase_sequence())
            self.stream.flush()
            self._drawn_lines = 0


def render_progress(p: QueryProgress, width: int = 80) -> list[str]:
    """The display's lines for one snapshot (plain text; no escape sequences)."""
    holding = p.holding_back
    done = p.tasks_finished
    lines = [f"running {p.elapsed:5.1f} s · {done}/{p.tasks} tasks done"]
    stages = sorted(p.stages, key=lambda s: -s.stage_id)
    if len(stages) > MAX_STAGE_LINES:
        # Keep the unfinished stages in view; finished ones are summed up in one line.
        open_ = [s for s in stages if not s.done][:MAX_STAGE_LINES]
        finished = len(stages) - len(open_)
        stages = open_
        lines.append(f"  ({finished} stages finished)")
    for s in stages:
        filled = round(BAR_WIDTH * min(s.finished, s.tasks) / max(s.tasks, 1))
        bar = "#" * filled + "-" * (BAR_WIDTH - filled)
        mark = "  <- holding the query back" if s.stage_id == holding else ""
        line = (
            f"  stage {s.stage_id:>2} [{bar}] {s.finished}/{s.tasks} tasks"
            f"  {s.rows:>12,} rows  {human_bytes(s.bytes, spaced=True):>10}{mark}"
        )
        lines.append(line[:width])
    return lines
