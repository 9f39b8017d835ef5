"""Tests for the exchange row hash (shoal.hashing): values, stability, partitioning."""

from __future__ import annotations

import datetime
import decimal
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

try:
    from shoal import hashing
except ImportError:  # a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from shoal import hashing

from shoal.hashing import (
    HASH_FUNCTION,
    NULL_HASH,
    hash_columns,
    partition_ids,
    split_by_partition,
)

SRC = str(Path(hashing.__file__).resolve().parents[2])

# ---------------------------------------------------------------- pure-Python reference
# The definition of shoal-rowhash-v1, written out one value at a time.

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
COMBINE = 0xFF51AFD7ED558CCD
STRING_SEED = 0x27D4EB2F165667C5
POLY_BASE = 0xC2B2AE3D27D4EB4F
REF_NULL = 0x5BE0CD19137E2179


def ref_mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def ref_int(v: int | None) -> int:
    return REF_NULL if v is None else ref_mix(((v & M64) + GOLDEN) & M64)


def ref_bytes(b: bytes | str | None) -> int:
    if b is None:
        return REF_NULL
    if isinstance(b, str):
        b = b.encode()
    poly = 0
    for byte in reversed(b):  # Horner: sum(b[j] * P**j)
        poly = (poly * POLY_BASE + byte) & M64
    return ref_mix((poly + len(b) * GOLDEN + STRING_SEED) & M64)


def ref_decimal128(unscaled: int | None) -> int:
    if unscaled is None:
        return REF_NULL
    lo, hi = unscaled & M64, (unscaled >> 64) & M64
    return ref_mix((ref_int(lo) * COMBINE + hi) & M64)


def ref_combine(hashes: list[int]) -> int:
    h = hashes[0]
    for c in hashes[1:]:
        h = ref_mix((h * COMBINE + c) & M64)
    return h


def ref_partition(h: int, n: int) -> int:
    return ((h >> 32) * n) >> 32


# ------------------------------------------------------------------------- type samples

D = decimal.Decimal
UTC = datetime.UTC

SAMPLES: list[tuple[pa.DataType, list[Any]]] = [
    (pa.bool_(), [True, False, None, True, False, False, True, True, False, True]),
    (pa.int8(), [0, 1, -1, 127, -128, None, 5]),
    (pa.int16(), [0, 1, -1, 32767, -32768, None, 5]),
    (pa.int32(), [0, 1, -1, 2**31 - 1, -(2**31), None, 5]),
    (pa.int64(), [0, 1, -1, 2**63 - 1, -(2**63), None, 5]),
    (pa.uint8(), [0, 1, 255, None, 7]),
    (pa.uint16(), [0, 1, 65535, None, 7]),
    (pa.uint32(), [0, 1, 2**32 - 1, None, 7]),
    (pa.uint64(), [0, 1, 2**64 - 1, None, 7]),
    (pa.float16(), [np.float16(0.5), np.float16(-2.0), None, np.float16(3.0)]),
    (pa.float32(), [0.0, 1.5, -2.25, None, float("inf"), float("nan")]),
    (pa.float64(), [0.0, 1.5, -2.25, None, float("-inf"), float("nan"), 1e300]),
    (pa.decimal128(15, 2), [D("0.00"), D("1.23"), D("-1.23"), None, D("9999999999999.99")]),
    (pa.decimal128(38, 0), [D(0), D(10**37), D(-(10**37)), None]),
    (pa.decimal256(50, 3), [D("0.000"), D("1.234"), D("-" + "9" * 47 + ".999"), None]),
    (pa.date32(), [datetime.date(1970, 1, 1), datetime.date(2024, 2, 29), None]),
    (pa.date64(), [datetime.date(1970, 1, 1), datetime.date(1900, 1, 1), None]),
    (pa.timestamp("us"), [datetime.datetime(2024, 1, 1, 12), None, datetime.datetime(1969, 1, 1)]),
    (pa.timestamp("ns", tz="UTC"), [datetime.datetime(2024, 1, 1, tzinfo=UTC), None]),
    (pa.time32("ms"), [datetime.time(0, 0), datetime.time(23, 59, 59), None]),
    (pa.time64("us"), [datetime.time(0, 0), datetime.time(12, 30, 1, 5), None]),
    (pa.duration("s"), [datetime.timedelta(0), datetime.timedelta(days=-3), None]),
    (pa.string(), ["", "a", "key1", None, "héllo wörld ✓", "x" * 300]),
    (pa.large_string(), ["", "a", "key1", None, "héllo"]),
    (pa.string_view(), ["", "a", None, "a longer string than twelve bytes"]),
    (pa.binary(), [b"", b"\x00", b"\x00\x00", None, b"\xff" * 20]),
    (pa.large_binary(), [b"", b"\x00", None, b"abc"]),
    (pa.binary_view(), [b"", b"\x00", None, b"a longer binary than twelve bytes"]),
    (pa.binary(3), [b"abc", b"\x00\x00\x00", None, b"xyz"]),
    (pa.null(), [None, None, None]),
]
SAMPLE_IDS = [str(t) for t, _ in SAMPLES]


