"""Kernels of the scalar functions beyond the core set (``sql/functions.py`` binds them).

Each kernel takes the bound ``Call`` (its type and constant options) and its evaluated
arguments (arrays or scalars) and returns the result in the call's type, with DuckDB's
semantics. All are pyarrow compute kernels over whole arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shoal.errors import InvalidDataError
from shoal.expr.nodes import Call

Value = Any  # pa.Array | pa.ChunkedArray | pa.Scalar


def _as(e: Call, out: Value) -> Value:
    return out if out.type == e.type else pc.cast(out, e.type)


def _float_unary(kernel: str) -> Callable[[Call, list[Value]], Value]:
    def run(e: Call, args: list[Value]) -> Value:
        return _as(e, pc.call_function(kernel, [pc.cast(args[0], pa.float64())]))

    return run


def _rounding(kernel: str) -> Callable[[Call, list[Value]], Value]:
    # floor / ceil / trunc: decimals keep exact digits (DECIMAL(p, 0)); others are DOUBLE.
    def run(e: Call, args: list[Value]) -> Value:
        arg = args[0]
        if pa.types.is_decimal(arg.type):
            return _as(e, pc.call_function(kernel, [arg]))
        return _as(e, pc.call_function(kernel, [pc.cast(arg, pa.float64())]))

    return run


def _power(e: Call, args: list[Value]) -> Value:
    return _as(e, pc.power(pc.cast(args[0], pa.float64()), pc.cast(args[1], pa.float64())))


def _log(e: Call, args: list[Value]) -> Value:
    # log(b, x) = ln(x) / ln(b); log(x) is log10 (options carry the base).
    (base,) = e.options
    value = pc.cast(args[0], pa.float64())
    if base == 10:
        return _as(e, pc.log10(value))
    return _as(e, pc.divide(pc.ln(value), pc.ln(pa.scalar(float(base)))))


def _sign(e: Call, args: list[Value]) -> Value:
    return _as(e, pc.sign(args[0]))


def _extreme(kernel: str) -> Callable[[Call, list[Value]], Value]:
    # greatest / least skip NULLs, as in DuckDB (NULL only when every argument is).
    def run(e: Call, args: list[Value]) -> Value:
        return _as(
            e, pc.call_function(kernel, args, pc.ElementWiseAggregateOptions(skip_nulls=True))
        )

    return run


def _left(e: Call, args: list[Value]) -> Value:
    (n,) = e.options
    return pc.utf8_slice_codeunits(args[0], 0, n)


def _right(e: Call, args: list[Value]) -> Value:
    (n,) = e.options
    if n == 0:
        return pc.utf8_slice_codeunits(args[0], 0, 0)
    # right(s, -k) drops the first k characters.
    return pc.utf8_slice_codeunits(args[0], -n if n > 0 else -n)


def _pad(e: Call, args: list[Value]) -> Value:
    width, fill, left = e.options
    kernel = pc.utf8_lpad if left else pc.utf8_rpad
    padded = kernel(args[0], width=width, padding=fill)
    # Longer strings are cut to the width (DuckDB), from the left end for both.
    return pc.utf8_slice_codeunits(padded, 0, width)


def _repeat(e: Call, args: list[Value]) -> Value:
    # A negative count repeats nothing; a NULL count gives NULL.
    times = pc.max_element_wise(
        pc.cast(args[1], pa.int64()),
        pa.scalar(0, pa.int64()),
        options=pc.ElementWiseAggregateOptions(skip_nulls=False),
    )
    return pc.binary_repeat(args[0], times)


def _replace(e: Call, args: list[Value]) -> Value:
    pattern, replacement = e.options
    return pc.replace_substring(args[0], pattern=pattern, replacement=replacement)


def _strpos(e: Call, args: list[Value]) -> Value:
    # 1-based character position (0 when absent); find_substring counts bytes.
    (needle,) = e.options
    found = pc.find_substring(args[0], pattern=needle)
    positions = pc.if_else(pc.less(found, 0), pa.scalar(-1, found.type), found)
    chars = _char_offsets(args[0], positions)
    return _as(e, chars)


def _char_offsets(strings: Value, byte_positions: Value) -> Value:
    """1-based character positions of byte offsets (-1 -> 0)."""
    if isinstance(strings, pa.ChunkedArray):
        strings = strings.combine_chunks()
    if isinstance(byte_positions, pa.ChunkedArray):
        byte_positions = byte_positions.combine_chunks()
    if isinstance(strings, pa.Scalar):
        text = strings.as_py()
        pos = byte_positions.as_py()
        if text is None or pos is None:
            return pa.scalar(None, pa.int64())
        return pa.scalar(0 if pos < 0 else len(text.encode()[:pos].decode()) + 1, pa.int64())
    ascii_only = pc.all(pc.string_is_ascii(strings)).as_py()
    plus_one = pc.add(pc.cast(byte_positions, pa.int64()), 1)
    if ascii_only is not False:
        return pc.max_element_wise(
            plus_one,
            pa.scalar(0, pa.int64()),
            options=pc.ElementWiseAggregateOptions(skip_nulls=False),
        )
    # Non-ASCII text: count the characters of each prefix.
    out: list[int | None] = []
    for text, pos in zip(strings.to_pylist(), byte_positions.to_pylist(), strict=True):
        if text is None or pos is None:
            out.append(None)
        else:
            out.append(0 if pos < 0 else len(text.encode()[:pos].decode()) + 1)
    return pa.array(out, pa.int64())


def _match(kernel: str) -> Callable[[Call, list[Value]], Value]:
    def run(e: Call, args: list[Value]) -> Value:
        (pattern,) = e.options
        return pc.call_function(kernel, [args[0]], pc.MatchSubstringOptions(pattern))

    return run


def _regexp_replace(e: Call, args: list[Value]) -> Value:
    pattern, replacement, every = e.options
    return pc.replace_substring_regex(
        args[0],
        pattern=pattern,
        replacement=replacement,
        max_replacements=None if every else 1,
    )


def _split_part(e: Call, args: list[Value]) -> Value:
    # The n-th piece (1-based), or '' when there are fewer pieces.
    separator, n = e.options
    pieces = pc.split_pattern(args[0], pattern=separator)
    return pc.binary_join(pc.list_slice(pieces, n - 1, n), "")


_TRUNC_UNITS = {
    "year": "year",
    "quarter": "quarter",
    "month": "month",
    "week": "week",
    "day": "day",
    "hour": "hour",
    "minute": "minute",
    "second": "second",
}


def _date_trunc(e: Call, args: list[Value]) -> Value:
    (unit,) = e.options
    value = args[0]
    if pa.types.is_date(value.type):
        value = pc.cast(value, pa.timestamp("us"))
    floored = pc.floor_temporal(value, unit=_TRUNC_UNITS[unit], week_starts_monday=True)
    return _as(e, floored)


def _date_diff(e: Call, args: list[Value]) -> Value:
    # Boundaries crossed from the first date to the second, as DuckDB counts them.
    (unit,) = e.options
    start, end = args
    if unit in ("day", "week"):
        days = pc.days_between(start, end)
        if unit == "day":
            return _as(e, days)
        return _as(e, pc.divide(pc.cast(days, pa.int64()), 7))

    def index(d: Value) -> Value:
        year = pc.cast(pc.year(d), pa.int64())
        if unit == "year":
            return year
        month = pc.cast(pc.month(d), pa.int64())
        if unit == "quarter":
            return pc.add(pc.multiply(year, 4), pc.divide(pc.subtract(month, 1), 3))
        return pc.add(pc.multiply(year, 12), month)

    return _as(e, pc.subtract(index(end), index(start)))


def _make_date(e: Call, args: list[Value]) -> Value:
    """make_date(y, m, d) as DATE; a day that does not exist is an error (DuckDB)."""
    parts = []
    for a in args:
        if isinstance(a, pa.Scalar):
            a = pa.array([a.as_py()], pa.int64())
        elif isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        parts.append(a.cast(pa.int64()))
    n = max(len(p) for p in parts)
    parts = [p if len(p) == n else pa.array(p.to_pylist() * n, pa.int64()) for p in parts]
    valid = np.ones(n, dtype=bool)
    for p in parts:
        valid &= np.asarray(p.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    y, m, d = (np.asarray(p.fill_null(1).to_numpy(), np.int64) for p in parts)
    bad = valid & ((m < 1) | (m > 12) | (d < 1) | (y < -290000) | (y > 290000))
    month = ((y - 1970) * 12 + np.clip(m, 1, 12) - 1).astype("datetime64[M]")
    next_month = month + np.timedelta64(1, "M")
    length = (next_month.astype("datetime64[D]") - month.astype("datetime64[D]")).astype(np.int64)
    bad |= valid & (d > length)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidDataError(f"Date out of range: {y[i]}-{m[i]}-{d[i]}")
    days = month.astype("datetime64[D]").astype(np.int64) + np.where(valid, d - 1, 0)
    out = pa.array(days.astype(np.int32), pa.int32(), mask=~valid).cast(pa.date32())
    return out if n != 1 or not all(isinstance(a, pa.Scalar) for a in args) else out[0]


def _strftime(e: Call, args: list[Value]) -> Value:
    (fmt,) = e.options
    value = args[0]
    # Whole seconds: Arrow's %S prints the fraction of a sub-second unit, DuckDB's not.
    value = pc.cast(value, pa.timestamp("s"), safe=False)
    return pc.strftime(value, format=fmt)


def _strptime(e: Call, args: list[Value]) -> Value:
    (fmt,) = e.options
    return pc.strptime(args[0], format=fmt, unit="us")


def _regexp_extract(e: Call, args: list[Value]) -> Value:
    # The pattern's groups were renamed g0 (the whole match), g1, ... at bind time.
    pattern, group = e.options
    found = pc.struct_field(pc.extract_regex(args[0], pattern=pattern), f"g{group}")
    # No match (or a group that took no part) is the empty string, NULL stays NULL.
    return pc.if_else(pc.is_valid(args[0]), pc.fill_null(found, ""), pa.scalar(None, pa.string()))


# ------------------------------------------------------------------ lists


def _arrays(args: list[Value]) -> tuple[list[pa.Array], bool]:
    """The arguments as arrays of one length (scalars repeated), and whether all were
    scalars (the result is then a scalar too)."""
    lengths = [len(a) for a in args if not isinstance(a, pa.Scalar)]
    n = lengths[0] if lengths else 1
    out = []
    for a in args:
        if isinstance(a, pa.Scalar):
            a = pa.array([a.as_py()], a.type) if n == 1 else pa.repeat(a, n)
        elif isinstance(a, pa.ChunkedArray):
            a = a.combine_chunks()
        out.append(a)
    return out, not lengths


def _scalar_if(out: pa.Array, scalar: bool) -> Value:
    return out[0] if scalar else out


def _valid(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def _list_value(e: Call, args: list[Value]) -> Value:
    """``[a, b, ...]``: one list per row of its arguments' values."""
    arrays, scalar = _arrays(args)
    n, k = len(arrays[0]), len(arrays)
    element = e.type.value_type
    stacked = pa.concat_arrays([a.cast(element) for a in arrays])
    order = np.arange(k, dtype=np.int64)[None, :] * n + np.arange(n, dtype=np.int64)[:, None]
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    out = pa.ListArray.from_arrays(offsets, stacked.take(pa.array(order.ravel())))
    return _scalar_if(_as(e, out), scalar)


