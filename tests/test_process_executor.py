"""The executor protocol across a process boundary.

A test executor runs every task description in worker *processes* (a spawn-started
``ProcessPoolExecutor``): descriptions, reports and errors all cross by pickle, and
the workers read and write the spool by the paths the descriptions name. A TPC-H
query with an injected transient fault must give the reference answer, the fault's
error coming back from the worker intact and the task re-run there.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from support.tpch import assert_matches_answer, query_text, tpch_connection

from shoal.runtime.faults import Fault, FaultKind
from shoal.runtime.protocol import TaskDescription, TaskReport
from shoal.runtime.task import TaskServices, run_spooled_task


def _run_in_worker(task: TaskDescription) -> TaskReport:
    return run_spooled_task(task, TaskServices.standalone(), lambda: False, f"pid:{os.getpid()}")


class _Handle:
    def __init__(self, future: Future[TaskReport]) -> None:
        self._future = future

    @property
    def future(self) -> Future[TaskReport]:
        return self._future

    @property
    def worker(self) -> str | None:
        return "process pool"

    def cancel(self) -> None:
        self._future.cancel()  # only stops an attempt that has not started


class ProcessExecutor:
    def __init__(self, workers: int) -> None:
        self.pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        self.errors: list[BaseException] = []

    def submit(self, task: TaskDescription) -> _Handle:
        future = self.pool.submit(_run_in_worker, task)
        future.add_done_callback(
            lambda f: (
                self.errors.append(f.exception()) if not f.cancelled() and f.exception() else None
            )
        )
        return _Handle(future)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def test_tasks_run_in_worker_processes(tpch_sf01_dir: Path, tmp_path: Path) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=2, retry_policy="task", spool=str(tmp_path))
    made: list[ProcessExecutor] = []

    def factory(settings: object) -> ProcessExecutor:
        made.append(ProcessExecutor(2))
        return made[-1]

    con.executor_factory = factory  # type: ignore[assignment]
    result = con.sql(query_text(3), faults=[Fault(FaultKind.TRANSIENT, 2, 1, 0)])
    assert_matches_answer(result.to_arrow(), "0.1", 3)
    assert len(made) == 1
    errors = made[0].errors
    assert [type(e).__name__ for e in errors] == ["TransientError"]
    assert "injected transient fault (stage=2, partition=1, attempt=0)" in str(errors[0])
    assert result.metrics.stages[2].attempts_per_task == {0: 1, 1: 2}
    workers = {w for sm in result.metrics.stages.values() for w in sm.workers.values()}
    assert workers and all(w.startswith("pid:") and w != f"pid:{os.getpid()}" for w in workers)
    assert list(tmp_path.iterdir()) == []
