"""A join's index over its build keys, probed batch by batch, entirely in numpy.

Each build row gets one 64-bit *code* for its key, and the index maps codes to build
rows. Two kinds of code:

* **Integer codes** — every key column is integer-like (integers up to 32-bit unsigned
  or 64-bit signed, dates, booleans): each column's value is offset by the build side's
  minimum and the columns are packed into one int64 (mixed radix over the build
  ranges). The code is injective, so matches need no equality check, and a probe value
  outside the build range is dropped before any lookup.
* **Hash codes** — anything else (strings, decimals, floats, set operations' NULL-equal
  keys): the engine's row hash, with matches checked for real key equality afterwards,
  so collisions never produce wrong pairs.

Two lookups over codes:

* **Dense** — integer codes spanning at most ``4 × rows`` or 8 Mi values (primary and
  foreign keys, which TPC-H-like schemas number densely; the wide span only within
  the caller's ``max_bytes`` and at ``256 × rows`` at most): direct addressing. Unique
  keys keep one slot per code; repeated keys keep CSR offsets into the rows sorted by
  code. A probe is one gather per row: no sorting, no search.
* **Sorted** — otherwise: codes sorted once; a probe sorts its codes and binary-searches
  runs of equal codes (sorted needles walk memory forwards).

Holds the build keys, the codes' lookup structure and nothing per probe
(``nbytes``). ``probe_pieces`` hands a probe batch's pairs out in pieces of at most
``max_pairs``. NULL keys never match, unless ``null_equal`` (set operations).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.arrays import as_int64, int64_minus, integer_like, pooled_full
from shoal.expr import floats
from shoal.hashing import hash_columns

Indices = npt.NDArray[np.int64]
Codes = npt.NDArray[np.int64] | npt.NDArray[np.uint64]

# Dense addressing when the build codes span at most this many slots per build row
# (the slot arrays then cost about what the sorted index does), or at most
# ``_DENSE_MAX_SLOTS`` slots whatever the row count: a gather from a table of 32 MiB
# beats sorting and searching probe batches (a filtered orders table keyed by
# o_orderkey at SF 1 is 30k rows over a span of 6M).
_DENSE_SLOTS_PER_ROW = 4
_DENSE_MAX_SLOTS = 1 << 23
# ... but a wide span only with at least one build row per this many slots: a slot
# array of 6M for the 57 orders Q18's HAVING keeps cost 24 MiB of fresh pages per task
# to fill, where the sorted lookup prefilters probe batches with one hash-set lookup.
_DENSE_WIDE_SLOTS_PER_ROW = 256
# Packed integer codes must stay below this (int64, with room for the arithmetic).
_MAX_CODE_SPAN = 1 << 62

_EMPTY = np.zeros(0, np.int64)
_NO_LIMIT = 1 << 62


def _valid_mask(columns: list[pa.Array]) -> npt.NDArray[np.bool_] | None:
    """Rows whose every key is non-NULL (None: all rows)."""
    mask: npt.NDArray[np.bool_] | None = None
    for col in columns:
        if col.null_count:
            valid = np.asarray(pc.is_valid(col))
            mask = valid if mask is None else mask & valid
    return mask


@dataclass(frozen=True)
class _IntegerCodec:
    """Packs integer-like key columns into one injective int64 over the build ranges."""

    lows: tuple[int, ...]
    highs: tuple[int, ...]
    span: int  # codes are in [0, span)

    @staticmethod
    def fit(keys: list[pa.Array], rows: Indices) -> _IntegerCodec | None:
        if not keys or not len(rows) or not all(integer_like(k.type) for k in keys):
            return None
        lows, highs, span = [], [], 1
        for k in keys:
            values = as_int64(k)[rows]
            low, high = int(values.min()), int(values.max())
            lows.append(low)
            highs.append(high)
            span *= high - low + 1  # Python ints: no overflow
        if span > _MAX_CODE_SPAN:
            return None
        return _IntegerCodec(tuple(lows), tuple(highs), span)

    def encode(
        self, keys: list[pa.Array], candidates: npt.NDArray[np.bool_] | None
    ) -> tuple[Indices | None, npt.NDArray[np.int64]]:
        """(rows, codes) of the rows (among ``candidates``) whose keys lie in the build
        ranges; ``rows`` is None when that is every row (codes then align with the input).
        """
        codes, ok = self._codes(keys, candidates)
        if ok.all():
            return None, codes
        rows = np.flatnonzero(ok)
        return rows, codes[rows]

    def clamped(
        self, keys: list[pa.Array], candidates: npt.NDArray[np.bool_] | None
    ) -> npt.NDArray[np.int64]:
        """Every row's code, aligned with the input: ``span`` (one past the last code)
        for the rows not among ``candidates`` or outside the build ranges. A lookup with
        a slot at ``span`` that matches nothing then needs no row selection first."""
        if len(keys) == 1 and candidates is None:
            # One unsigned clamp: below ``low`` wraps far above the span (see _codes).
            d = int64_minus(keys[0], self.lows[0])
            return np.minimum(d.view(np.uint64), np.uint64(self.span)).view(np.int64)
        codes, ok = self._codes(keys, candidates)
        codes[~ok] = self.span
        return codes

    def _codes(
        self, keys: list[pa.Array], candidates: npt.NDArray[np.bool_] | None
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Every row's packed code (meaningless where ``ok`` is False) and ``ok``: the
        rows among ``candidates`` whose keys lie in the build ranges."""
        codes: npt.NDArray[np.int64] | None = None
        ok = candidates
        for k, low, high in zip(keys, self.lows, self.highs, strict=True):
            # ``v - low`` wraps (mod 2**64) only for values at least 2**63 away from
            # ``low``; read as unsigned those land far above ``high - low`` (< 2**62), so
            # one unsigned comparison checks both ends of the range.
            d = int64_minus(k, low)
            inside = d.view(np.uint64) <= np.uint64(high - low)
            ok = inside if ok is None else ok & inside
            codes = d if codes is None else codes * (high - low + 1) + d
        assert ok is not None and codes is not None
        return codes, ok