def _list_length(e: Call, args: list[Value]) -> Value:
    return _as(e, pc.list_value_length(args[0]))


def _list_element(e: Call, args: list[Value]) -> Value:
    """``l[i]``: 1-based, negative from the end; NULL out of range (DuckDB)."""
    (lists, index), scalar = _arrays(args)
    lengths = np.asarray(pc.list_value_length(lists).fill_null(0), dtype=np.int64)
    starts = np.asarray(lists.offsets, dtype=np.int64)[:-1]
    i = np.asarray(pc.cast(index, pa.int64()).fill_null(0), dtype=np.int64)
    pos = np.where(i > 0, i - 1, lengths + i)
    ok = _valid(lists) & _valid(index) & (i != 0) & (pos >= 0) & (pos < lengths)
    where = pa.array(np.where(ok, starts + pos, 0), pa.int64(), mask=~ok)
    return _scalar_if(_as(e, lists.values.take(where)), scalar)


def _list_contains(e: Call, args: list[Value]) -> Value:
    """Whether the list holds the value; NULL for a NULL list; NULL elements never
    match (DuckDB)."""
    (lists, needle), scalar = _arrays(args)
    flat = pc.list_flatten(lists)
    parents = np.asarray(pc.list_parent_indices(lists), dtype=np.int64)
    equal = pc.fill_null(pc.equal(flat, needle.take(pa.array(parents, pa.int64()))), False)
    hit = np.zeros(len(lists), dtype=bool)
    hit[parents[np.asarray(equal.to_numpy(zero_copy_only=False), dtype=bool)]] = True
    # A NULL value is NULL against a non-empty list, false against an empty one.
    lengths = np.asarray(pc.list_value_length(lists).fill_null(0), dtype=np.int64)
    known = _valid(lists) & (_valid(needle) | (lengths == 0))
    return _scalar_if(pa.array(hit, pa.bool_(), mask=~known), scalar)


