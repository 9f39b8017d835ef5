"""The local executor: task descriptions run on threads of this process.

One executor per materialized query. Every submitted attempt gets a thread that
waits for one of ``max_running_tasks`` CPU slots (``TaskSlots``), runs
``run_spooled_task`` and completes its future. The attempts of one query share
write-once values (``SharedValues``: a broadcast join builds its index once for
all its tasks) — all of them read the same committed inputs, so sharing stays
correct when one attempt is a re-run.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from shoal.errors import QueryCancelledError
from shoal.physical.context import Settings
from shoal.runtime.protocol import TaskDescription, TaskReport
from shoal.runtime.shared import SharedValues
from shoal.runtime.slots import TaskSlots
from shoal.runtime.task import TaskServices, run_spooled_task


class ThreadTaskHandle:
    def __init__(self, task: TaskDescription, query_cancelled: threading.Event):
        self.task = task
        self._future: Future[TaskReport] = Future()
        self._cancelled = threading.Event()
        self._query_cancelled = query_cancelled
        self.thread: threading.Thread | None = None

    @property
    def future(self) -> Future[TaskReport]:
        return self._future

    @property
    def worker(self) -> str | None:
        return f"local:{self.thread.name}" if self.thread is not None else None

    def cancel(self) -> None:
        self._cancelled.set()

    def stopping(self) -> bool:
        return self._cancelled.is_set() or self._query_cancelled.is_set()


class ThreadExecutor:
    """Runs each task description on its own thread; at most ``max_running_tasks`` compute."""

    def __init__(self, settings: Settings):
        self.slots = TaskSlots(settings.max_running_tasks)
        self.services = TaskServices(self.slots, SharedValues(self.slots))
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def submit(self, task: TaskDescription) -> ThreadTaskHandle:
        handle = ThreadTaskHandle(task, self._stop)
        th = threading.Thread(
            target=self._run,
            args=(handle,),
            name=f"shoal-s{task.stage.id}-t{task.partition}-a{task.attempt}",
            daemon=True,
        )
        handle.thread = th
        with self._lock:
            if self._stop.is_set():
                raise RuntimeError("the executor is closed")
            self._threads.append(th)
        th.start()
        return handle

    def _run(self, handle: ThreadTaskHandle) -> None:
        self.slots.acquire()
        try:
            if handle.stopping():
                raise QueryCancelledError("query cancelled")
            report = run_spooled_task(handle.task, self.services, handle.stopping)
        except BaseException as err:  # noqa: BLE001 - the future carries every failure
            handle.future.set_exception(err)
        else:
            handle.future.set_result(report)
        finally:
            self.slots.release()

    def close(self) -> None:
        """Stop every running attempt and wait for its thread."""
        self._stop.set()
        with self._lock:
            threads = list(self._threads)
        for th in threads:
            th.join()


__all__ = ["ThreadExecutor", "ThreadTaskHandle"]
