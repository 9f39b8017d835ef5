"""DuckDB's semantics for floating-point values, held everywhere values meet.

IEEE 754 says NaN equals nothing (itself included) and orders with nothing, and
keeps -0.0 apart from 0.0 bit for bit. DuckDB instead treats NaN as one value,
equal to itself and greater than every number, and -0.0 as 0.0. Arrow follows
IEEE (or the bits) in its comparison kernels, its hash grouping, ``is_in``,
min/max and sorts; this module holds the corrections. Each one costs a pass only
over float columns, and the NaN fix-ups run only when a NaN is present.
The exchange hash (``hashing.py``) already maps -0.0 to 0.0 and every NaN to one.
"""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from shoal.types import is_float

NAN = float("nan")


def has_nan(v: Any) -> bool:
    """Whether an array, chunked array or scalar of floats holds a NaN."""
    if isinstance(v, pa.Scalar):
        return bool(v.is_valid and math.isnan(v.as_py()))
    return bool(pc.any(pc.is_nan(v)).as_py())


def normalize(v: Any) -> Any:
    """-0.0 as 0.0 and every NaN as one NaN, so equal values have equal bits.

    For grouping, DISTINCT and IN lists, which compare bits or hashes.
    """
    if not is_float(v.type):
        return v
    if isinstance(v, pa.Scalar):
        if not v.is_valid:
            return v
        x = v.as_py()
        return pa.scalar(NAN if math.isnan(x) else (0.0 if x == 0 else x), v.type)
    special = pc.or_(pc.equal(v, 0.0), pc.is_nan(v))
    if not pc.any(special).as_py():
        return v
    replacement = pc.if_else(pc.is_nan(v), pa.scalar(NAN, v.type), pa.scalar(0.0, v.type))
    return pc.if_else(special, replacement, v)


def compare(kernel: str, a: Any, b: Any) -> Any:
    """A comparison kernel (``equal``, ``less``…) with NaN equal to itself and greatest."""
    out = pc.call_function(kernel, [a, b])
    if not (is_float(a.type) or is_float(b.type)) or not (has_nan(a) or has_nan(b)):
        return out
    nan_a, nan_b = pc.is_nan(_as_float(a)), pc.is_nan(_as_float(b))
    either = pc.or_(nan_a, nan_b)
    if kernel == "equal":
        fixed = pc.and_(nan_a, nan_b)
    elif kernel == "not_equal":
        fixed = pc.xor(nan_a, nan_b)
    elif kernel == "less":
        fixed = pc.and_(pc.invert(nan_a), nan_b)
    elif kernel == "less_equal":
        fixed = nan_b
    elif kernel == "greater":
        fixed = pc.and_(nan_a, pc.invert(nan_b))
    elif kernel == "greater_equal":
        fixed = nan_a
    else:
        raise ValueError(f"not a comparison: {kernel}")
    return pc.if_else(either, fixed, out)


def _as_float(v: Any) -> Any:
    """Non-float operands of a mixed comparison are never NaN."""
    return v if is_float(v.type) else pc.cast(v, pa.float64())


def needs_nan_key(type_: pa.DataType, ascending: bool, nulls_first: bool) -> bool:
    """Whether Arrow's sort misplaces NaN for this key.

    Arrow sorts NaN next to the NULLs: right for ASC NULLS LAST and DESC NULLS FIRST,
    wrong for the other two, where NaN (the greatest value) must sit away from them.
    """
    return is_float(type_) and ascending == nulls_first