@pytest.mark.parametrize(("typ", "values"), SAMPLES, ids=SAMPLE_IDS)
def test_every_type_hashes_values_and_nulls(typ: pa.DataType, values: list[Any]) -> None:
    arr = pa.array(values, type=typ)
    h = hash_columns([arr])
    assert h.dtype == np.uint64 and h.shape == (len(values),)
    nulls = np.asarray(arr.is_null())
    assert (h[nulls] == NULL_HASH).all()
    # equal values hash equal, distinct values (in these samples) hash distinct
    by_value: dict[Any, int] = {}
    present = [v for v in arr.to_pylist() if v is not None]
    for value, hv in zip(present, h[~nulls].tolist(), strict=True):
        key = "nan" if isinstance(value, float) and value != value else value
        assert by_value.setdefault(key, hv) == hv
    assert len(set(by_value.values())) == len(by_value)
    assert NULL_HASH not in by_value.values()


@pytest.mark.parametrize(("typ", "values"), SAMPLES, ids=SAMPLE_IDS)
def test_every_type_is_independent_of_slicing_and_chunking(
    typ: pa.DataType, values: list[Any]
) -> None:
    arr = pa.array(values * 5, type=typ)  # long enough for offsets that are not byte-aligned
    full = hash_columns([arr])
    for offset in (1, 3, 7, 9):
        np.testing.assert_array_equal(hash_columns([arr.slice(offset)]), full[offset:])
        np.testing.assert_array_equal(hash_columns([arr.slice(offset, 4)]), full[offset:][:4])
    chunked = pa.chunked_array([arr.slice(0, 3), arr.slice(3, 0), arr.slice(3, 5), arr.slice(8)])
    np.testing.assert_array_equal(hash_columns([chunked]), full)
    np.testing.assert_array_equal(
        hash_columns([pa.concat_arrays([arr.slice(2), arr])])[-len(arr) :], full
    )
    assert hash_columns([arr.slice(0, 0)]).shape == (0,)


@pytest.mark.parametrize(("typ", "values"), SAMPLES, ids=SAMPLE_IDS)
def test_dictionary_hashes_like_decoded_values(typ: pa.DataType, values: list[Any]) -> None:
    arr = pa.array(values * 3, type=typ)
    if pa.types.is_null(typ):
        dict_arr = pa.DictionaryArray.from_arrays(pa.array([None] * len(arr), pa.int32()), arr)
    else:
        dict_arr = pc.dictionary_encode(arr)
    expected = hash_columns([arr])
    np.testing.assert_array_equal(hash_columns([dict_arr]), expected)
    np.testing.assert_array_equal(hash_columns([dict_arr.slice(5)]), expected[5:])


def test_dictionary_nulls_in_indices_and_values() -> None:
    dictionary = pa.array(["a", None, "b"])
    indices = pa.array([0, 1, 2, None, 2, 0], pa.int8())
    arr = pa.DictionaryArray.from_arrays(indices, dictionary)
    expected = hash_columns([pa.array(["a", None, "b", None, "b", "a"])])
    np.testing.assert_array_equal(hash_columns([arr]), expected)
    empty_dict = pa.DictionaryArray.from_arrays(
        pa.array([None, None], pa.int32()), pa.array([], pa.string())
    )
    assert (hash_columns([empty_dict]) == NULL_HASH).all()


