"""SUM of DECIMAL(38, s) without wrap-around: an overflow is an error, as in DuckDB.

Arrow's ``hash_sum`` of decimal128 wraps silently past 38 digits. Before grouping,
``widen_risky_sums`` bounds each summed decimal column by ``rows × max |value|``
(one vectorized min/max pass); only a column whose bound reaches 10³⁸ is summed in
decimal256 (76 digits, which cannot wrap for fewer than 10³⁸ rows). Afterwards
``narrow_sum`` casts such a sum back to its declared 38 digits and raises
``ExecutionError`` when the total does not fit.
"""

from __future__ import annotations

import decimal

import pyarrow as pa
import pyarrow.compute as pc

from shoal.errors import ExecutionError
from shoal.types import MAX_DECIMAL_PRECISION

_WIDE = 76


def widen_risky_sums(table: pa.Table, specs: list[tuple[str | list[str], str]]) -> pa.Table:
    """``table`` with every summed decimal128 column that could overflow as decimal256."""
    summed = {c for c, fn in specs if fn == "sum" and isinstance(c, str)}
    for name in summed:
        i = table.schema.get_field_index(name)
        column = table.column(i)
        if pa.types.is_decimal128(column.type) and _may_overflow(column):
            wide = pa.decimal256(_WIDE, column.type.scale)
            table = table.set_column(i, name, column.cast(wide))
    return table


def narrow_sum(total: pa.ChunkedArray | pa.Array, target: pa.DataType) -> pa.Array:
    """A decimal256 sum back to ``target`` (DECIMAL(38, s)); an overflow is an error."""
    try:
        return total.cast(target)
    except pa.ArrowInvalid as err:
        raise ExecutionError(
            f"Out of Range: overflow in SUM of {_sql_decimal(target)}: "
            f"the total does not fit in {target.precision} digits"
        ) from err


def _may_overflow(column: pa.ChunkedArray) -> bool:
    if len(column) == column.null_count:
        return False
    bounds = pc.min_max(column)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    largest = max(abs(low), abs(high))
    limit = decimal.Decimal(10) ** (MAX_DECIMAL_PRECISION - column.type.scale)
    with decimal.localcontext() as ctx:
        ctx.prec = 100
        return bool(largest * (len(column) - column.null_count) >= limit)


def _sql_decimal(t: pa.DataType) -> str:
    return f"DECIMAL({t.precision},{t.scale})"
