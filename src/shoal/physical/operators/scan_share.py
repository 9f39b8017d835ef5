"""Decoding a Parquet row group once for every scan of it in one query.

TPC-H-like queries read the same table more than once: a CTE used twice (Q15), a
decorrelated subquery beside its outer query (Q17, Q18), EXISTS and NOT EXISTS over
the table the query already reads (Q21). Parquet decoding is most of a scan's cost,
so the scans of one source in one query form a *share group*
(``rules/share_scans.py``): each decodes the union of the group's columns, and a row
group one member decoded is handed, already decoded, to the others — already filtered
when every member pushes the same filter.

``DecodedSplitCache`` (one per group, query and process) holds a decoded row group
until every member that reads it has taken it, within a byte budget
(``Settings.scan_share_bytes``) and within a quarter of the query's memory pool
(``CACHE_SHARE``; a reservation that fails keeps nothing): past either a member simply decodes for itself.
The first member to ask for a row group decodes it; a member asking meanwhile waits
for that decode rather than repeating it (the decoder is running, so the wait is
short and cannot deadlock). Nothing spills.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

import pyarrow as pa

from shoal.expr.nodes import Expr
from shoal.memory.pool import Reservation

#: The cache keeps a row group only while the whole pool stays within this share of
#: its limit: what it holds is spare memory, never what an operator's state needs. The
#: member that reads a row group last may run long after the first (behind a join's
#: build side, Q21's EXISTS over lineitem): a cache filling the state share meanwhile
#: left every join below it to spill, build sides of a hundred rows included.
CACHE_SHARE = 0.25

#: A row group, as a cache key: (file path, row group indexes).
SplitKey = tuple[str, tuple[int, ...]]


@dataclass(frozen=True)
class ScanShare:
    """A scan's membership in a share group (plain data; travels with the task)."""

    group: str  # the group's key, unique within the query
    columns: tuple[str, ...]  # source columns every member decodes (the union)
    readers: tuple[tuple[SplitKey, int], ...]  # row group -> how many members read it
    budget_bytes: int
    # The pushed filter over source column names when every member has the same one
    # (Q15's CTE): applied once by the decoding member, so only passing rows are held.
    filter: Expr | None = None


class _Entry:
    def __init__(self) -> None:
        self.ready = threading.Event()
        self.batches: list[pa.RecordBatch] | None = None  # None: not kept (decode yourself)
        self.remaining = 0
        self.nbytes = 0


class DecodedSplitCache:
    def __init__(self, share: ScanShare, reservation: Reservation | None = None):
        self._reservation = reservation
        self._readers = dict(share.readers)
        self._budget = share.budget_bytes
        self._held = 0
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}

    def batches(
        self, key: SplitKey, decode: Callable[[], list[pa.RecordBatch]]
    ) -> tuple[list[pa.RecordBatch], bool]:
        """The decoded row group, and whether it came from another member's decode."""
        with self._lock:
            entry = self._entries.get(key)
            first = entry is None
            if entry is None:
                entry = self._entries[key] = _Entry()
        if first:
            try:
                decoded = decode()
            except BaseException:
                entry.ready.set()  # waiters decode for themselves
                raise
            self._keep(key, entry, decoded)
            return decoded, False
        entry.ready.wait()
        with self._lock:
            kept = entry.batches
            if kept is not None:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    entry.batches = None
                    self._held -= entry.nbytes
                    if self._reservation is not None:
                        self._reservation.shrink(entry.nbytes)
        if kept is None:
            return decode(), False
        return kept, True

    def skip(self, key: SplitKey) -> None:
        """One member counted as a reader of ``key`` will not read it (a join filter
        ruled it out): keep it for one member fewer, or free it if nobody else waits."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.batches is not None:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    entry.batches = None
                    self._held -= entry.nbytes
                    if self._reservation is not None:
                        self._reservation.shrink(entry.nbytes)
            elif entry is None or not entry.ready.is_set():
                # Not decoded (or not kept) yet: whoever decodes it counts one reader less.
                self._readers[key] = self._readers.get(key, 1) - 1

    def _keep(self, key: SplitKey, entry: _Entry, decoded: list[pa.RecordBatch]) -> None:
        size = sum(b.nbytes for b in decoded)
        with self._lock:
            others = self._readers.get(key, 1) - 1
            if (
                others > 0
                and self._held + size <= self._budget
                and (self._reservation is None or self._reservation.try_grow(size, CACHE_SHARE))
            ):
                entry.batches, entry.remaining, entry.nbytes = decoded, others, size
                self._held += size
        entry.ready.set()

    @property
    def held_bytes(self) -> int:
        return self._held
