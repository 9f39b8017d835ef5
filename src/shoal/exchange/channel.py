"""A bounded, multi-producer, single-consumer buffer of record batches.

``put`` blocks while the buffer holds ``budget_bytes`` or more (backpressure);
the time spent blocked is measured. A batch larger than the whole budget is
still admitted when the buffer is empty, so progress is always possible.
``get`` blocks until a batch arrives or every producer has closed. A cancelled
query wakes every waiter, which then raises ``QueryCancelledError``.

With a ``Reservation`` of the query's memory pool, the buffered bytes are reserved
too: a ``put`` that would take the pool past ``POOL_SHARE`` of its limit waits like
one over the buffer's own budget, except into an empty buffer (admitted anyway, so
the query progresses). Buffers are the first to give way under pressure: the
operators that can spill keep the rest of the budget.

While blocked, a task lends out its CPU slot (``Slots``). WARNING: the slot is
taken back only after the channel's lock is released — holding the lock while
waiting for a slot deadlocks against a producer that holds a slot and wants
the lock to close the channel.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import pyarrow as pa

from shoal.errors import QueryCancelledError
from shoal.memory.pool import Reservation

# Waiters re-check cancellation at least this often (seconds).
_POLL = 0.05
# Buffered batches beyond the first may fill the query's pool up to this share.
POOL_SHARE = 0.5


class Slots(Protocol):
    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def yield_to_waiting(self) -> None: ...


class NoSlots:
    """No limit on computing tasks (a task in a process of its own)."""

    def acquire(self) -> None:
        pass

    def release(self) -> None:
        pass

    def yield_to_waiting(self) -> None:
        pass


class Channel:
    def __init__(
        self,
        budget_bytes: int,
        producers: int,
        cancelled: Callable[[], bool],
        slots: Slots | None = None,
        reservation: Reservation | None = None,
    ):
        self._budget = budget_bytes
        self._reservation = reservation
        self._open_producers = producers
        self._cancelled = cancelled
        self._slots = slots or NoSlots()
        self._queue: collections.deque[pa.RecordBatch] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._failed = False
        # Figures for EXPLAIN ANALYZE.
        self.high_water_bytes = 0
        self.put_blocked_seconds = 0.0
        self.get_wait_seconds = 0.0
        self.rows = 0
        self.bytes = 0
        self.batches = 0

    def put(self, batch: pa.RecordBatch) -> None:
        size = batch.nbytes
        lent_at: float | None = None
        try:
            while True:
                with self._cond:
                    self._check_cancelled()
                    if (not self._bytes or self._bytes + size <= self._budget) and self._admit(
                        size
                    ):
                        self._queue.append(batch)
                        self._bytes += size
                        self.high_water_bytes = max(self.high_water_bytes, self._bytes)
                        self.rows += batch.num_rows
                        self.bytes += size
                        self.batches += 1
                        self._cond.notify_all()
                        return
                    if lent_at is None:
                        lent_at = time.perf_counter()
                        self._slots.release()
                    self._cond.wait(_POLL)
        finally:
            if lent_at is not None:
                self.put_blocked_seconds += time.perf_counter() - lent_at
                self._slots.acquire()

    def _admit(self, size: int) -> bool:
        r = self._reservation
        if r is None:
            return True
        if not self._bytes:
            r.force_grow(size)
            return True
        return r.try_grow(size, POOL_SHARE)

    def close(self, failed: bool = False) -> None:
        """One producer is done — or, with ``failed``, gave up: the stream is then broken
        and readers raise instead of taking what they got for all of it."""
        with self._cond:
            self._open_producers -= 1
            self._failed = self._failed or failed
            self._cond.notify_all()

    def get(self, lend_slot: bool = True) -> pa.RecordBatch | None:
        """The next batch, or None once every producer closed and the buffer is empty.

        ``lend_slot=False`` is for a reader that holds no CPU slot (the caller's thread
        reading a query's result).
        """
        lent_at: float | None = None
        try:
            while True:
                with self._cond:
                    self._check_cancelled()
                    if self._queue:
                        batch = self._queue.popleft()
                        self._bytes -= batch.nbytes
                        if self._reservation is not None:
                            self._reservation.shrink(batch.nbytes)
                        self._cond.notify_all()
                        return batch
                    if self._open_producers <= 0:
                        return None
                    if lent_at is None:
                        lent_at = time.perf_counter()
                        if lend_slot:
                            self._slots.release()
                    self._cond.wait(_POLL)
        finally:
            if lent_at is not None:
                self.get_wait_seconds += time.perf_counter() - lent_at
                if lend_slot:
                    self._slots.acquire()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while True:
            batch = self.get()
            if batch is None:
                return
            yield batch

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def _check_cancelled(self) -> None:
        if self._cancelled():
            raise QueryCancelledError("query cancelled")
        if self._failed:
            raise QueryCancelledError("query cancelled: a producer failed")
