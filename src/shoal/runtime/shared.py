"""Write-once values that the tasks of one query in one process may share.

Tasks share no mutable state; but every task of a broadcast join receives the
same build side, and building its hash index once per process instead of once
per task is pure savings. ``SharedValues.get(key, make)`` runs ``make`` in the
first task that asks and hands its (immutable) result to the others, who wait
without holding a CPU slot.

A ``make`` that fails is not kept: its error goes to the task that ran it, and the
tasks that were waiting (and any later one, such as a re-run of the failed task)
try ``make`` again themselves — so a transient failure does not outlive its task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from shoal.exchange.channel import Slots


class _Once:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None


class SharedValues:
    def __init__(self, slots: Slots):
        self._slots = slots
        self._lock = threading.Lock()
        self._values: dict[Hashable, _Once] = {}

    def pending(self, key: Hashable) -> bool:
        """Whether some task is making ``key``'s value right now (not yet done)."""
        with self._lock:
            once = self._values.get(key)
        return once is not None and not once.done.is_set()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        while True:
            with self._lock:
                once = self._values.get(key)
                first = once is None
                if once is None:
                    once = self._values[key] = _Once()
            if first:
                try:
                    once.value = make()
                except BaseException as err:
                    once.error = err
                    with self._lock:
                        # Forget the failure: the next task to ask makes it again.
                        if self._values.get(key) is once:
                            del self._values[key]
                    raise
                finally:
                    once.done.set()
                return once.value
            if not once.done.is_set():
                self._slots.release()
                try:
                    once.done.wait()
                finally:
                    self._slots.acquire()
            if once.error is None:
                return once.value
            # The maker failed: loop and make it ourselves (or wait for whoever does).
