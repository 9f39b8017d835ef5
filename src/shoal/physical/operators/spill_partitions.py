"""Grace partitioning: rows split by key hash into spill files, one file per partition.

The hash aggregate and the hash join spill this way. Level ``L`` hashes with seed
``L + 1`` (``hashing.partition_ids``), so a partition that is still too big splits
again at the next level instead of landing whole in one child — and rows one hash
exchange put together still spread (seed 0 is the exchange's own hash).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from shoal.hashing import partition_ids, split_by_partition
from shoal.memory.spill import SpillFile, SpillSpace
from shoal.metrics.operator import OperatorMetrics

#: Partitions per level: each level divides what one partition holds by about this.
FANOUT = 16
#: Levels before a partition is taken as unsplittable (every row the same key).
MAX_LEVELS = 6


class SpillPartitions:
    def __init__(
        self,
        space: SpillSpace,
        schema: pa.Schema,
        keys: tuple[str, ...],
        level: int,
        metrics: OperatorMetrics,
        fanout: int = FANOUT,
    ):
        self.schema = schema
        self.keys = keys
        self.level = level
        self.fanout = fanout
        self.files: list[SpillFile] = [space.new_file(schema, metrics) for _ in range(fanout)]
        metrics.spill_passes = max(metrics.spill_passes, level + 1)

    def add(self, data: pa.RecordBatch | pa.Table) -> None:
        for batch in data.to_batches() if isinstance(data, pa.Table) else [data]:
            if not batch.num_rows:
                continue
            ids = partition_ids([batch.column(k) for k in self.keys], self.fanout, self.level + 1)
            for part, piece in enumerate(split_by_partition(batch, ids, self.fanout)):
                if piece.num_rows:
                    self.files[part].write(piece)

    def close(self) -> None:
        for f in self.files:
            f.close()

    def partitions(self) -> Iterator[SpillFile]:
        """Each partition's file in turn (deleted once the next one is asked for)."""
        self.close()
        for f in self.files:
            try:
                yield f
            finally:
                f.delete()

    def delete(self) -> None:
        for f in self.files:
            f.delete()
