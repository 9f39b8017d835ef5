"""Vectorized k-way merge of sorted batch streams (the ordered-merge exchange's reader).

Each round buffers some rows from every live input, sorts the union of buffers
once, and emits every row up to the *frontier*: the smallest of the inputs'
last buffered rows. Rows after it might still be preceded by rows not yet read
from the input that set the frontier, so they wait for the next round, which
first reads more from that input. Every row is emitted exactly once, in order.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from shoal.exchange_spec import SortSpec
from shoal.memory.pool import Reservation
from shoal.sorting import sort_indices


def merge_sorted(
    inputs: list[Iterator[pa.RecordBatch]],
    keys: tuple[SortSpec, ...],
    schema: pa.Schema,
    reservation: Reservation | None = None,
) -> Iterator[pa.RecordBatch]:
    """The rows of ``inputs`` (each sorted by ``keys``) in one sorted stream.

    Holds about a batch per input (what waits behind the frontier plus the batch just
    read); with a ``reservation`` those bytes are reserved, forced: they are the least
    the merge needs to make progress, so they never wait or fail.
    """
    buffers: list[pa.Table | None] = [None] * len(inputs)
    live = [True] * len(inputs)

    def hold() -> None:
        if reservation is not None:
            reservation.force_resize(sum(b.nbytes for b in buffers if b is not None))

    def refill(i: int) -> None:
        while live[i]:
            batch = next(inputs[i], None)
            if batch is None:
                live[i] = False
                return
            if batch.num_rows:
                table = pa.Table.from_batches([batch], schema)
                buf = buffers[i]
                buffers[i] = table if buf is None else pa.concat_tables([buf, table])
                return

    for i in range(len(inputs)):
        refill(i)
    while True:
        hold()
        present = [i for i, b in enumerate(buffers) if b is not None and b.num_rows]
        if not present:
            return
        if len(present) == 1 and not any(live[j] for j in range(len(inputs)) if j != present[0]):
            # One input left: its rows are already in order.
            i = present[0]
            buf = buffers[i]
            assert buf is not None
            buffers[i] = None
            hold()
            yield from buf.to_batches()
            for batch in inputs[i]:
                if batch.num_rows:
                    yield batch
            live[i] = False
            return
        tables = [buffers[i] for i in present]
        combined = pa.concat_tables(tables)  # type: ignore[arg-type]
        offsets = np.cumsum(np.array([0] + [t.num_rows for t in tables if t is not None]))
        order = sort_indices(combined, keys).to_numpy()
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        # Only inputs that may still send rows bound the frontier.
        bounding = [k for k, i in enumerate(present) if live[i]]
        if bounding:
            last_ranks = [rank[offsets[k + 1] - 1] for k in bounding]
            pick = int(np.argmin(last_ranks))
            cut = int(last_ranks[pick]) + 1
            frontier_input = present[bounding[pick]]
        else:
            cut = len(order)
            frontier_input = -1
        emit = order[:cut]
        keep = np.sort(order[cut:])
        if len(emit):
            yield combined.take(pa.array(emit)).combine_chunks().to_batches()[0]
        # Rebuild each input's buffer from the rows that wait.
        owner = np.searchsorted(offsets, keep, side="right") - 1
        for k, i in enumerate(present):
            rows = keep[owner == k]
            buffers[i] = combined.take(pa.array(rows, pa.int64())) if len(rows) else None
        if frontier_input >= 0:
            refill(frontier_input)
