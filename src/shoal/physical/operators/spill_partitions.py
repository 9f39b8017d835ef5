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
#: What the partitions of one ``SpillPartitions`` buffer before writing, at most (a
#: batch in flight's worth of the budget, as a scan's decoded batch: 1/64 of it).
#: Written piece by piece, a batch split 16 ways under a small budget went to disk as
#: IPC messages of a few rows each, ~100 µs apiece to write and again to read, and
#: came back as batches of a few rows that every operator above paid for one by one.
_BUFFERS_PER_BUDGET = 64
_MAX_BUFFER_BYTES = 16 << 20


#: ``add`` splits at most about this much (or the buffer, if larger) at a time.
_MIN_SLICE_BYTES = 1 << 20


def buffer_bytes(memory_limit: int) -> int:
    """The write buffer of one ``SpillPartitions`` under this query budget."""
    return min(_MAX_BUFFER_BYTES, memory_limit // _BUFFERS_PER_BUDGET)


class SpillPartitions:
    def __init__(
        self,
        space: SpillSpace,
        schema: pa.Schema,
        keys: tuple[str, ...],
        level: int,
        metrics: OperatorMetrics,
        fanout: int = FANOUT,
        buffer: int = 0,
    ):
        """``buffer``: bytes the partitions may hold, together, before writing (pieces
        of one partition go out as one batch once they reach ``buffer / fanout``)."""
        self.schema = schema
        self.keys = keys
        self.level = level
        self.fanout = fanout
        self.files: list[SpillFile] = [space.new_file(schema, metrics) for _ in range(fanout)]
        self._flush_bytes = buffer // fanout
        self._slice_bytes = max(buffer, _MIN_SLICE_BYTES)
        self._pending: list[list[pa.RecordBatch]] = [[] for _ in range(fanout)]
        self._pending_bytes = [0] * fanout
        metrics.spill_passes = max(metrics.spill_passes, level + 1)

    def add(self, data: pa.RecordBatch | pa.Table) -> None:
        for whole in data.to_batches() if isinstance(data, pa.Table) else [data]:
            if not whole.num_rows:
                continue
            # Split a slice at a time: splitting copies what it splits, and a merged
            # state table is one batch of up to the whole state share (when the 50 M-row
            # GROUP BY of bench/memory.py spilled under 512 MiB, Arrow held up to ~300
            # MiB more than was reserved).
            step = max(1, whole.num_rows * self._slice_bytes // max(1, whole.nbytes))
            for start in range(0, whole.num_rows, step):
                self._add(whole.slice(start, step))

    def _add(self, batch: pa.RecordBatch) -> None:
        ids = partition_ids([batch.column(k) for k in self.keys], self.fanout, self.level + 1)
        for part, piece in enumerate(split_by_partition(batch, ids, self.fanout)):
            if not piece.num_rows:
                continue
            self._pending[part].append(piece)
            self._pending_bytes[part] += piece.nbytes
            if self._pending_bytes[part] >= self._flush_bytes:
                self._flush(part)

    def _flush(self, part: int) -> None:
        pending = self._pending[part]
        if pending:
            self.files[part].write(pending[0] if len(pending) == 1 else pa.concat_batches(pending))
        self._pending[part] = []
        self._pending_bytes[part] = 0

    def close(self) -> None:
        for part, f in enumerate(self.files):
            self._flush(part)
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
        self._pending = [[] for _ in range(self.fanout)]
        self._pending_bytes = [0] * self.fanout
        for f in self.files:
            f.delete()
