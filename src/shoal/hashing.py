"""The process-stable, vectorized row hash behind hash exchanges and hash-partitioned tables.

Hash values and partition ids are an on-disk layout contract: never change them silently.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.arrays import pooled_concatenate

__all__ = [
    "HASH_FUNCTION",
    "NULL_HASH",
    "hash_columns",
    "partition_ids",
    "sort_by_partition",
    "split_by_partition",
]

#: Name and version of the row hash; recorded in the metadata of hash-partitioned tables.
#: Any change to the values produced below must come with a new name.
HASH_FUNCTION = "shoal-rowhash-v1"

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("shoal.hashing assumes a little-endian host")

U64 = npt.NDArray[np.uint64]

_MASK64 = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # splitmix64 increment
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finalizer multipliers
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S32 = np.uint64(32)
_COMBINE_MUL = np.uint64(0xFF51AFD7ED558CCD)  # multiplier for folding in the next column
_STRING_SEED = np.uint64(0x27D4EB2F165667C5)
_POLY_BASE = 0xC2B2AE3D27D4EB4F  # odd, so it is invertible mod 2**64
_POLY_INV = pow(_POLY_BASE, -1, 1 << 64)
_CANONICAL_NAN = np.uint64(0x7FF8000000000000)

#: Hash of a NULL value (of any type).
NULL_HASH = np.uint64(0x5BE0CD19137E2179)

# Strings are hashed in blocks of at most this many bytes (one string longer than this is
# folded in pieces of this size), which bounds the temporary uint64 arrays.
_BLOCK_BYTES = 1 << 16

_pow_cache: tuple[U64, U64] = (np.ones(1, np.uint64), np.ones(1, np.uint64))


# ------------------------------------------------------------------------------ public API


def hash_columns(columns: Sequence[pa.Array | pa.ChunkedArray]) -> U64:
    """Hash each row of ``columns`` to a uint64, the same in every process and every run.

    Multi-column keys fold the column hashes in order (the result is order-sensitive).
    The hash of a value depends only on the value and its type family, not on chunking,
    slicing or whether a validity bitmap is present; NULL hashes to ``NULL_HASH`` within
    a column. Integers (signed, unsigned, bool) hash by value, so an int32 and an int64
    key holding the same numbers hash alike; floats are normalized (-0.0 to 0.0, one NaN)
    and float32 hashes like the equal float64; binary and string hash alike. Nothing else is
    reconciled (timestamp units, decimal scales, date32 vs date64): both sides of an exchange
    must hash keys of the same type.
    Raises ``TypeError`` for an unsupported type and ``ValueError`` for no columns or
    columns of different lengths.
    """
    if len(columns) == 0:
        raise ValueError("hash_columns needs at least one column")
    result: U64 | None = None
    for column in columns:
        h = _hash_column(column)
        if result is None:
            result = h
        else:
            if len(h) != len(result):
                raise ValueError(
                    f"hash_columns got columns of different lengths ({len(result)} and {len(h)})"
                )
            result *= _COMBINE_MUL
            result += h
            _mix_inplace(result)
    assert result is not None
    return result


def partition_ids(
    columns: Sequence[pa.Array | pa.ChunkedArray], num_partitions: int, seed: int = 0
) -> npt.NDArray[np.int32]:
    """Assign each row to a partition in ``[0, num_partitions)`` from its row hash.

    Uses the high 32 bits of the hash with a multiply-shift (``(h >> 32) * n >> 32``), so it
    needs no division and does not lean on the low bits. Part of the layout contract
    (with ``seed=0``). A non-zero ``seed`` re-mixes the hash first: rows that one
    partitioning put together (an exchange's partition, a spill partition) spread again
    (grace aggregate and join spill partitions, one seed per recursion level).
    """
    if not 1 <= num_partitions < (1 << 31):
        raise ValueError(f"num_partitions must be in [1, 2**31), got {num_partitions}")
    h = hash_columns(columns)
    if seed:
        h ^= np.uint64((seed * int(_MIX2)) & _MASK64)
        _splitmix(h)
    h >>= _S32
    h *= np.uint64(num_partitions)
    h >>= _S32
    return h.astype(np.int32)


def split_by_partition(
    batch: pa.RecordBatch,
    partition_ids: npt.ArrayLike,
    num_partitions: int,
    *,
    owned: bool = True,
) -> list[pa.RecordBatch]:
    """Split ``batch`` into ``num_partitions`` batches by each row's partition id.

    Output ``i`` holds the rows with id ``i`` in their original order (an empty batch
    with the same schema if there are none). Its ``num_rows`` is the partition's row count.

    ``owned``: one ``take`` per non-empty partition, so each output owns its buffers.
    Otherwise one ``take`` and zero-copy slices of it — about 1.5× faster at 64 K-row
    batches (bench/hashing.py), but every slice pins the whole shuffled batch: a consumer
    that spills or finishes its share frees nothing while another destination still holds
    a slice, and the memory pool, which counts each slice at its own size, no longer sees
    what is live. Slices suit a caller that holds all outputs equally long, or one whose
    pool is not under pressure.
    """
    order, bounds = _partition_order(batch, partition_ids, num_partitions)
    empty = batch.slice(0, 0)
    if order is None:  # every row has one id: that partition is the input itself
        return [batch if end > start else empty for start, end in itertools.pairwise(bounds)]
    if not owned:
        shuffled = batch.take(pa.array(order))
        return [
            shuffled.slice(start, end - start) if end > start else empty
            for start, end in itertools.pairwise(bounds)
        ]
    return [
        batch.take(pa.array(order[start:end])) if end > start else empty
        for start, end in itertools.pairwise(bounds)
    ]


def sort_by_partition(
    batch: pa.RecordBatch, partition_ids: npt.ArrayLike, num_partitions: int
) -> tuple[pa.RecordBatch, list[int]]:
    """``batch``'s rows ordered by partition id (stably), and the ``num_partitions + 1``
    bounds: partition ``i``'s rows are ``[bounds[i], bounds[i + 1])`` of the result.

    One stable sort of the ids and one ``take``; none when every row has the same id.
    For a caller that writes the ranges out at once (slices of the result share it).
    """
    order, bounds = _partition_order(batch, partition_ids, num_partitions)
    return (batch if order is None else batch.take(pa.array(order))), bounds


def _partition_order(
    batch: pa.RecordBatch, partition_ids: npt.ArrayLike, num_partitions: int
) -> tuple[npt.NDArray[np.intp] | None, list[int]]:
    """The row order that groups ``batch``'s rows by partition id (stably) and the
    ``num_partitions + 1`` bounds of each partition's run in it; ``None`` for the order
    when the rows already are in it (no rows, or every row has the same id)."""
    if num_partitions < 1:
        raise ValueError(f"num_partitions must be at least 1, got {num_partitions}")
    ids = np.asarray(partition_ids)
    if ids.ndim != 1 or len(ids) != batch.num_rows:
        raise ValueError(
            f"expected {batch.num_rows} partition ids in a 1-d array, got shape {ids.shape}"
        )
    if batch.num_rows == 0:
        return None, [0] * (num_partitions + 1)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"partition ids must be integers, got {ids.dtype}")
    lo, hi = int(ids.min()), int(ids.max())
    if lo < 0 or hi >= num_partitions:
        raise ValueError(f"partition ids must be in [0, {num_partitions}), got [{lo}, {hi}]")
    if lo == hi:  # every row goes to one partition: no copy at all
        n = batch.num_rows
        return None, [0] * (lo + 1) + [n] * (num_partitions - lo)
    # numpy's stable argsort is a radix sort for integers of 16 bits or less.
    if num_partitions <= 1 << 8:
        keys = ids.astype(np.uint8, copy=False)
    elif num_partitions <= 1 << 16:
        keys = ids.astype(np.uint16, copy=False)
    else:
        keys = ids
    order = np.argsort(keys, kind="stable")
    # Run bounds by searching the sorted ids (np.bincount would hold the GIL).
    bounds = np.searchsorted(keys[order], np.arange(num_partitions + 1))
    return order, bounds.tolist()


# ------------------------------------------------------------------------------- mixing


def _mix_inplace(x: U64) -> None:
    """The splitmix64 finalizer (Stafford variant 13), a bijection on uint64, in place."""
    x ^= x >> _S30
    x *= _MIX1
    x ^= x >> _S27
    x *= _MIX2
    x ^= x >> _S31


def _splitmix(x: U64) -> U64:
    """splitmix64 of each element, in place on ``x`` (which must be writable)."""
    x += _GOLDEN
    _mix_inplace(x)
    return x


# ------------------------------------------------------------------------------- dispatch


def _hash_column(column: pa.Array | pa.ChunkedArray) -> U64:
    if isinstance(column, pa.ChunkedArray):
        _check_type(column.type)
        parts = [_hash_array(chunk) for chunk in column.chunks]
        if not parts:
            return np.empty(0, dtype=np.uint64)
        return parts[0] if len(parts) == 1 else pooled_concatenate(parts)
    if isinstance(column, pa.Array):
        return _hash_array(column)
    raise TypeError(f"expected a pyarrow Array or ChunkedArray, got {type(column).__name__}")


def _check_type(t: pa.DataType) -> None:
    if pa.types.is_dictionary(t):
        _check_type(t.value_type)
    elif not _is_supported(t):
        raise TypeError(f"cannot hash values of type {t}")


def _is_supported(t: pa.DataType) -> bool:
    return bool(
        pa.types.is_null(t)
        or pa.types.is_boolean(t)
        or pa.types.is_integer(t)
        or pa.types.is_floating(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date(t)
        or pa.types.is_timestamp(t)
        or pa.types.is_time(t)
        or pa.types.is_duration(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_binary_view(t)
        or pa.types.is_fixed_size_binary(t)
    )


def _hash_array(arr: pa.Array) -> U64:
    t = arr.type
    n = len(arr)
    if pa.types.is_dictionary(t):
        return _hash_dictionary(arr)
    _check_type(t)
    if pa.types.is_null(t):
        return np.full(n, NULL_HASH, dtype=np.uint64)
    if pa.types.is_string_view(t) or pa.types.is_binary_view(t):
        target = pa.string() if pa.types.is_string_view(t) else pa.binary()
        return _hash_array(pc.cast(arr, target))
    if pa.types.is_boolean(t):
        h = _splitmix(_bits(arr.buffers()[1], arr.offset, n).astype(np.uint64))
    elif pa.types.is_floating(t):
        h = _hash_floats(arr)
    elif pa.types.is_decimal(t) and t.bit_width >= 128:
        h = _hash_words(_fixed_values(arr, np.dtype("<u8"), t.bit_width // 64))
    elif pa.types.is_fixed_size_binary(t):
        h = _hash_fixed_size_binary(arr)
    elif pa.types.is_binary(t) or pa.types.is_string(t):
        h = _hash_var_binary(arr, np.dtype(np.int32))
    elif pa.types.is_large_binary(t) or pa.types.is_large_string(t):
        h = _hash_var_binary(arr, np.dtype(np.int64))
    else:
        # Integers, decimal32/64 and the temporal types: hash the (sign-extended) integer.
        h = _splitmix(_int_values(arr).astype(np.int64).view(np.uint64))
    valid = _validity(arr)
    if valid is not None:
        h[~valid] = NULL_HASH
    return h


# ------------------------------------------------------------------------ buffer access


def _bits(buf: pa.Buffer | None, offset: int, n: int) -> npt.NDArray[np.bool_]:
    """Unpack ``n`` bits starting at bit ``offset`` of an Arrow bitmap."""
    if n == 0 or buf is None:
        return np.zeros(n, dtype=np.bool_)
    first = offset // 8
    nbytes = (offset % 8 + n + 7) // 8
    raw = np.frombuffer(buf, dtype=np.uint8, count=first + nbytes)[first:]
    bits = np.unpackbits(raw, bitorder="little")[offset % 8 : offset % 8 + n]
    return bits.view(np.bool_)


def _validity(arr: pa.Array) -> npt.NDArray[np.bool_] | None:
    """The validity of each slot, or None when there are no nulls."""
    if arr.null_count == 0:
        return None
    return _bits(arr.buffers()[0], arr.offset, len(arr))


def _fixed_values(arr: pa.Array, dtype: np.dtype, width: int = 1) -> np.ndarray:
    """The values buffer of a fixed-width array as ``dtype`` (``width`` items per slot)."""
    n = len(arr)
    buf = arr.buffers()[1]
    if n == 0 or buf is None:
        shape: tuple[int, ...] = (n, width) if width > 1 else (n,)
        return np.zeros(shape, dtype=dtype)
    values = np.frombuffer(buf, dtype=dtype, count=(arr.offset + n) * width)
    if width > 1:
        values = values.reshape(-1, width)
    return values[arr.offset : arr.offset + n]


def _int_values(arr: pa.Array) -> np.ndarray:
    t = arr.type
    if pa.types.is_integer(t):
        dtype = np.dtype(t.to_pandas_dtype())
    else:
        dtype = np.dtype(np.int32 if t.bit_width == 32 else np.int64)
    return _fixed_values(arr, dtype)


# ------------------------------------------------------------------------- type hashers


def _hash_floats(arr: pa.Array) -> U64:
    t = arr.type
    dtype: np.dtype
    if t.bit_width == 16:
        dtype = np.dtype(np.float16)
    elif t.bit_width == 32:
        dtype = np.dtype(np.float32)
    else:
        dtype = np.dtype(np.float64)
    values = _fixed_values(arr, dtype).astype(np.float64)  # exact widening, and a copy
    values[values == 0.0] = 0.0  # -0.0 == 0.0
    bits = values.view(np.uint64)
    bits[np.isnan(values)] = _CANONICAL_NAN
    return _splitmix(bits)


def _hash_words(words: U64) -> U64:
    """Hash rows of little-endian 64-bit words (low word first), e.g. decimal128 values."""
    h = _splitmix(words[:, 0].copy())
    for k in range(1, words.shape[1]):
        h *= _COMBINE_MUL
        h += words[:, k]
        _mix_inplace(h)
    return h


def _hash_dictionary(arr: pa.DictionaryArray) -> U64:
    """Hash the dictionary once, then gather: equal to hashing the decoded values."""
    _check_type(arr.type)
    dict_hashes = _hash_array(arr.dictionary)
    indices = arr.indices
    idx = _int_values(indices).astype(np.intp)
    valid = _validity(indices)
    if valid is None:
        return dict_hashes[idx]
    if len(dict_hashes) == 0:
        return np.full(len(idx), NULL_HASH, dtype=np.uint64)
    h = dict_hashes[np.where(valid, idx, 0)]
    h[~valid] = NULL_HASH
    return h


def _hash_fixed_size_binary(arr: pa.Array) -> U64:
    n = len(arr)
    width = arr.type.byte_width
    buf = arr.buffers()[1]
    if n == 0 or buf is None or width == 0:
        data = np.zeros(0, dtype=np.uint8)
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        data = np.frombuffer(buf, dtype=np.uint8, count=(arr.offset + n) * width)
        offsets = np.arange(arr.offset, arr.offset + n + 1, dtype=np.int64) * width
    return _hash_bytes(offsets, data)


def _hash_var_binary(arr: pa.Array, offset_dtype: np.dtype) -> U64:
    n = len(arr)
    buffers = arr.buffers()
    if n == 0 or buffers[1] is None:
        return _hash_bytes(np.zeros(n + 1, dtype=np.int64), np.zeros(0, dtype=np.uint8))
    offsets = np.frombuffer(buffers[1], dtype=offset_dtype, count=arr.offset + n + 1)
    offsets = offsets[arr.offset :].astype(np.int64)
    data_buf = buffers[2]
    if data_buf is None or data_buf.size == 0:
        data = np.zeros(0, dtype=np.uint8)
    else:
        data = np.frombuffer(data_buf, dtype=np.uint8, count=int(offsets[-1]))
    return _hash_bytes(offsets, data)


def _powers(k: int) -> tuple[U64, U64]:
    """``P**j`` and ``P**-j`` mod 2**64 for ``j < k`` (cached, grown on demand)."""
    global _pow_cache
    pw, inv = _pow_cache
    if len(pw) < k:
        size = max(k, 2 * len(pw))
        pw = np.full(size, _POLY_BASE, dtype=np.uint64)
        pw[0] = 1
        np.multiply.accumulate(pw, out=pw)  # wraps mod 2**64, silently for arrays
        inv = np.full(size, _POLY_INV, dtype=np.uint64)
        inv[0] = 1
        np.multiply.accumulate(inv, out=inv)
        _pow_cache = (pw, inv)
    return pw[:k], inv[:k]


def _hash_bytes(offsets: npt.NDArray[np.int64], data: npt.NDArray[np.uint8]) -> U64:
    """Hash the byte strings ``data[offsets[i]:offsets[i + 1]]``.

    Each string's polynomial ``sum(b[j] * P**j)`` mod 2**64 (j counted from the start of
    the string) comes from prefix sums over a block of strings, shifted back by ``P**-s``;
    it is then mixed with the string's length through splitmix64. Good on ordinary data, but
    not collision-resistant against crafted input (such polynomials mod 2**64 have known
    colliding families, e.g. Thue-Morse strings), which could only skew partitions.
    """
    n = len(offsets) - 1
    out = np.empty(n, dtype=np.uint64)
    block = _BLOCK_BYTES
    pw, inv = _powers(block + 1)
    r0 = 0
    while r0 < n:
        base = int(offsets[r0])
        r1 = min(int(np.searchsorted(offsets, base + block, side="right")) - 1, n)
        if r1 <= r0:  # one string longer than a block
            out[r0] = _poly_long(data[base : int(offsets[r0 + 1])], pw[:block])
            r0 += 1
            continue
        length = int(offsets[r1]) - base
        prefix = np.empty(length + 1, dtype=np.uint64)
        prefix[0] = 0
        np.multiply(data[base : base + length], pw[:length], out=prefix[1:])
        np.cumsum(prefix, out=prefix)
        rel = offsets[r0 : r1 + 1] - base
        at = prefix[rel]
        poly = out[r0:r1]
        np.subtract(at[1:], at[:-1], out=poly)
        poly *= inv[rel[:-1]]
        r0 = r1
    lengths = np.diff(offsets).astype(np.uint64)
    lengths *= _GOLDEN
    out += lengths
    out += _STRING_SEED
    _mix_inplace(out)
    return out


def _poly_long(data: npt.NDArray[np.uint8], pw: U64) -> int:
    """The polynomial of one long string, folded a block at a time (Python ints mod 2**64)."""
    block = len(pw)
    total = 0
    for start in range(0, len(data), block):
        piece = data[start : start + block]
        part = int(np.multiply(piece, pw[: len(piece)], dtype=np.uint64).sum(dtype=np.uint64))
        total = (total + part * pow(_POLY_BASE, start, 1 << 64)) & _MASK64
    return total