def _run_ids(counts: Indices, total: int) -> Indices:
    """``np.repeat(np.arange(len(counts)), counts)``, built from operations that release
    the GIL (``np.repeat`` holds it, which serializes the join tasks of a process)."""
    ends = np.cumsum(counts)
    nonempty = np.flatnonzero(counts)
    marker = np.zeros(total, np.int64)
    first = ends[nonempty] - counts[nonempty]  # output position of each run's first pair
    marker[first[1:]] = np.diff(nonempty)
    marker[0] = nonempty[0]
    return np.cumsum(marker)


def _expand(
    probe_rows: Indices, starts: Indices, counts: Indices, build_order: Indices
) -> tuple[Indices, Indices]:
    """Pairs (probe row, build row) from each probe row's run ``build_order[start:+count]``."""
    total = int(counts.sum())
    if total == 0:
        return _EMPTY, _EMPTY
    run = _run_ids(counts, total)
    first = np.cumsum(counts) - counts
    offsets = np.arange(total, dtype=np.int64) - first[run]
    return probe_rows[run], build_order[starts[run] + offsets]


def _expand_pieces(
    probe_rows: Indices, starts: Indices, counts: Indices, build_order: Indices, max_pairs: int
) -> Iterator[tuple[Indices, Indices]]:
    """``_expand`` in pieces of at most ``max_pairs`` pairs; one probe row whose run is
    longer than that (a hot key) is split across pieces too."""
    total = int(counts.sum())
    if total <= max_pairs:
        if total:
            yield _expand(probe_rows, starts, counts, build_order)
        return
    ends = np.cumsum(counts)
    pos = 0
    while pos < total:
        hi = min(pos + max_pairs, total)
        r0 = int(np.searchsorted(ends, pos, side="right"))
        r1 = int(np.searchsorted(ends, hi - 1, side="right")) + 1
        sub_starts = starts[r0:r1].copy()
        sub_counts = counts[r0:r1].copy()
        skip = pos - int(ends[r0] - counts[r0])  # pairs of the first run already given
        sub_starts[0] += skip
        sub_counts[0] -= skip
        sub_counts[-1] -= int(ends[r1 - 1]) - hi  # pairs of the last run left for later
        yield _expand(probe_rows[r0:r1], sub_starts, sub_counts, build_order)
        pos = hi


def _slot_bytes(rows: Indices) -> int:
    """Bytes per slot of a ``_DenseLookup`` over these build rows."""
    return 4 if not len(rows) or int(rows[-1]) < 2**31 - 1 else 8


