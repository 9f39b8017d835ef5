"""A query's memory budget: a pool that stateful structures reserve from.

Every structure that holds data for longer than one batch — aggregate states, join
build sides and their indexes, sort buffers, top-k heaps, exchange buffers, the
scan-share cache, runtime filter keys, result batches waiting for the caller —
takes a ``Reservation`` of the query's ``MemoryPool`` and grows it by the real
``nbytes`` of the Arrow / numpy data it is about to keep:

* ``try_grow`` answers False when the budget would be exceeded: the holder then
  spills (aggregate, join, sort), waits (exchange buffers) or does without (the
  scan-share cache, runtime filters);
* ``grow`` raises ``ResourceExhaustedError`` naming the operator, stage, task, what
  it needed and the budget — for what can neither spill nor wait;
* ``force_grow`` admits the bytes anyway and is only for the one batch that must
  move for the query to make progress (an exchange whose buffer is empty).

One pool per query, shared by its tasks (thread-safe). The runtime frees every
reservation a task still holds when the task ends, however it ends, so the pool
is back at zero after every query.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Callable
from enum import Enum

import pyarrow as pa

from shoal.errors import ResourceExhaustedError
from shoal.memory.allocator import resident_bytes
from shoal.metrics.operator import OperatorMetrics
from shoal.units import human_bytes

UNLIMITED = 1 << 62
# Operator state (aggregate tables, build sides, sort buffers, heaps) may fill the
# pool up to this share of its limit; the rest is room for what no reservation
# tracks — the batches in flight between operators (a scan's decoded batch, the
# copy an exchange's split makes, a kernel's scratch), about three batches per
# running task — and for the pages the allocators keep after frees. Without it the
# reserved state alone reaches the budget and the process's memory goes past it by
# everything in flight. At 75% the 50 M-row GROUP BY of bench/memory.py under
# 512 MiB peaked at 834-1,073 MiB RSS (Arrow alone 506 MiB: 386 reserved, 120 in
# flight; ~180 MiB kept by mimalloc), over its bound of budget + 300 MiB; at 50%
# 720 MiB, no slower, and TPC-H SF 1 under 1 GiB still spills nothing.
STATE_SHARE = 0.5


class HolderKind(Enum):
    """What a reservation holds. Operator state counts against ``STATE_SHARE`` of the
    limit (and the limit); batches buffered between operators (exchange and result
    buffers) only against the share their holder asks for, so buffers waiting for a
    consumer never leave that consumer's state without room (a grace partition of a
    few bytes once failed under a 16 KiB budget because exchange buffers held the
    whole state share)."""

    STATE = "state"
    BUFFER = "buffer"


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM = _malloc_trim()

# glibc's mallopt parameter for the size from which malloc maps memory of its own.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 2 << 20
# ... and for the free space at the top of an arena past which free() gives it back.
_M_TRIM_THRESHOLD = -1
_TRIM_THRESHOLD = 8 << 20
# ... and for how many arenas malloc keeps (by default eight per core, one per thread
# until then). One: numpy allocates with the GIL held, so per-thread arenas buy no
# concurrency; they only multiply the freed chunks each arena keeps for its own thread.
# Over TPC-H SF 1 (5 runs of each query in one process, no collect at a query's end)
# the peak RSS was 659 MiB with one arena against 707-752 MiB with the default.
_M_ARENA_MAX = -8
_ARENA_MAX = 1


def fix_mmap_threshold() -> None:
    """Fix glibc's mmap threshold at 2 MiB and its arenas at one (once per process;
    not where ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_ARENA_MAX`` already set them, nor
    off glibc).

    Why: numpy's arrays come from malloc, and glibc raises the threshold to the size of
    every mapped block freed (up to 32 MiB), so after the first few queries arrays of
    many MiB (join indexes, hashes of a whole build side) come from the arenas, where
    their freed space stays in the process (fragmented: ``malloc_trim`` gets little
    back). Measured over TPC-H SF 1 Q9, Q18, Q21, Q21 in one process: RSS with nothing
    live after them 252 / 255 / 340 / 358 MB by default, 236 / 154 / 171 / 170 MB with
    the threshold at 128 KiB. At 128 KiB a batch's arrays (~1 MiB) are mapped and
    unmapped one by one, ~12% more CPU over Q1, 3, 9, 10, 13, 18, 21; at 2 MiB they
    are not (CPU within the noise) and that sequence peaked at 605–623 MB against
    737–798 MB by default (550–565 at 128 KiB, 664–671 at 8 MiB).

    The trim threshold is fixed at 8 MiB with it: setting the mmap threshold turns
    glibc's dynamic adjustment off, which leaves the trim threshold at 128 KiB, and
    then every free() leaving that much at an arena's top hands it back to the system
    only for the next batch to fault it in again (TPC-H SF 1, Q3, 5, 9, 10, 13, 17,
    18, 21 in one process: 560–590k page faults and 3.6–3.7 s system CPU, against
    250–275k and 2.0–2.5 s with a 32 MiB trim threshold; 8 MiB costs the same CPU
    as 32 MiB for a lower peak). The explicit ``release_unused`` calls still trim
    everything.
    """
    global _MMAP_FIXED
    if _MMAP_FIXED or not sys.platform.startswith("linux"):
        return
    _MMAP_FIXED = True
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    if "MALLOC_ARENA_MAX" not in os.environ:
        mallopt(_M_ARENA_MAX, _ARENA_MAX)
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
    mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)


_MMAP_FIXED = False


def release_thread_unused(held_bytes: int, pool: MemoryPool) -> None:
    """Arrow's allocator only: free the calling thread's empty pages (mimalloc keeps a
    heap per thread; one that exits leaves its pages to be reclaimed later). Called at
    the end of every task, on its thread, with the peak of the task's reservations;
    microseconds.

    Frees when the task held 1/64 of the budget or the query has come near its budget
    (its pool peaked at half the limit): there pages kept for reuse are memory the
    budget does not see (the 50 M-row GROUP BY of ``bench/memory.py`` under 512 MiB
    peaked at 847 MiB RSS freeing only past 1/16, above its bound of budget + 300 MiB).
    Under a loose budget the next task soon reuses them instead (``allocator.py``:
    every page handed back is faulted in and zeroed again; TPC-H SF 1 freed 6.8 GiB
    that way when every task of 16 MiB or more freed its pages).
    """
    if held_bytes >= pool.limit // 64 or 2 * pool.peak >= pool.limit:
        pa.default_memory_pool().release_unused()


class PressureRelease:
    """Frees the calling thread's empty allocator pages every ``limit / 8`` bytes its
    task outputs while the query's pool is under pressure (it has peaked at half its
    limit), as ``release_thread_unused`` does when a task ends. Why: a task that runs
    the whole query (a scan feeding a spilling aggregate) never ends before the peak,
    and the pages its batches leave behind — freed by the consumer's thread, returned
    to this thread's heap — are memory no reservation sees. Costs nothing without
    pressure; a few milliseconds per release with it.
    """

    def __init__(self, pool: MemoryPool):
        self._pool = pool
        self._every = max(1, pool.limit // 8)
        self._since = 0

    def output(self, batch: pa.RecordBatch) -> None:
        if 2 * self._pool.peak < self._pool.limit:
            return  # no pressure: not even the batch's size is looked at
        self._since += batch.nbytes
        if self._since >= self._every:
            self._since = 0
            pa.default_memory_pool().release_unused()


def release_if_above(retain_bytes: int) -> None:
    """``release_unused`` when the process holds more than ``retain_bytes`` resident
    (or where that cannot be read); called when a query ends."""
    resident = resident_bytes()
    if resident is None or resident > retain_bytes:
        release_unused()


def release_unused() -> None:
    """Hand the pages the allocators keep after frees back to the system.

    Called where an operator has just dropped a large share of its memory (a run or
    a set of partitions written to disk, a grace partition finished) and when a
    query ends. Arrow's allocator (mimalloc, jemalloc) keeps freed pages for reuse;
    numpy's arrays come from the C library's malloc, whose arenas keep what was freed
    inside them (measured: 200 MiB free in glibc's arenas after TPC-H Q18, with no
    live array). Without this the process's RSS stays at the high-water mark of
    everything freed so far and the next query or spill starts from there. A few
    milliseconds; never called per batch.
    """
    pa.default_memory_pool().release_unused()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


# ``MemoryPool.under_pressure`` holds from 1 / PRESSURE_DIVISOR of the limit reserved.
PRESSURE_DIVISOR = 4


class MemoryPool:
    def __init__(self, limit_bytes: int = UNLIMITED):
        fix_mmap_threshold()
        self.limit = limit_bytes
        self._reserved = 0
        self._state_reserved = 0  # of which operator state (HolderKind.STATE)
        self.peak = 0
        self._lock = threading.Lock()
        self._reservations: list[Reservation] = []

    @property
    def reserved(self) -> int:
        return self._reserved

    @property
    def available(self) -> int:
        return max(0, self.limit - self._reserved)

    @property
    def state_reserved(self) -> int:
        return self._state_reserved

    @property
    def under_pressure(self) -> bool:
        """A quarter of the limit or more is reserved: from here on, memory nobody counts
        (a buffer pinned by a zero-copy slice of it) can decide whether the query fits,
        and cheap shortcuts that hold such memory should give way to owned copies."""
        return self._reserved * PRESSURE_DIVISOR >= self.limit

    def state_headroom(self) -> int:
        """Bytes operator state could still grow by right now."""
        with self._lock:
            return max(
                0,
                min(
                    int(self.limit * STATE_SHARE) - self._state_reserved,
                    self.limit - self._reserved,
                ),
            )

    def _take(self, n: int, force: bool, share: float, state: bool) -> bool:
        with self._lock:
            if not force:
                if self._reserved + n > self.limit * share:
                    return False
                if state and self._state_reserved + n > self.limit * STATE_SHARE:
                    return False
            self._reserved += n
            if state:
                self._state_reserved += n
            if self._reserved > self.peak:
                self.peak = self._reserved
            return True

    def _give(self, n: int, state: bool) -> None:
        with self._lock:
            self._reserved -= n
            if state:
                self._state_reserved -= n

    def reservation(
        self,
        owner: str,
        stage: int | None = None,
        task: int | None = None,
        metrics: OperatorMetrics | None = None,
        kind: HolderKind = HolderKind.STATE,
    ) -> Reservation:
        r = Reservation(self, owner, stage, task, metrics, kind)
        with self._lock:
            self._reservations.append(r)
        return r

    def free_all(self) -> None:
        """The query ended: give back what anything still holds (shared caches, a
        broadcast build side, runtime filter keys live as long as the query)."""
        with self._lock:
            held = list(self._reservations)
            self._reservations.clear()
        for r in held:
            r.free()


class Reservation:
    """One holder's share of the pool (an operator in one task, one exchange buffer)."""

    def __init__(
        self,
        pool: MemoryPool,
        owner: str,
        stage: int | None,
        task: int | None,
        metrics: OperatorMetrics | None,
        kind: HolderKind = HolderKind.STATE,
    ):
        self.pool = pool
        self.kind = kind
        self.owner = owner
        self.stage = stage
        self.task = task
        self.metrics = metrics
        self.size = 0
        self.peak = 0

    @property
    def _state(self) -> bool:
        return self.kind is HolderKind.STATE

    def try_grow(self, n: int, share: float = 1.0) -> bool:
        """Grow by ``n`` bytes if the pool stays within ``share`` of its limit and,
        for operator state, the state within ``STATE_SHARE``."""
        if n <= 0:
            return True
        if not self.pool._take(n, force=False, share=share, state=self._state):
            return False
        self._grew(n)
        return True

    def grow(self, n: int) -> None:
        """Grow by ``n`` bytes or raise ``ResourceExhaustedError`` (nothing to spill)."""
        if not self.try_grow(n):
            raise ResourceExhaustedError(
                self.owner,
                needed=n,
                held=self.size,
                reserved=self.pool.reserved,
                budget=self.pool.limit,
                stage=self.stage,
                task=self.task,
                state_limit=int(self.pool.limit * STATE_SHARE),
            )

    def force_grow(self, n: int) -> None:
        if n > 0:
            self.pool._take(n, force=True, share=1.0, state=self._state)
            self._grew(n)

    def try_resize(self, n: int) -> bool:
        """Hold exactly ``n`` bytes; False (and unchanged) if growing does not fit."""
        if n >= self.size:
            return self.try_grow(n - self.size)
        self.shrink(self.size - n)
        return True

    def resize(self, n: int) -> None:
        if n >= self.size:
            self.grow(n - self.size)
        else:
            self.shrink(self.size - n)

    def force_resize(self, n: int) -> None:
        """Hold exactly ``n`` bytes, admitted past the budget if need be (only for the
        least a holder needs to make progress)."""
        if n >= self.size:
            self.force_grow(n - self.size)
        else:
            self.shrink(self.size - n)

    def shrink(self, n: int) -> None:
        n = min(n, self.size)
        if n > 0:
            self.size -= n
            self.pool._give(n, self._state)

    def free(self) -> None:
        self.shrink(self.size)

    def headroom(self) -> int:
        """Bytes this holder could still grow by right now (under the state share)."""
        return self.pool.state_headroom()

    def fits(self, n: int) -> bool:
        """Whether growing by ``n`` would fit right now (reserves nothing)."""
        return n <= self.pool.state_headroom()

    def _grew(self, n: int) -> None:
        self.size += n
        if self.size > self.peak:
            self.peak = self.size
            if self.metrics is not None and self.peak > self.metrics.peak_reserved_bytes:
                self.metrics.peak_reserved_bytes = self.peak

    def __repr__(self) -> str:
        return f"Reservation({self.owner}, {human_bytes(self.size)})"
