"""CPU slots: at most ``n`` tasks of a query compute at once; a blocked task lends its slot."""

from __future__ import annotations

import threading


class TaskSlots:
    """At most ``n`` tasks compute at once; a blocked task lends its slot out."""

    def __init__(self, n: int):
        self._sem = threading.Semaphore(max(1, n))

    def acquire(self) -> None:
        self._sem.acquire()

    def release(self) -> None:
        self._sem.release()


__all__ = ["TaskSlots"]