class _DenseLookup:
    """Direct addressing over integer codes in ``[0, span)``.

    Unique codes: ``slots[code]`` is the build row. Repeated codes: ``slots[code]`` is
    the code's rank among the distinct codes, whose rows are
    ``order[offsets[rank]:offsets[rank + 1]]`` — CSR over the distinct codes only, so
    a few thousand rows over a wide key range cost one slot array, not three.
    ``slots[span]`` is empty: the code of a probe row that cannot match
    (``_IntegerCodec.clamped``).
    """

    def __init__(self, codes: npt.NDArray[np.int64], rows: Indices, span: int):
        row_type = np.int32 if len(rows) and int(rows.max()) < 2**31 - 1 else np.int64
        self.slots: npt.NDArray[Any] = pooled_full(span + 1, -1, row_type)
        self.slots[codes] = rows
        # A repeated code keeps only its last row: every row still in place means the
        # codes are unique (cheaper than counting over the whole span).
        self.unique = bool((self.slots[codes] == rows).all())
        if not self.unique:
            by_code = np.argsort(codes)
            ordered = codes[by_code]
            self.order: Indices = rows[by_code]
            first = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
            self.offsets = np.append(first, len(ordered)).astype(np.int64)
            self.slots[ordered[first]] = np.arange(len(first), dtype=row_type)

    def find(
        self, rows: Indices | None, codes: npt.NDArray[np.int64], max_pairs: int
    ) -> Iterator[tuple[Indices, Indices]]:
        """Pairs for probe ``rows`` (None: all, in order) with these codes, in pieces."""
        found = self.slots[codes]
        hit = found >= 0
        probe_rows = np.flatnonzero(hit) if rows is None else rows[hit]
        if self.unique:
            yield probe_rows, found[hit].astype(np.int64)
            return
        rank = found[hit]
        starts = self.offsets[rank]
        counts = self.offsets[rank + 1] - starts
        yield from _expand_pieces(probe_rows, starts, counts, self.order, max_pairs)


class _SortedLookup:
    """Codes sorted once; probes binary-search runs of equal codes."""

    def __init__(self, codes: Codes, rows: Indices):
        by_code = np.argsort(codes)
        self.order: Indices = rows[by_code]
        self.sorted_codes = codes[by_code]
        self.unique = bool(
            len(self.order) < 2 or (self.sorted_codes[1:] != self.sorted_codes[:-1]).all()
        )
        self._set: pa.Array | None = None

    def find(
        self, rows: Indices | None, codes: Codes, max_pairs: int
    ) -> Iterator[tuple[Indices, Indices]]:
        """Pairs for probe ``rows`` (None: all, in order) with these codes, in pieces."""
        if rows is None:
            rows = np.arange(len(codes), dtype=np.int64)
        n = len(self.sorted_codes)
        if n <= len(codes):
            # A small build side: drop the probe rows whose code it lacks with one
            # hash-set lookup, so only likely matches are sorted and searched.
            keep = np.nonzero(np.asarray(pc.is_in(pa.array(codes), value_set=self._code_set())))[0]
            rows, codes = rows[keep], codes[keep]
        # Sorted needles make the binary searches walk memory forwards: ~8x faster
        # than searching in probe order on large build sides.
        by_code = np.argsort(codes)
        rows, codes = rows[by_code], codes[by_code]
        lo = np.searchsorted(self.sorted_codes, codes, side="left")
        if self.unique:
            # At most one partner per probe row: no run expansion needed.
            found = lo < n
            found[found] = self.sorted_codes[lo[found]] == codes[found]
            yield rows[found], self.order[lo[found]]
            return
        hi = np.searchsorted(self.sorted_codes, codes, side="right")
        yield from _expand_pieces(
            rows, lo.astype(np.int64), (hi - lo).astype(np.int64), self.order, max_pairs
        )

    def _code_set(self) -> pa.Array:
        if self._set is None:
            self._set = pa.array(np.unique(self.sorted_codes))
        return self._set