def test_reference_definition_ints_strings_decimals() -> None:
    rng = np.random.default_rng(7)
    ints = [int(v) for v in rng.integers(-(2**63), 2**63 - 1, 200, dtype=np.int64)] + [None]
    assert hash_columns([pa.array(ints, pa.int64())]).tolist() == [ref_int(v) for v in ints]
    strings: list[str | None] = [
        "".join(chr(c) for c in rng.integers(32, 0x2FF, int(k))) for k in rng.integers(0, 40, 200)
    ]
    strings += [None, "", "x" * 5000]
    assert hash_columns([pa.array(strings)]).tolist() == [ref_bytes(s) for s in strings]
    unscaled = [int(v) * 10**20 + 12345 for v in rng.integers(-(10**15), 10**15, 100)] + [None]
    decimals = [None if u is None else D(f"{u}e-2") for u in unscaled]
    got = hash_columns([pa.array(decimals, pa.decimal128(38, 2))]).tolist()
    assert got == [ref_decimal128(u) for u in unscaled]
    two = hash_columns([pa.array(ints[:50], pa.int64()), pa.array(strings[:50])]).tolist()
    assert two == [
        ref_combine([ref_int(a), ref_bytes(b)]) for a, b in zip(ints, strings[:50], strict=False)
    ]


def test_pinned_values_never_change() -> None:
    """shoal-rowhash-v1 lays out tables on disk: these numbers are part of the format."""
    assert HASH_FUNCTION == "shoal-rowhash-v1"
    assert int(NULL_HASH) == 6620516959819538809
    assert hash_columns([pa.array([0, 1, -1, 2**62, None], pa.int64())]).tolist() == [
        16294208416658607535,
        10451216379200822465,
        16490336266968443936,
        47939714376772075,
        6620516959819538809,
    ]
    assert hash_columns([pa.array(["", "a", "key1", "shoal-rowhash", None])]).tolist() == [
        3620312495012918151,
        3319565949172555493,
        8752612030234068645,
        7490881004771983538,
        6620516959819538809,
    ]
    decimals = pa.array([D("0.00"), D("1.23"), D("-1.23"), None], pa.decimal128(15, 2))
    assert hash_columns([decimals]).tolist() == [
        15699590516001246792,
        2660525098679822296,
        2151936983903905235,
        6620516959819538809,
    ]
    assert hash_columns([pa.array([1.5, -0.0, float("nan")])]).tolist() == [
        15481881892811333770,
        16294208416658607535,
        14351126860892846918,
    ]
    assert hash_columns([pa.array([1, 2, None]), pa.array(["a", None, "b"])]).tolist() == [
        2055323802095759112,
        1971768514193921626,
        6987057977752314693,
    ]
    assert partition_ids([pa.array(range(20))], 7).tolist() == [
        6, 3, 4, 0, 3, 2, 5, 2, 4, 4, 0, 2, 4, 5, 2, 3, 2, 3, 0, 5,
    ]  # fmt: skip


# ------------------------------------------------------------------ cross-type equality


def test_integers_hash_by_value_across_widths() -> None:
    expected = hash_columns([pa.array([0, 1, 100, None], pa.int64())])
    for typ in (
        pa.int8(),
        pa.int16(),
        pa.int32(),
        pa.uint8(),
        pa.uint16(),
        pa.uint32(),
        pa.uint64(),
    ):
        np.testing.assert_array_equal(hash_columns([pa.array([0, 1, 100, None], typ)]), expected)
    negatives = [-1, -100, None]
    expected = hash_columns([pa.array(negatives, pa.int64())])
    for typ in (pa.int8(), pa.int16(), pa.int32()):
        np.testing.assert_array_equal(hash_columns([pa.array(negatives, typ)]), expected)


def test_float_normalization() -> None:
    nan_bits = np.array(
        [0x7FF8000000000000, 0xFFF8000000000000, 0x7FF0000000000001, 0x7FFFFFFFFFFFFFFF],
        dtype=np.uint64,
    )
    nans = pa.array(nan_bits.view(np.float64))
    assert len(set(hash_columns([nans]).tolist())) == 1
    h64 = hash_columns([pa.array([0.0, -0.0, 1.5, float("nan")], pa.float64())])
    h32 = hash_columns([pa.array(np.array([0.0, -0.0, 1.5, np.nan], dtype=np.float32))])
    np.testing.assert_array_equal(h64, h32)
    assert h64[0] == h64[1]
    neg_nan32 = pa.array(np.array([0xFFC00001], dtype=np.uint32).view(np.float32))
    assert hash_columns([neg_nan32])[0] == h64[3]