def _list_sort(e: Call, args: list[Value]) -> Value:
    """Each list sorted; options (ascending, nulls_first)."""
    ascending, nulls_first = e.options
    (lists,), scalar = _arrays(args)
    flat = pc.list_flatten(lists)
    parents = pa.array(pc.list_parent_indices(lists), pa.int64())
    order = pc.sort_indices(
        pa.table({"p": parents, "v": flat}),
        sort_keys=[
            ("p", "ascending"),
            (
                "v",
                "ascending" if ascending else "descending",
                "at_start" if nulls_first else "at_end",
            ),
        ],
    )
    lengths = np.asarray(pc.list_value_length(lists).fill_null(0), dtype=np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32))
    out = pa.ListArray.from_arrays(offsets, flat.take(order), mask=pa.array(~_valid(lists)))
    return _scalar_if(_as(e, out), scalar)


FUNCTION_KERNELS: dict[str, Callable[[Call, list[Value]], Value]] = {
    "floor": _rounding("floor"),
    "ceil": _rounding("ceil"),
    "trunc": _rounding("trunc"),
    "ln": _float_unary("ln"),
    "exp": _float_unary("exp"),
    "log": _log,
    "power": _power,
    "sign": _sign,
    "greatest": _extreme("max_element_wise"),
    "least": _extreme("min_element_wise"),
    "left": _left,
    "right": _right,
    "pad": _pad,
    "repeat": _repeat,
    "reverse": lambda e, args: pc.utf8_reverse(args[0]),
    "replace": _replace,
    "strpos": _strpos,
    "starts_with": _match("starts_with"),
    "ends_with": _match("ends_with"),
    "contains": _match("match_substring"),
    "regexp_matches": _match("match_substring_regex"),
    "regexp_replace": _regexp_replace,
    "split_part": _split_part,
    "date_trunc": _date_trunc,
    "date_diff": _date_diff,
    "make_date": _make_date,
    "strftime": _strftime,
    "strptime": _strptime,
    "regexp_extract": _regexp_extract,
    "list_value": _list_value,
    "list_length": _list_length,
    "list_element": _list_element,
    "list_contains": _list_contains,
    "list_sort": _list_sort,
}
