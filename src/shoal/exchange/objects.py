"""Exchange data as whole objects: one Arrow IPC buffer per destination of a producer task.

The Ray runtime moves exchange data as task return values in Ray's object store:
a producer task deals its output to the exchange's destinations (``ObjectOutput``),
then hands back one IPC stream per destination; each consumer task gets, per input
stage, the buffers of every producer addressed to it and reads them back
(``read_objects``). IPC rather than pickled batches because a sliced batch (what
``split_by_partition(owned=False)`` returns) pickles its whole parent buffer, while the IPC writer
writes only the rows of the slice; reading the stream back maps the buffer without
copying it.

  producer task p                           consumer task c
  ┌──────────┐ hash / broadcast / gather /  ┌────────────────────────────────┐
  │ fragment │ ── round robin / merge ────▶ │ buffers[p][c] for every p      │──▶ ExchangeRead
  └──────────┘  buffers[dest] (IPC)         │ (merge: one sorted stream per p)│
                                            └────────────────────────────────┘

A broadcast, gather or merge producer returns a single buffer that every consumer
task reads (a broadcast is stored once, not once per consumer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa

from shoal.exchange.merge import merge_sorted
from shoal.exchange.rebatch import rebatch
from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.hashing import partition_ids, split_by_partition


def object_count(spec: ExchangeSpec | None) -> int:
    """How many buffers a producer task returns: one per destination for hash and
    round robin, one shared by every consumer otherwise (and for the query result)."""
    if spec is not None and spec.kind in (ExchangeKind.HASH, ExchangeKind.ROUND_ROBIN):
        return spec.num_partitions
    return 1


def object_for(spec: ExchangeSpec, consumer: int) -> int:
    """Which of a producer's buffers consumer task ``consumer`` reads."""
    return consumer if object_count(spec) > 1 else 0


class ObjectOutput:
    """Collects one task's output batches per destination and serializes each once.

    Holds the task's whole output until ``finish`` (a task's return values are
    complete objects); what it holds is compact: hash parts are slices of one
    ``take`` per batch, and the IPC writer copies only the rows of each slice.
    """

    def __init__(self, spec: ExchangeSpec | None, schema: pa.Schema):
        self.spec = spec
        self.schema = schema
        self.parts: list[list[pa.RecordBatch]] = [[] for _ in range(object_count(spec))]
        self._next = 0  # round robin: the destination of the next batch

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        spec = self.spec
        if spec is not None and spec.kind == ExchangeKind.HASH:
            ids = partition_ids([batch.column(k) for k in spec.keys], spec.num_partitions)
            # Every part is held to the task's end: slices pin nothing that is not held.
            parts = split_by_partition(batch, ids, spec.num_partitions, owned=False)
            for dest, part in enumerate(parts):
                if part.num_rows:
                    self.parts[dest].append(part)
        elif spec is not None and spec.kind == ExchangeKind.ROUND_ROBIN:
            self.parts[self._next % spec.num_partitions].append(batch)
            self._next += 1
        else:
            self.parts[0].append(batch)

    def rows(self) -> list[int]:
        return [sum(b.num_rows for b in batches) for batches in self.parts]

    def batches(self) -> int:
        return sum(len(batches) for batches in self.parts)

    def finish(self) -> list[pa.Buffer]:
        """One IPC stream per destination (an empty stream where nothing went)."""
        out = [to_ipc(batches, self.schema) for batches in self.parts]
        self.parts = [[] for _ in self.parts]
        return out


def to_ipc(batches: Sequence[pa.RecordBatch], schema: pa.Schema) -> pa.Buffer:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return sink.getvalue()


def from_ipc(buffer: pa.Buffer | bytes) -> Iterator[pa.RecordBatch]:
    with pa.ipc.open_stream(pa.py_buffer(buffer) if isinstance(buffer, bytes) else buffer) as r:
        yield from r


def read_objects(
    spec: ExchangeSpec,
    schema: pa.Schema,
    buffers: Sequence[pa.Buffer | bytes],
    ranges: Sequence[tuple[int, int] | None] = (),
) -> Iterator[pa.RecordBatch]:
    """The batches a consumer task reads from one input stage: ``buffers`` holds, in
    producer order, what each producer task sent it. A merge interleaves the
    producers' sorted streams; every other kind reads them one after another.
    ``ranges[i]``, when given and not None, keeps rows [first, end) of buffer ``i``
    (a sub-task of a split skewed partition)."""
    if spec.kind == ExchangeKind.MERGE:
        yield from merge_sorted([from_ipc(b) for b in buffers], spec.sort_keys, schema)
        return
    yield from rebatch(_ranged(buffers, ranges))


def _ranged(
    buffers: Sequence[pa.Buffer | bytes], ranges: Sequence[tuple[int, int] | None]
) -> Iterator[pa.RecordBatch]:
    for i, buffer in enumerate(buffers):
        rows = ranges[i] if i < len(ranges) else None
        if rows is None:
            yield from from_ipc(buffer)
            continue
        seen = 0
        for batch in from_ipc(buffer):
            n = batch.num_rows
            if seen < rows[1] and seen + n > rows[0]:
                first = max(0, rows[0] - seen)
                end = min(n, rows[1] - seen)
                yield batch.slice(first, end - first)
            seen += n
            if seen >= rows[1]:
                break


__all__ = ["ObjectOutput", "from_ipc", "object_count", "object_for", "read_objects", "to_ipc"]