def test_string_like_types_agree() -> None:
    values = ["", "a", None, "key42", "ünïcødé", "a string longer than twelve"]
    expected = hash_columns([pa.array(values, pa.string())])
    for typ in (
        pa.large_string(),
        pa.string_view(),
        pa.binary(),
        pa.large_binary(),
        pa.binary_view(),
    ):
        np.testing.assert_array_equal(
            hash_columns([pa.array(values, pa.string()).cast(typ)]), expected
        )


def test_equal_values_in_different_arrays_hash_equal() -> None:
    a = pa.array(["x", "key7", "zz", None, "key7"])
    b = pa.chunked_array([pa.array(["pad", "key7"]).slice(1), pa.array([None, "zz"])])
    ha, hb = hash_columns([a]), hash_columns([b])
    assert ha[1] == ha[4] == hb[0]
    assert ha[3] == hb[1] == NULL_HASH
    assert ha[2] == hb[2]


def test_null_hash_differs_from_common_values() -> None:
    common = [
        pa.array([0, 1, -1]),
        pa.array([False, True]),
        pa.array([0.0, 1.0]),
        pa.array(["", "0", "null", "NULL"]),
        pa.array([D("0")], pa.decimal128(10, 0)),
        pa.array([datetime.date(1970, 1, 1)]),
    ]
    for arr in common:
        assert NULL_HASH not in hash_columns([arr]).tolist()


def test_null_bitmap_presence_does_not_matter() -> None:
    values = np.arange(10, dtype=np.int64)
    all_valid = pa.py_buffer(np.packbits(np.ones(16, dtype=np.uint8), bitorder="little"))
    with_bitmap = pa.Array.from_buffers(
        pa.int64(), 10, [all_valid, pa.py_buffer(values)], null_count=-1
    )
    without = pa.Array.from_buffers(pa.int64(), 10, [None, pa.py_buffer(values)])
    assert with_bitmap.buffers()[0] is not None
    np.testing.assert_array_equal(hash_columns([with_bitmap]), hash_columns([without]))
    strings = pa.array(["a", "bb", "ccc"])
    _, offsets, data = strings.buffers()
    bitmap = pa.py_buffer(np.array([0xFF], dtype=np.uint8))
    s_with = pa.Array.from_buffers(pa.string(), 3, [bitmap, offsets, data], null_count=-1)
    np.testing.assert_array_equal(hash_columns([s_with]), hash_columns([strings]))


def test_null_slots_with_garbage_payload_hash_as_null() -> None:
    values = pa.py_buffer(np.array([5, 99, 7], dtype=np.int64))
    validity = pa.py_buffer(np.array([0b101], dtype=np.uint8))
    arr = pa.Array.from_buffers(pa.int64(), 3, [validity, values])
    assert hash_columns([arr]).tolist() == [ref_int(5), REF_NULL, ref_int(7)]


def test_string_blocks_and_long_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    lengths = rng.integers(0, 50, 300).tolist() + [1000, 0, 0, 3]
    values = ["".join(chr(97 + c) for c in rng.integers(0, 26, k)) for k in lengths]
    arr = pa.array(values).slice(2)
    expected = [ref_bytes(v) for v in values[2:]]
    assert hash_columns([arr]).tolist() == expected
    for block in (1, 7, 64):
        monkeypatch.setattr(hashing, "_BLOCK_BYTES", block)
        assert hash_columns([arr]).tolist() == expected


# -------------------------------------------------------------------------- multi-column


def test_multi_column_is_order_sensitive() -> None:
    a = pa.array(np.arange(1000))
    b = pa.array(np.arange(1000) + 1)
    ab, ba = hash_columns([a, b]), hash_columns([b, a])
    assert (ab != ba).all()
    assert (ab != hash_columns([a])).all()
    s1, s2 = pa.array(["x", "y"]), pa.array(["y", "x"])
    assert (hash_columns([s1, s2]) != hash_columns([s2, s1])).all()
    same = hash_columns([pa.array([3, 3]), pa.array([3, 3])])
    assert same[0] == same[1]


