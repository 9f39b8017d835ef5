"""Joining small batches read from an exchange into fewer, larger ones.

A hash exchange with many destinations hands each consumer one small slice per
producer batch; a task that reads many destinations (coalesced partitions) would
pass hundreds of tiny batches through its operators, each paying per-batch costs.
``rebatch`` keeps the order and copies only the small batches it joins.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pyarrow as pa

#: Batches smaller than this are joined with their neighbours.
MIN_ROWS = 1 << 16


def rebatch(
    batches: Iterable[pa.RecordBatch], min_rows: int = MIN_ROWS
) -> Iterator[pa.RecordBatch]:
    """``batches`` in order, consecutive small ones joined into batches of at least
    ``min_rows`` rows (the last may be smaller); big batches pass through as they are."""
    held: list[pa.RecordBatch] = []
    rows = 0
    for batch in batches:
        if batch.num_rows >= min_rows and not held:
            yield batch
            continue
        held.append(batch)
        rows += batch.num_rows
        if rows >= min_rows:
            yield held[0] if len(held) == 1 else pa.concat_batches(held)
            held, rows = [], 0
    if held:
        yield held[0] if len(held) == 1 else pa.concat_batches(held)


__all__ = ["MIN_ROWS", "rebatch"]