class JoinIndex:
    """Build keys → build rows; ``probe`` gives every (probe row, build row) pair."""

    def __init__(
        self, keys: list[pa.Array], null_equal: bool = False, max_bytes: int | None = None
    ):
        """``max_bytes``: the most a dense lookup over a wide key span may take (None: no
        bound). Past it the sorted lookup is used, whose size follows the build rows:
        a grace partition of a few rows keeps the key range of the whole side, and a
        slot array over that range would not shrink however finely it is split."""
        self.keys = keys
        self.null_equal = null_equal
        self.num_rows = len(keys[0]) if keys else 0
        valid = None if null_equal else _valid_mask(keys)
        rows = np.arange(self.num_rows, dtype=np.int64) if valid is None else np.nonzero(valid)[0]
        self.has_null_key = bool(valid is not None and not valid.all())
        self._matchable = len(rows)
        # NULL-equal keys (set operations) go by hash: NULL needs a code of its own.
        self._codec = None if null_equal else _IntegerCodec.fit(keys, rows)
        self._lookup: _DenseLookup | _SortedLookup
        if self._codec is not None:
            in_range, codes = self._codec.encode(keys, valid)
            if in_range is not None:
                rows = in_range  # the valid rows: all in range on the build side
            span = self._codec.span
            dense = span <= _DENSE_SLOTS_PER_ROW * len(rows) or (
                span <= _DENSE_MAX_SLOTS
                and span <= _DENSE_WIDE_SLOTS_PER_ROW * len(rows)
                and (max_bytes is None or span * _slot_bytes(rows) <= max_bytes)
            )
            if dense:
                self._lookup = _DenseLookup(codes, rows, self._codec.span)
            else:
                self._lookup = _SortedLookup(codes, rows)
            self.verify = False  # integer codes are injective
        else:
            hashes = hash_columns(keys) if keys else np.zeros(0, np.uint64)
            self._lookup = _SortedLookup(hashes[rows], rows)
            self.verify = True
        self.strategy = ("dense" if isinstance(self._lookup, _DenseLookup) else "sorted") + (
            "-hash" if self.verify else ""
        )

    @property
    def nbytes(self) -> int:
        """Bytes of the lookup structure (slot arrays, sorted codes, row orders); the
        key columns belong to the build side and are not counted here."""
        lookup = self._lookup
        arrays = [getattr(lookup, a, None) for a in ("slots", "order", "offsets", "sorted_codes")]
        return sum(a.nbytes for a in arrays if isinstance(a, np.ndarray))

    @property
    def unique(self) -> bool:
        """At most one build row per key."""
        return self._lookup.unique

    def probe(self, keys: list[pa.Array]) -> tuple[Indices, Indices]:
        """(probe row, build row) for every pair with equal keys (in no particular order)."""
        pieces = list(self.probe_pieces(keys, _NO_LIMIT))
        if not pieces:
            return _EMPTY, _EMPTY
        if len(pieces) == 1:
            return pieces[0]
        return np.concatenate([p for p, _ in pieces]), np.concatenate([b for _, b in pieces])

    def probe_pieces(
        self, keys: list[pa.Array], max_pairs: int
    ) -> Iterator[tuple[Indices, Indices]]:
        """The pairs of ``probe``, in pieces of at most ``max_pairs`` before equality
        checks (so never more after them): a probe batch whose keys match many build
        rows never makes one array of the whole product."""
        m = len(keys[0])
        if m == 0 or not self._matchable:
            return
        valid = None if self.null_equal else _valid_mask(keys)
        if self._codec is not None:
            if isinstance(self._lookup, _DenseLookup):
                # Every probe row's code, the unmatchable ones at the empty slot: one
                # gather finds the matches, no selection of candidate rows first.
                yield from self._lookup.find(None, self._codec.clamped(keys, valid), max_pairs)
                return
            rows, codes = self._codec.encode(keys, valid)
            yield from self._lookup.find(rows, codes, max_pairs)
            return
        assert isinstance(self._lookup, _SortedLookup)
        hashes = hash_columns(keys)
        rows = np.arange(m, dtype=np.int64) if valid is None else np.nonzero(valid)[0]
        for probe_rows, build_rows in self._lookup.find(rows, hashes[rows], max_pairs):
            if len(probe_rows):
                keep = self._equal(keys, probe_rows, build_rows)
                if not keep.all():
                    probe_rows, build_rows = probe_rows[keep], build_rows[keep]
            yield probe_rows, build_rows

    def contains(self, keys: list[pa.Array]) -> npt.NDArray[np.bool_]:
        """Per probe row: whether some build row may have its key (NULL keys: False).

        Exact for integer codes; for hashed keys a hash match counts (a superset,
        which is all a filter ahead of the real join needs).
        """
        m = len(keys[0])
        mask = np.zeros(m, dtype=bool)
        if m == 0 or not self._matchable:
            return mask
        valid = _valid_mask(keys)
        if self._codec is not None:
            rows, codes = self._codec.encode(keys, valid)
            pieces = self._lookup.find(rows, codes, m)
        else:
            assert isinstance(self._lookup, _SortedLookup)
            hashes = hash_columns(keys)
            rows = None if valid is None else np.nonzero(valid)[0]
            pieces = self._lookup.find(rows, hashes if rows is None else hashes[rows], m)
        for probe_rows, _ in pieces:
            mask[probe_rows] = True
        return mask

    def _equal(self, keys: list[pa.Array], pi: Indices, bi: Indices) -> npt.NDArray[np.bool_]:
        ok = np.ones(len(pi), dtype=bool)
        pi_arr, bi_arr = pa.array(pi), pa.array(bi)
        for probe_col, build_col in zip(keys, self.keys, strict=True):
            a = probe_col.take(pi_arr)
            b = build_col.take(bi_arr)
            if pa.types.is_null(a.type) or pa.types.is_null(b.type):
                # A NULL-typed key (the column of an empty side) equals nothing.
                eq = pa.nulls(len(a), pa.bool_())
            else:
                eq = floats.compare("equal", a, b)  # NaN = NaN, as in DuckDB
            if self.null_equal:
                both_null = pc.and_(pc.is_null(a), pc.is_null(b))
                eq = pc.or_(pc.fill_null(eq, False), both_null)
            ok &= np.asarray(pc.fill_null(eq, False))
        return ok
