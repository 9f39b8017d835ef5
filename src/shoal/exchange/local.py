"""In-process, pipelined exchanges: producer tasks write, consumer tasks read, concurrently.

Each destination partition has a bounded ``Channel``; an ordered merge keeps one
channel per producer so the consumer can merge the sorted streams. Batches are
passed by reference (no copy, no serialization) since producer and consumer
share the process. A failure anywhere cancels the query and wakes every waiter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pyarrow as pa

from shoal.exchange.channel import Channel, Slots
from shoal.exchange.merge import merge_sorted
from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.hashing import partition_ids, split_by_partition
from shoal.memory.pool import MemoryPool, Reservation
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
    ):
        self.spec = spec
        self.schema = schema
        self.producers = producers
        n = spec.num_partitions
        owner = f"Exchange[{spec.kind}] from stage {producer_stage}"

        def reservation() -> Reservation | None:
            return None if pool is None else pool.reservation(owner, producer_stage)

        if spec.kind == MERGE:
            # One channel per producer, all read by the single consumer.
            self.channels = [
                Channel(budget_bytes, 1, cancelled, slots, reservation()) for _ in range(producers)
            ]
        else:
            self.channels = [
                Channel(budget_bytes, producers, cancelled, slots, reservation()) for _ in range(n)
            ]
        self.metrics = ExchangeMetrics(spec.kind, producer_stage, consumer_stage)
        # The ordered merge's reader holds a batch or so per producer between rounds.
        self._merge_reservation = (
            None
            if pool is None or spec.kind != MERGE
            else pool.reservation(f"{owner} (merge)", consumer_stage)
        )

    # ---------------------------------------------------------------- producer

    def write(self, producer: int, batch: pa.RecordBatch, rr_counter: list[int]) -> None:
        if batch.num_rows == 0:
            return
        spec = self.spec
        if spec.kind == HASH:
            keys = [batch.column(k) for k in spec.keys]
            ids = partition_ids(keys, spec.num_partitions)
            for dest, part in enumerate(split_by_partition(batch, ids, spec.num_partitions)):
                if part.num_rows:
                    self.channels[dest].put(part)
        elif spec.kind == BROADCAST:
            for channel in self.channels:
                channel.put(batch)
        elif spec.kind == GATHER:
            self.channels[0].put(batch)
        elif spec.kind == MERGE:
            self.channels[producer].put(batch)
        elif spec.kind == ROUND_ROBIN:
            dest = rr_counter[0] % spec.num_partitions
            rr_counter[0] += 1
            self.channels[dest].put(batch)
        else:
            raise AssertionError(spec.kind)

    def close(self, producer: int, failed: bool = False) -> None:
        """Producer ``producer`` ended (``failed``: gave up, the streams are broken)."""
        if self.spec.kind == MERGE:
            self.channels[producer].close(failed)
        else:
            for channel in self.channels:
                channel.close(failed)

    # ---------------------------------------------------------------- consumer

    def reader(self, consumer: int) -> Callable[[], Iterator[pa.RecordBatch]]:
        if self.spec.kind == MERGE:
            assert consumer == 0
            return lambda: merge_sorted(
                [iter(c) for c in self.channels],
                self.spec.sort_keys,
                self.schema,
                self._merge_reservation,
            )
        return lambda: iter(self.channels[consumer])

    def wake_all(self) -> None:
        for channel in self.channels:
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
