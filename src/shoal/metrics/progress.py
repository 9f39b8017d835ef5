"""Query progress: what a runtime tells a listener while tasks run, and a tracker.

A runtime calls a ``ProgressListener`` as tasks start, emit batches and finish.
``ProgressTracker`` is the listener the API uses: it sums the events per stage
under a lock and hands ``QueryProgress`` snapshots to a callback (throttled), so
a notebook or a terminal view can draw them without knowing about tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class StageShape:
    """What a listener needs to know of a stage before it runs."""

    stage_id: int
    tasks: int
    inputs: tuple[int, ...]


@runtime_checkable
class ProgressListener(Protocol):
    """Called from task threads: implementations must be thread-safe and quick."""

    def query_started(self, stages: Sequence[StageShape]) -> None: ...

    def task_started(self, stage_id: int, partition: int) -> None: ...

    def task_output(self, stage_id: int, partition: int, rows: int, nbytes: int) -> None: ...

    def task_finished(self, stage_id: int, partition: int, rows: int, nbytes: int) -> None: ...

    def query_finished(self) -> None: ...


@dataclass(frozen=True)
class StageProgress:
    stage_id: int
    tasks: int
    started: int
    finished: int
    rows: int  # rows this stage's tasks have emitted so far
    bytes: int
    inputs: tuple[int, ...]

    @property
    def done(self) -> bool:
        return self.finished >= self.tasks


@dataclass(frozen=True)
class QueryProgress:
    """A snapshot: per stage tasks done of total, rows and bytes emitted so far."""

    elapsed: float
    stages: tuple[StageProgress, ...]
    finished: bool = False

    @property
    def tasks(self) -> int:
        return sum(s.tasks for s in self.stages)

    @property
    def tasks_finished(self) -> int:
        return sum(min(s.finished, s.tasks) for s in self.stages)

    @property
    def holding_back(self) -> int | None:
        """The stage the query now waits for, or None when every stage is done.

        Stages stream into each other, so the one holding the query back is on the
        frontier: unfinished, with every input stage finished (leaf stages have none).
        Of several such stages, the one with the smallest share of its tasks done.
        """
        by_id = {s.stage_id: s for s in self.stages}
        frontier = [
            s
            for s in self.stages
            if not s.done and all(by_id[i].done for i in s.inputs if i in by_id)
        ]
        if not frontier:
            return None
        return min(frontier, key=lambda s: (s.finished / max(s.tasks, 1), s.stage_id)).stage_id


@dataclass
class _StageCounts:
    shape: StageShape
    started: int = 0
    finished: int = 0
    rows: int = 0
    bytes: int = 0


@dataclass
class ProgressTracker:
    """Sums runtime events; calls ``callback`` at most every ``interval`` seconds
    (and once more when the query ends). ``snapshot()`` may be polled instead."""

    callback: Callable[[QueryProgress], None] | None = None
    interval: float = 0.1
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stages: dict[int, _StageCounts] = field(default_factory=dict, repr=False)
    _start: float = field(default_factory=time.perf_counter, repr=False)
    _last_call: float = 0.0
    _finished: bool = False

    def query_started(self, stages: Sequence[StageShape]) -> None:
        with self._lock:
            self._start = time.perf_counter()
            self._stages = {s.stage_id: _StageCounts(s) for s in stages}
            self._finished = False

    def task_started(self, stage_id: int, partition: int) -> None:
        with self._lock:
            self._stages[stage_id].started += 1
        self._maybe_call()

    def task_output(self, stage_id: int, partition: int, rows: int, nbytes: int) -> None:
        with self._lock:
            counts = self._stages[stage_id]
            counts.rows += rows
            counts.bytes += nbytes
        self._maybe_call()

    def task_finished(self, stage_id: int, partition: int, rows: int, nbytes: int) -> None:
        # rows/bytes were already counted batch by batch through task_output.
        with self._lock:
            self._stages[stage_id].finished += 1
        self._maybe_call()

    def query_finished(self) -> None:
        with self._lock:
            self._finished = True
        if self.callback is not None:
            self.callback(self.snapshot())

    def snapshot(self) -> QueryProgress:
        with self._lock:
            stages = tuple(
                StageProgress(
                    c.shape.stage_id,
                    c.shape.tasks,
                    c.started,
                    c.finished,
                    c.rows,
                    c.bytes,
                    c.shape.inputs,
                )
                for c in sorted(self._stages.values(), key=lambda c: c.shape.stage_id)
            )
            return QueryProgress(time.perf_counter() - self._start, stages, self._finished)

    def _maybe_call(self) -> None:
        if self.callback is None:
            return
        now = time.perf_counter()
        with self._lock:
            if now - self._last_call < self.interval:
                return
            self._last_call = now
        self.callback(self.snapshot())