def test_multi_column_mixed_chunking() -> None:
    a = pa.array(range(100))
    b = pa.array([f"k{i}" for i in range(100)])
    expected = hash_columns([a, b])
    a2 = pa.chunked_array([a.slice(0, 33), a.slice(33)])
    b2 = pa.chunked_array([b.slice(0, 10), b.slice(10, 80), b.slice(90)])
    np.testing.assert_array_equal(hash_columns([a2, b2]), expected)


def test_argument_errors() -> None:
    with pytest.raises(ValueError):
        hash_columns([])
    with pytest.raises(ValueError):
        hash_columns([pa.array([1, 2]), pa.array([1])])
    with pytest.raises(ValueError):
        partition_ids([pa.array([1])], 0)
    with pytest.raises(TypeError):
        hash_columns([np.arange(3)])  # type: ignore[list-item]


@pytest.mark.parametrize(
    "arr",
    [
        pa.array([[1, 2], [3]]),
        pa.array([{"a": 1}]),
        pa.array([(1, 2, 3)], pa.month_day_nano_interval()),
        pa.array([{1: 2}], pa.map_(pa.int64(), pa.int64())),
        pa.chunked_array([], pa.list_(pa.int64())),
        pa.DictionaryArray.from_arrays(pa.array([0, 0], pa.int32()), pa.array([[1]])),
    ],
    ids=["list", "struct", "interval", "map", "empty-chunked-list", "dictionary-of-list"],
)
def test_unsupported_type_raises(arr: pa.Array | pa.ChunkedArray) -> None:
    typ = arr.type.value_type if pa.types.is_dictionary(arr.type) else arr.type
    with pytest.raises(TypeError, match=re.escape(str(typ))):
        hash_columns([arr])


# ---------------------------------------------------------------------------- processes

_CHILD = """
import json, sys
import pyarrow as pa
from shoal.hashing import hash_columns, partition_ids
ints = pa.array(list(range(-50, 50)) + [None], pa.int64())
strs = pa.array([f"key{i}" for i in range(100)] + [None])
dec = pa.array([None] + [i * 7 for i in range(100)], pa.int64()).cast(pa.decimal128(22, 2))
print(json.dumps({
    "ints": hash_columns([ints]).tolist(),
    "strs": hash_columns([strs]).tolist(),
    "multi": hash_columns([strs, ints, dec]).tolist(),
    "parts": partition_ids([strs, ints], 13).tolist(),
}))
"""


