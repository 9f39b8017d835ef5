"""SQL row order over Arrow tables: NULLs where each key says, NaN above every number.

Shared by the sort and top-k operators and by the ordered-merge exchange, which must
agree on one order (the merge interleaves runs the operators sorted).
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc

from shoal.exchange_spec import SortSpec
from shoal.expr.floats import has_nan, needs_nan_key


def sort_indices(table: pa.Table, keys: tuple[SortSpec, ...]) -> pa.Array:
    """The SQL order of ``table``'s rows.

    Where Arrow would put NaN beside the NULLs (``floats.needs_nan_key``), an
    ``is_nan`` key sorted first puts it at the far end instead.
    """
    sort_keys: list[tuple[str, str, str]] = []
    for i, k in enumerate(keys):
        column = table.column(k.column)
        if needs_nan_key(column.type, k.ascending, k.nulls_first) and has_nan(column):
            name = f"$nan{i}"
            table = table.append_column(name, pc.is_nan(column))
            sort_keys.append((name, k.arrow()[1], k.arrow()[2]))
        sort_keys.append(k.arrow())
    return pc.sort_indices(table, sort_keys=sort_keys)


def sorted_batches(
    table: pa.Table, keys: tuple[SortSpec, ...], batch_rows: int
) -> Iterator[pa.RecordBatch]:
    """``table``'s rows in SQL order, ``batch_rows`` at a time.

    The columns are concatenated once (``take`` on a column of several chunks
    concatenates them on every call) and the sorted copy is made one batch at a time,
    so this holds the rows twice at most — the input and its concatenation — not
    three times (input, concatenation and a whole sorted copy). The caller must drop
    its own reference to ``table`` for the input to be freed.
    """
    if table.num_rows <= 1:
        yield from table.to_batches()
        return
    indices = sort_indices(table, keys)
    combined = table.combine_chunks()
    del table
    for start in range(0, len(indices), batch_rows):
        yield from combined.take(indices.slice(start, batch_rows)).to_batches()


def sort_table(table: pa.Table, keys: tuple[SortSpec, ...]) -> pa.Table:
    if table.num_rows <= 1:
        return table
    return table.take(sort_indices(table, keys))
