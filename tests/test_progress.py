"""Progress reports: the runtime's events summed per stage, the callback API, the
frontier stage that holds a query back, and the terminal view's lines."""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import shoal
from shoal.metrics.progress import ProgressTracker, QueryProgress, StageProgress, StageShape
from shoal.shell.progress import TerminalProgress, render_progress


def _connection(reservations_dir: Path) -> shoal.Connection:
    con = shoal.connect(partitions=3)
    con.register_parquet("reservations", reservations_dir)
    return con


SQL = "SELECT issuer, count(*) AS n FROM reservations GROUP BY issuer ORDER BY n DESC LIMIT 3"


def test_callback_sees_every_stage_and_the_end(reservations_dir: Path) -> None:
    con = _connection(reservations_dir)
    seen: list[QueryProgress] = []
    result = con.sql(SQL, progress=seen.append)
    graph = con.prepare(SQL).graph
    final = seen[-1]
    assert final.finished
    assert {s.stage_id: s.tasks for s in final.stages} == {
        s.id: s.num_partitions for s in graph.stages
    }
    assert all(s.finished == s.tasks == s.started for s in final.stages)
    assert final.tasks_finished == final.tasks and final.holding_back is None
    root = next(s for s in final.stages if s.stage_id == graph.root.id)
    assert root.rows == result.num_rows == 3
    # The scan stage emitted one partial group per issuer and task, fed by 200,000 rows.
    exchanges = result.metrics.exchanges
    for s in final.stages:
        if s.stage_id in exchanges:
            assert s.rows == exchanges[s.stage_id].rows
            assert s.bytes > 0


def test_connection_setting_and_override(reservations_dir: Path) -> None:
    calls: list[str] = []
    con = shoal.connect(partitions=2, progress=lambda p: calls.append("connection"))
    con.register_parquet("reservations", reservations_dir)
    con.sql(SQL)
    assert calls and set(calls) == {"connection"}
    calls.clear()
    con.sql(SQL, progress=lambda p: calls.append("query"))
    assert calls and set(calls) == {"query"}


def test_callbacks_are_throttled() -> None:
    calls: list[QueryProgress] = []
    tracker = ProgressTracker(calls.append, interval=10.0)
    tracker.query_started([StageShape(0, 2, ())])
    for _ in range(100):
        tracker.task_output(0, 0, 1, 8)
    assert len(calls) == 1  # the first event, then nothing for ten seconds
    tracker.query_finished()
    assert len(calls) == 2 and calls[-1].finished and calls[-1].stages[0].rows == 100


def test_holding_back_is_the_slowest_frontier_stage() -> None:
    def stage(sid: int, tasks: int, done: int, inputs: tuple[int, ...]) -> StageProgress:
        return StageProgress(sid, tasks, tasks, done, 0, 0, inputs)

    # 0 and 1 feed 2; 0 is done, so 1 (a leaf still running) and not 2 holds back.
    p = QueryProgress(1.0, (stage(0, 2, 2, ()), stage(1, 4, 1, ()), stage(2, 2, 0, (0, 1))))
    assert p.holding_back == 1
    # Both leaves running: the one with the smaller share done.
    p = QueryProgress(1.0, (stage(0, 2, 1, ()), stage(1, 4, 1, ()), stage(2, 2, 0, (0, 1))))
    assert p.holding_back == 1
    p = QueryProgress(1.0, (stage(0, 2, 2, ()), stage(1, 4, 4, ()), stage(2, 2, 0, (0, 1))))
    assert p.holding_back == 2
    lines = render_progress(p, width=200)
    assert lines[0].startswith("running") and "6/8 tasks done" in lines[0]
    assert any("stage  2" in line and "holding the query back" in line for line in lines)
    assert all(len(line) <= 40 for line in render_progress(p, width=40))


def test_terminal_view_draws_only_when_enabled_and_late() -> None:
    def run(enabled: bool, delay: float, seconds: float) -> tuple[str, int]:
        out = io.StringIO()
        with TerminalProgress(out, enabled=enabled, delay=delay, interval=0.02) as view:
            view.tracker.query_started([StageShape(0, 1, ())])
            view.tracker.task_started(0, 0)
            time.sleep(seconds)
        return out.getvalue(), view.draws

    text, draws = run(True, 0.05, 0.3)
    assert draws > 1 and "stage  0" in text and "0/1 tasks" in text
    assert text.endswith("\x1b[J")  # erased before anything else is printed
    assert run(False, 0.0, 0.2) == ("", 0)  # not a terminal
    assert run(True, 5.0, 0.1) == ("", 0)  # a quick query shows nothing
    assert not [t for t in threading.enumerate() if t.name == "shoal-progress"]
