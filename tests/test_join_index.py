"""JoinIndex against a brute-force join, on every lookup path it can take."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from shoal.physical.operators.join_index import JoinIndex


def _brute(build: list[list], probe: list[list], null_equal: bool) -> list[tuple[int, int]]:
    """Every (probe row, build row) with equal keys, by a dictionary of build keys."""
    rows_of: dict[tuple, list[int]] = {}
    for j, b in enumerate(zip(*build, strict=True)):
        if null_equal or None not in b:
            rows_of.setdefault(b, []).append(j)
    pairs = []
    for i, p in enumerate(zip(*probe, strict=True)):
        if null_equal or None not in p:
            pairs.extend((i, j) for j in rows_of.get(p, []))
    return sorted(pairs)


def _pairs(index: JoinIndex, probe: list[pa.Array]) -> list[tuple[int, int]]:
    pi, bi = index.probe(probe)
    return sorted(zip(pi.tolist(), bi.tolist(), strict=True))


def _random_column(rng: np.random.Generator, n: int, lo: int, hi: int, nulls: bool) -> list:
    values = rng.integers(lo, hi, n).tolist()
    if nulls:
        values = [None if rng.random() < 0.1 else v for v in values]
    return values


CASES = {
    # name: (build range, probe range, key columns, type)
    "dense-unique": ((0, 10**6), None, 1, pa.int64()),
    "dense-repeated": ((5, 40), (0, 50), 1, pa.int64()),
    "sparse": ((-(10**12), 10**12), None, 1, pa.int64()),
    "two-columns": ((0, 6), (-1, 8), 2, pa.int32()),
    "two-columns-sparse": ((0, 10**10), None, 2, pa.int64()),
    "uint64-hashed": ((0, 30), (0, 40), 1, pa.uint64()),
    "strings-hashed": ((0, 25), (0, 30), 2, pa.string()),
    "dates": ((0, 20000), (0, 20000), 1, pa.date32()),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("nulls", [False, True])
@pytest.mark.parametrize("null_equal", [False, True])
def test_probe_matches_brute_force(name: str, nulls: bool, null_equal: bool) -> None:
    (lo, hi), probe_range, width, typ = CASES[name]
    rng = np.random.default_rng(abs(hash((name, nulls, null_equal))) % 2**32)
    plo, phi = probe_range or (lo, hi)
    build = [_random_column(rng, 3000, lo, hi, nulls) for _ in range(width)]
    probe = [_random_column(rng, 2000, plo, phi, nulls) for _ in range(width)]
    if probe_range is None:  # make sure some keys match
        for col_b, col_p in zip(build, probe, strict=True):
            col_p[:50] = col_b[:50]
    if name == "dense-unique":
        build = [list(dict.fromkeys(build[0]))]
    convert = (lambda v: v if v is None else str(v)) if typ == pa.string() else (lambda v: v)
    build = [[convert(v) for v in c] for c in build]
    probe = [[convert(v) for v in c] for c in probe]
    index = JoinIndex([pa.array(c, typ) for c in build], null_equal)
    assert _pairs(index, [pa.array(c, typ) for c in probe]) == _brute(build, probe, null_equal)


def test_strategies() -> None:
    dense = JoinIndex([pa.array(range(5000), pa.int64())])
    assert dense.strategy == "dense" and dense.unique
    repeated = JoinIndex([pa.array([i % 2000 for i in range(5000)], pa.int64())])
    assert repeated.strategy == "dense" and not repeated.unique

    sparse = JoinIndex([pa.array([0, 10**9, 3 * 10**9], pa.int64())])
    assert sparse.strategy == "sorted"
    hashed = JoinIndex([pa.array(["a", "b", "a"])])
    assert hashed.strategy == "sorted-hash" and not hashed.unique


def test_extreme_probe_values_do_not_wrap_into_range() -> None:
    index = JoinIndex([pa.array([5, 6, 7], pa.int64())])
    extreme = pa.array([-(2**63), 2**63 - 1, -(2**63) + 5, 6], pa.int64())
    assert _pairs(index, [extreme]) == [(3, 1)]


def test_all_null_build_matches_nothing() -> None:
    index = JoinIndex([pa.array([None, None], pa.int64())])
    assert index.has_null_key
    assert _pairs(index, [pa.array([1, None], pa.int64())]) == []


@pytest.mark.parametrize("nulls", [False, True])
def test_repeated_keys_over_a_wide_range(nulls: bool) -> None:
    """Few distinct keys spread over 600k values: the dense lookup's CSR runs
    over the distinct keys only."""
    rng = np.random.default_rng(3)
    pool = [int(v) * 1_000 - 1_000_000 for v in rng.integers(0, 600, 300)]
    build = [[None if nulls and i % 17 == 0 else pool[i % 300] for i in range(3000)]]
    probe = [[pool[int(i)] if i < 300 else int(i) for i in rng.integers(0, 400, 2000)]]
    index = JoinIndex([pa.array(build[0], pa.int64())])
    assert index.strategy == "dense" and not index.unique
    assert _pairs(index, [pa.array(probe[0], pa.int64())]) == _brute(build, probe, False)


def test_max_bytes_bounds_a_wide_dense_lookup() -> None:
    """Keys over a wide span: dense when its slot array fits ``max_bytes``, sorted
    (sized by the rows) when it does not; the same pairs either way."""
    keys = [*range(0, 1_000_000, 125), 500_000]  # 125 slots a row: a wide span
    wide = JoinIndex([pa.array(keys, pa.int64())])
    assert wide.strategy == "dense" and wide.nbytes >= 4 * 999_000
    bounded = JoinIndex([pa.array(keys, pa.int64())], max_bytes=64 << 10)
    assert bounded.strategy == "sorted" and bounded.nbytes < wide.nbytes // 10
    # A span within 4 slots a row stays dense whatever the bound (it is that small).
    compact = JoinIndex([pa.array(range(1000), pa.int64())], max_bytes=0)
    assert compact.strategy == "dense"
    probe = [pa.array([500_000, 1, 999_875], pa.int64())]
    assert _pairs(bounded, probe) == _pairs(wide, probe) == [(0, 4000), (0, 8000), (2, 7999)]


def test_a_few_keys_over_a_wide_span_are_sorted() -> None:
    """Over 256 slots a build row, a slot array is mostly empty pages to fill: the
    sorted lookup serves it, with the same pairs."""
    keys = [0, 999_999, 500_000, 500_000]
    index = JoinIndex([pa.array(keys, pa.int64())])
    assert index.strategy == "sorted" and index.nbytes < 1024
    probe = [[500_000, 1, 999_999]]
    assert _pairs(index, [pa.array(probe[0], pa.int64())]) == _brute([keys], probe, False)
