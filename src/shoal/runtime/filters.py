"""Runtime filters: join keys published by one stage, applied before another's exchange.

A semi/anti join that holds its small left side (``build_left``) learns, once every
task has built its partition of that side, the complete set of keys any right row
can match. Each join task publishes its partition's keys here; the right side's
``RuntimeFilterExec`` (below the right side's hash exchange, in another stage) waits
for all of them and drops right rows whose key no left row has, before they are
hashed and shipped. Q21's EXISTS / NOT EXISTS over lineitem ship ~5% of the rows.

One registry per query and process. The combined key index is built once, by the
first task to ask after the last partition arrived. A task waiting for the keys
lends its CPU slot out and wakes on cancellation. Every publishing task reports its
end; one that ended without publishing (never pulled: a LIMIT 0 above it, a NOT IN
that found a NULL) turns the filter into a pass-all, so no filter waits forever. (On a cluster the driver would
gather the partitions and broadcast the combined keys: the operators would not
change.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, MutableMapping

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from shoal.errors import QueryCancelledError
from shoal.exchange.channel import Slots
from shoal.memory.pool import MemoryPool
from shoal.physical.operators.join_filter import JoinKeyFilter
from shoal.physical.operators.join_index import JoinIndex

_POLL_SECONDS = 0.05


class PassAll:
    """What a filter gets when some join task ended without publishing its keys (a
    LIMIT above it stopped early, a NOT IN above it found a NULL): every row passes."""

    def contains(self, keys: list[pa.Array]) -> npt.NDArray[np.bool_]:
        return np.ones(len(keys[0]), dtype=bool)


class RuntimeFilters:
    def __init__(self, slots: Slots, pool: MemoryPool | None = None):
        self._slots = slots
        # The combined keys live as long as the query; past the budget the filter is
        # dropped (a pass-all) rather than failing the query: it only saves work.
        self._reservation = None if pool is None else pool.reservation("RuntimeFilter")
        self._cond = threading.Condition()
        # filter id -> partition -> its keys, or None when the task ended without them
        self._parts: dict[str, dict[int, list[pa.Array] | None]] = {}
        self._built: dict[str, JoinIndex | PassAll] = {}

    def publish(self, filter_id: str, partition: int, keys: list[pa.Array]) -> None:
        with self._cond:
            self._parts.setdefault(filter_id, {})[partition] = keys
            self._cond.notify_all()

    def task_ended(self, filter_id: str, partition: int) -> None:
        """A publishing task ended: if it never published, nobody will wait forever."""
        with self._cond:
            self._parts.setdefault(filter_id, {}).setdefault(partition, None)
            self._cond.notify_all()

    def poll(self, filter_id: str, sources: int) -> JoinIndex | PassAll | None:
        """The combined key index once all ``sources`` partitions are in, else None."""
        with self._cond:
            built = self._built.get(filter_id)
            if built is not None:
                return built
            parts = self._parts.get(filter_id, {})
            if len(parts) < sources:
                return None
            published = [keys for keys in (parts[p] for p in sorted(parts)) if keys is not None]
            combined: JoinIndex | PassAll
            if len(published) < len(parts):
                combined = PassAll()
            else:
                columns = [list(chunks) for chunks in zip(*published, strict=True)]
                size = sum(a.nbytes for chunks in columns for a in chunks)
                r = self._reservation
                if r is not None and not r.try_grow(size):
                    combined = PassAll()
                else:
                    index = JoinIndex(
                        [pa.concat_arrays(chunks) for chunks in columns],
                        max_bytes=None if r is None else r.headroom(),
                    )
                    if r is not None and not r.try_grow(index.nbytes):
                        combined = PassAll()
                    else:
                        combined = index
            self._built[filter_id] = combined
            return combined

    def wait(
        self, filter_id: str, sources: int, cancelled: Callable[[], bool]
    ) -> JoinIndex | PassAll:
        """Block (without a CPU slot) until all partitions are in."""
        self._slots.release()
        try:
            with self._cond:
                while len(self._parts.get(filter_id, {})) < sources:
                    if cancelled():
                        raise QueryCancelledError("query cancelled")
                    self._cond.wait(_POLL_SECONDS)
        finally:
            self._slots.acquire()
        index = self.poll(filter_id, sources)
        assert index is not None
        return index


# How long a scan task waits, the first time it looks, for a stage filter its query
# expects: long enough for a small build side (a filtered dimension: tens of ms) to
# arrive before the scan decodes anything, short enough that a slow build costs little
# (the waiting task lends its CPU slot to the tasks building it).
STAGE_FILTER_WAIT_SECONDS = 0.25


class StageFilters:
    """The join filters that cross stages (``HashJoinExec.stage_filters``), for one
    query in one process: the first task of the publishing join to build puts its
    filter here, every scan task reads it (``for_task``).

    A scan task that asks for an expected filter not yet here waits for it once,
    without its CPU slot, until it arrives, every task of the publishing stage ended
    (one that spilled or stopped early publishes nothing) or
    ``STAGE_FILTER_WAIT_SECONDS`` passed; after that it reads unfiltered. The bound
    keeps a scan from ever waiting on a join that waits on it.
    """

    def __init__(self, expected: dict[str, int], slots: Slots):
        """``expected``: filter id -> how many tasks the publishing stage has."""
        self._expected = dict(expected)
        self._slots = slots
        self._cond = threading.Condition()
        self._filters: dict[str, JoinKeyFilter] = {}
        self._ended: dict[str, int] = {}

    def wanted(self, filter_id: str) -> bool:
        return filter_id not in self._filters

    def publish(self, filter_id: str, found: JoinKeyFilter) -> None:
        with self._cond:
            self._filters.setdefault(filter_id, found)
            self._cond.notify_all()

    def task_ended(self, filter_id: str) -> None:
        with self._cond:
            self._ended[filter_id] = self._ended.get(filter_id, 0) + 1
            self._cond.notify_all()

    def get(self, filter_id: str, cancelled: Callable[[], bool]) -> JoinKeyFilter | None:
        """The filter, after waiting for it (see the class docstring)."""
        found = self._filters.get(filter_id)
        if found is not None or filter_id not in self._expected:
            return found
        deadline = time.monotonic() + STAGE_FILTER_WAIT_SECONDS
        self._slots.release()
        try:
            with self._cond:
                while (
                    filter_id not in self._filters
                    and self._ended.get(filter_id, 0) < self._expected[filter_id]
                    and not cancelled()
                ):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(min(left, _POLL_SECONDS))
        finally:
            self._slots.acquire()
        return self._filters.get(filter_id)

    def for_task(self, cancelled: Callable[[], bool]) -> TaskJoinFilters:
        return TaskJoinFilters(self, cancelled)


class TaskJoinFilters(MutableMapping[str, JoinKeyFilter]):
    """One task's ``TaskContext.join_filters``: its own joins' filters, then the query's
    stage filters — each of those waited for at most once by this task."""

    def __init__(self, board: StageFilters, cancelled: Callable[[], bool]):
        self._own: dict[str, JoinKeyFilter] = {}
        self._board = board
        self._cancelled = cancelled
        self._asked: dict[str, JoinKeyFilter | None] = {}

    def _stage(self, filter_id: str) -> JoinKeyFilter | None:
        if filter_id in self._asked and self._asked[filter_id] is not None:
            return self._asked[filter_id]
        if filter_id in self._asked:
            found = self._board._filters.get(filter_id)  # no second wait
        else:
            found = self._board.get(filter_id, self._cancelled)
        self._asked[filter_id] = found
        return found

    def __getitem__(self, filter_id: str) -> JoinKeyFilter:
        found = self._own.get(filter_id)
        if found is None:
            found = self._stage(filter_id)
        if found is None:
            raise KeyError(filter_id)
        return found

    def __setitem__(self, filter_id: str, value: JoinKeyFilter) -> None:
        self._own[filter_id] = value

    def __delitem__(self, filter_id: str) -> None:
        del self._own[filter_id]

    def __iter__(self) -> Iterator[str]:
        return iter({**self._board._filters, **self._own})

    def __len__(self) -> int:
        return len({**self._board._filters, **self._own})

    def __bool__(self) -> bool:
        # Expected stage filters count: a scan must ask for them (and wait) even before
        # the first one is published.
        return bool(self._own or self._board._expected or self._board._filters)
