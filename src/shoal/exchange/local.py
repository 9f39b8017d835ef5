"""In-process, pipelined exchanges: producer tasks write, consumer tasks read, concurrently.

Each destination partition has a bounded ``Channel``; an ordered merge keeps one
channel per producer so the consumer can merge the sorted streams. Batches are
passed by reference (no copy, no serialization) since producer and consumer
share the process. A failure anywhere cancels the query and wakes every waiter.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator

import pyarrow as pa

from shoal.errors import PlanError
from shoal.exchange.channel import Channel, Slots
from shoal.exchange.merge import merge_sorted
from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.hashing import partition_ids, split_by_partition
from shoal.memory.pool import HolderKind, MemoryPool, Reservation
from shoal.metrics.exchange import ExchangeMetrics

HASH, BROADCAST, GATHER, MERGE, ROUND_ROBIN = (
    ExchangeKind.HASH,
    ExchangeKind.BROADCAST,
    ExchangeKind.GATHER,
    ExchangeKind.MERGE,
    ExchangeKind.ROUND_ROBIN,
)


class LocalExchange:
    def __init__(
        self,
        spec: ExchangeSpec,
        schema: pa.Schema,
        producers: int,
        producer_stage: int,
        consumer_stage: int | None,
        budget_bytes: int,
        cancelled: Callable[[], bool],
        slots: Slots | None = None,
        pool: MemoryPool | None = None,
        readers: int = 1,
    ):
        self.spec = spec
        self.schema = schema
        self.producers = producers
        n = spec.num_partitions
        owner = f"Exchange[{spec.kind}] from stage {producer_stage}"
        if readers > 1:
            # A shared CTE body read by several leaves (physical/shared.py): each reader
            # gets its own copy of every channel (the same batches, by reference). The
            # readers advance independently — a join may drain one reader's copy to
            # build before it reads another's — so a full copy must not stop the
            # producer: these channels never push back and hold, at most, the body's
            # whole output (not reserved from the pool, which could make them wait).
            budget_bytes, pool = sys.maxsize, None

        def reservation() -> Reservation | None:
            return (
                None
                if pool is None
                else pool.reservation(owner, producer_stage, kind=HolderKind.BUFFER)
            )

        def channel_set() -> list[Channel]:
            if spec.kind == MERGE:
                # One channel per producer, all read by the single consumer.
                return [
                    Channel(budget_bytes, 1, cancelled, slots, reservation())
                    for _ in range(producers)
                ]
            return [
                Channel(budget_bytes, producers, cancelled, slots, reservation()) for _ in range(n)
            ]

        self._pool = pool
        self.copies = [channel_set() for _ in range(readers)]
        self.channels = self.copies[0]  # what the figures count: one copy of the data
        self._claimed = [0] * max(n, producers, 1)  # per consumer partition: copies handed out
        self._lock = threading.Lock()
        self.metrics = ExchangeMetrics(spec.kind, producer_stage, consumer_stage)
        # The ordered merge's reader holds a batch or so per producer between rounds.
        self._merge_reservation = (
            None
            if pool is None or spec.kind != MERGE
            else pool.reservation(f"{owner} (merge)", consumer_stage, kind=HolderKind.BUFFER)
        )

    # ---------------------------------------------------------------- producer

    def write(self, producer: int, batch: pa.RecordBatch, rr_counter: list[int]) -> None:
        if batch.num_rows == 0:
            return
        spec = self.spec
        if spec.kind == HASH:
            keys = [batch.column(k) for k in spec.keys]
            ids = partition_ids(keys, spec.num_partitions)
            # Consumers drain and spill at their own pace: under pressure a slice that
            # pins its siblings' rows is memory the pool cannot see.
            owned = self._pool is not None and self._pool.under_pressure
            parts = split_by_partition(batch, ids, spec.num_partitions, owned=owned)
            for dest, part in enumerate(parts):
                if part.num_rows:
                    self._put(dest, part)
        elif spec.kind == BROADCAST:
            for dest in range(spec.num_partitions):
                self._put(dest, batch)
        elif spec.kind == GATHER:
            self._put(0, batch)
        elif spec.kind == MERGE:
            self._put(producer, batch)
        elif spec.kind == ROUND_ROBIN:
            dest = rr_counter[0] % spec.num_partitions
            rr_counter[0] += 1
            self._put(dest, batch)
        else:
            raise AssertionError(spec.kind)

    def _put(self, channel: int, batch: pa.RecordBatch) -> None:
        for copy in self.copies:
            copy[channel].put(batch)

    def close(self, producer: int, failed: bool = False) -> None:
        """Producer ``producer`` ended (``failed``: gave up, the streams are broken)."""
        for copy in self.copies:
            if self.spec.kind == MERGE:
                copy[producer].close(failed)
            else:
                for channel in copy:
                    channel.close(failed)

    # ---------------------------------------------------------------- consumer

    def reader(self, consumer: int) -> Callable[[], Iterator[pa.RecordBatch]]:
        """What consumer task ``consumer`` reads. With several readers (a shared CTE
        body) each call hands out the next copy of that partition's channels: every
        reading leaf of every consuming task calls once, and the copies are alike."""

        def read() -> Iterator[pa.RecordBatch]:
            k = 0
            if len(self.copies) > 1:
                with self._lock:
                    k = self._claimed[consumer]
                    self._claimed[consumer] += 1
            if k >= len(self.copies):
                raise PlanError(
                    f"exchange read {k + 1} times for partition {consumer}, "
                    f"made for {len(self.copies)} readers"
                )
            copy = self.copies[k]
            if self.spec.kind == MERGE:
                assert consumer == 0
                return merge_sorted(
                    [iter(c) for c in copy],
                    self.spec.sort_keys,
                    self.schema,
                    self._merge_reservation,
                )
            return iter(copy[consumer])

        return read

    def wake_all(self) -> None:
        for copy in self.copies:
            for channel in copy:
                channel.wake()

    def finish_metrics(self) -> ExchangeMetrics:
        m = self.metrics
        if self.spec.kind == MERGE:
            m.rows_per_partition = [sum(c.rows for c in self.channels)]
            m.bytes_per_partition = [sum(c.bytes for c in self.channels)]
        else:
            m.rows_per_partition = [c.rows for c in self.channels]
            m.bytes_per_partition = [c.bytes for c in self.channels]
        m.batches = sum(c.batches for c in self.channels)
        m.buffer_high_water_bytes = max((c.high_water_bytes for c in self.channels), default=0)
        m.producer_blocked_seconds = sum(c.put_blocked_seconds for c in self.channels)
        m.consumer_wait_seconds = sum(c.get_wait_seconds for c in self.channels)
        return m
