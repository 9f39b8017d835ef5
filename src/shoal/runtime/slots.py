"""CPU slots: at most ``n`` tasks of a query compute at once; a blocked task lends its slot.

A task doing work ahead of need (a runtime filter's input, read while the filter's
keys are still being computed) gives its slot way to any task that waits for one
(``yield_to_waiting``) and takes one back only when nobody else waits: running ahead
uses idle cores, never the slots of the tasks that compute those keys. Q21's
anti-join scan of lineitem otherwise took both slots for its 32 MiB hold before the
stages its keys come from had started: 120 ms on the critical path.
"""

from __future__ import annotations

import threading


class TaskSlots:
    """At most ``n`` tasks compute at once; a blocked task lends its slot out."""

    def __init__(self, n: int):
        self._free = max(1, n)
        self._waiting = 0  # tasks in ``acquire``: they go before those yielding
        lock = threading.Lock()
        self._turn = threading.Condition(lock)  # tasks in ``acquire``
        self._idle = threading.Condition(lock)  # tasks in ``yield_to_waiting``

    def acquire(self) -> None:
        with self._turn:
            if self._free:
                self._free -= 1
                return
            self._waiting += 1
            try:
                while not self._free:
                    self._turn.wait()
            finally:
                self._waiting -= 1
            self._free -= 1
            self._wake_idle()

    def release(self) -> None:
        with self._turn:
            self._free += 1
            if self._waiting:
                self._turn.notify()
            else:
                self._idle.notify()

    def yield_to_waiting(self) -> None:
        """Hand this task's slot to a task waiting for one, if any, and wait until a
        slot is free with nobody else waiting for it."""
        with self._turn:
            if not self._waiting:
                return
            self._free += 1
            self._turn.notify()
            while not self._free or self._waiting:
                self._idle.wait()
            self._free -= 1
            self._wake_idle()

    def _wake_idle(self) -> None:
        """A slot left over with nobody waiting: a yielding task may have it."""
        if self._free and not self._waiting:
            self._idle.notify()


__all__ = ["TaskSlots"]