def test_hashes_are_identical_in_another_process() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONHASHSEED"] = "12345"  # Python's own str hash differs; ours must not
    out = subprocess.run(
        [sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True, check=True
    )
    child = json.loads(out.stdout)
    scope: dict[str, Any] = {}
    exec(_CHILD.replace("print(", "result = ("), scope)  # same code, this process
    ints = pa.array(list(range(-50, 50)) + [None], pa.int64())
    strs = pa.array([f"key{i}" for i in range(100)] + [None])
    assert child["ints"] == hash_columns([ints]).tolist()
    assert child["strs"] == hash_columns([strs]).tolist()
    assert child == json.loads(scope["result"])


# ----------------------------------------------------------------------- distribution


def _assert_balanced(ids: np.ndarray, n: int, tolerance: float = 0.05) -> None:
    counts = np.bincount(ids, minlength=n)
    mean = len(ids) / n
    assert len(counts) == n
    assert (np.abs(counts - mean) <= tolerance * mean).all(), counts


@pytest.mark.parametrize("n", [2, 7, 8, 64])
def test_sequential_ints_spread_evenly(n: int) -> None:
    ids = partition_ids([pa.array(np.arange(100_000))], n)
    assert ids.min() >= 0 and ids.max() < n
    _assert_balanced(ids, n, 0.05 if n <= 8 else 0.1)


def test_strings_spread_evenly() -> None:
    strs = pa.array([f"key{i}" for i in range(100_000)])
    _assert_balanced(partition_ids([strs], 7), 7)
    _assert_balanced(partition_ids([strs.cast(pa.large_string())], 8), 8)


def test_other_keys_spread_evenly() -> None:
    i = np.arange(100_000)
    _assert_balanced(partition_ids([pa.array(i * 1000)], 7), 7)  # low bits all zero
    _assert_balanced(partition_ids([pa.array(i.astype(np.float64))], 7), 7)
    dec = pa.array(i).cast(pa.decimal128(21, 2))
    _assert_balanced(partition_ids([dec], 7), 7)
    _assert_balanced(partition_ids([pa.array(i // 1000), pa.array(i % 1000)], 7), 7)
    dates = pa.array((i % 20_000).astype(np.int32), pa.date32())
    _assert_balanced(partition_ids([dates], 7), 7, 0.1)


def test_hash_bits_look_random() -> None:
    h = hash_columns([pa.array(np.arange(100_000))])
    bits = (h[:, None] >> np.arange(64, dtype=np.uint64)) & np.uint64(1)
    ones = bits.mean(axis=0)
    assert (np.abs(ones - 0.5) < 0.01).all()
    assert len(np.unique(h)) == len(h)


# --------------------------------------------------------------------- split_by_partition


def _batch(n: int) -> pa.RecordBatch:
    return pa.record_batch(
        {
            "k": pa.array(np.arange(n)),
            "s": pa.array([None if i % 11 == 0 else f"v{i}" for i in range(n)]),
            "d": pa.array(np.arange(n) * 25).cast(pa.decimal128(22, 2)),
        }
    )


@pytest.mark.parametrize("owned", [True, False])
@pytest.mark.parametrize("n", [1, 3, 8, 300, 70_000])
def test_split_by_partition_round_trips(n: int, owned: bool) -> None:
    batch = _batch(2000).slice(7)
    ids = partition_ids([batch["k"], batch["s"]], n)
    parts = split_by_partition(batch, ids, n, owned=owned)
    assert len(parts) == n
    assert sum(p.num_rows for p in parts) == batch.num_rows
    np.testing.assert_array_equal([p.num_rows for p in parts], np.bincount(ids, minlength=n))
    for i, part in enumerate(parts):
        assert part.schema == batch.schema
        if part.num_rows:
            assert (partition_ids([part["k"], part["s"]], n) == i).all()
            keys = part["k"].to_numpy()
            assert (np.diff(keys) > 0).all()  # original order kept
    rebuilt = pa.Table.from_batches(parts, schema=batch.schema).sort_by("k")
    assert rebuilt.equals(pa.Table.from_batches([batch]))


def test_owned_split_outputs_do_not_share_buffers() -> None:
    """An owned part must not pin its siblings' rows: freeing the others frees them."""
    batch = _batch(5000)
    ids = partition_ids([batch["k"]], 4)
    before = pa.total_allocated_bytes()
    parts = split_by_partition(batch, ids, 4)
    assert pa.total_allocated_bytes() - before <= batch.nbytes * 1.25
    keep = parts[1]
    del parts
    # What stays allocated is about one part's rows, not the whole shuffled batch.
    assert pa.total_allocated_bytes() - before <= keep.nbytes * 1.5 + 4096
    sliced = split_by_partition(batch, ids, 4, owned=False)
    data_buffers = {b.address for b in sliced[0].column(0).buffers() if b is not None}
    assert data_buffers & {b.address for b in sliced[3].column(0).buffers() if b is not None}


def test_split_by_partition_edge_cases() -> None:
    batch = _batch(10)
    parts = split_by_partition(batch, np.full(10, 2), 4)  # everything in one partition
    assert [p.num_rows for p in parts] == [0, 0, 10, 0]
    assert parts[2].equals(batch)
    assert all(p.schema == batch.schema for p in parts)
    empty = split_by_partition(batch.slice(0, 0), np.zeros(0, np.int32), 3)
    assert [p.num_rows for p in empty] == [0, 0, 0]
    assert all(p.schema == batch.schema for p in empty)
    assert split_by_partition(batch, np.zeros(10, np.int64), 1)[0].equals(batch)
    with pytest.raises(ValueError):
        split_by_partition(batch, np.zeros(9, np.int32), 2)
    with pytest.raises(ValueError):
        split_by_partition(batch, np.full(10, 2), 2)
    with pytest.raises(ValueError):
        split_by_partition(batch, np.full(10, -1), 2)
    with pytest.raises(TypeError):
        split_by_partition(batch, np.zeros(10, np.float64), 2)
