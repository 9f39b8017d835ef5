"""Aggregates over window frames that prefix sums cannot give: DISTINCT, mode, quantiles,
lists, strings, arg_min / arg_max (with a count too) and first / last with an ORDER BY.

Called by the Window operator (window.py) with each row's frame as ``[fs, fe)`` row
positions of its sorted input. Five ways, cheapest first:

* arg_min / arg_max: the extreme of a composite key ``(rank of by, row)`` over the
  frame, with the same kernels as MIN / MAX (one pass for running and whole frames, a
  sparse table otherwise): O(n log n) for every frame. The same way: mode over running
  frames (a running maximum of ``(count so far, first occurrence)``), mode over frames
  that end at the partition's end (a range maximum of ``(count from the row on, -row)``)
  and first / last with an ORDER BY (the extreme of ``(order code, row)``).
* quantiles (median, quantile_cont / quantile_disc): a wavelet matrix over the values'
  dense ranks answers "the k-th smallest in [fs, fe)" for all rows at once, one numpy
  step per bit of the rank: O((n) log σ) for every frame.
* string_agg (no DISTINCT, no ORDER BY) over any frame: a slice of one string holding
  every value and its separator in row order: O(output).
* DISTINCT count / sum / avg over frames that all start at their partition's first row
  (running and whole frames) or all end at its last: only each value's first (last)
  occurrence in the partition is kept, and the plain kernels run: O(n).
* everything else, by expanding frames: rows that share a frame (a whole partition, a
  peer group) are computed once; the distinct frames' rows are listed in chunks of at
  most ``CHUNK_ROWS`` (memory stays bounded), put in the aggregate's own ORDER BY when it
  has one, and grouped. That is O(the distinct frames' total size): O(n) for
  whole-partition frames, O(n·w) for sliding frames of w rows (mode among them), and
  O(n²) per partition for lists over running frames (that large in their output anyway).
  arg_min / arg_max with a count ``n`` too: each distinct frame's rows sorted by the key,
  its first ``n`` kept (O(n²) per partition over running frames, O(n) over whole ones).

Ties follow DuckDB: mode and arg_min / arg_max take the frame's first row (in window
order) among those tied. Lists and strings keep window order (or their ORDER BY, ties in
window order); DISTINCT keeps each value's first occurrence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from shoal.arrays import decimal128_from_unscaled, unscaled_int64
from shoal.errors import ExecutionError
from shoal.logical.plan import WindowCall, WindowFunction

Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

#: At most this many (frame, row) pairs are listed at once.
CHUNK_ROWS = 1 << 21


def valid_mask(arr: pa.Array) -> Bools:
    return np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def take(arr: pa.Array, positions: Ints, valid: Bools) -> pa.Array:
    """``arr`` at ``positions``, NULL where not ``valid``."""
    indices = pa.array(np.where(valid, positions, 0), pa.int64(), mask=~valid)
    return arr.take(indices)


def value_codes(arr: pa.Array) -> tuple[Ints, int]:
    """An integer per row, equal where the values are equal (NULL: -1), and how many
    distinct values there are."""
    encoded = pc.dictionary_encode(arr)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, len(encoded.dictionary)


def occurrences(arr: pa.Array, part_id: Ints, last: bool, keep_null: bool) -> Bools:
    """True at each value's first (``last``: last) row within its partition."""
    codes, distinct = value_codes(arr)
    key = part_id * np.int64(distinct + 1) + codes + 1
    n = len(key)
    mask = np.zeros(n, dtype=bool)
    if last:
        _, first_of_reversed = np.unique(key[::-1], return_index=True)
        mask[n - 1 - first_of_reversed] = True
    else:
        _, first = np.unique(key, return_index=True)
        mask[first] = True
    return mask if keep_null else mask & (codes >= 0)


def nulled(arr: pa.Array, keep: Bools) -> pa.Array:
    """``arr`` with NULL where not ``keep``."""
    return pc.if_else(pa.array(keep), arr, pa.scalar(None, arr.type))


# ------------------------------------------------------------------ extremes


def range_extreme(
    codes: Ints, fs: Ints, fe: Ints, is_max: bool, part_id: Ints, part_start: Ints, part_end: Ints
) -> Ints:
    """MIN (or MAX) of ``codes[fs[i]:fe[i]]`` for every row, frames non-empty."""
    reduce = np.maximum if is_max else np.minimum
    n = len(codes)
    if n == 0:
        return codes
    if np.array_equal(fs, part_start) and np.array_equal(fe, part_end):
        starts = np.flatnonzero(np.diff(part_id, prepend=-1))
        return reduce.reduceat(codes, starts)[part_id]
    if np.array_equal(fs, part_start):
        # Running frames: a cumulative extreme that restarts at each partition, made
        # one pass by lifting each partition's codes past all earlier ones (codes
        # ranked first, so the lift cannot overflow).
        distinct, dense = np.unique(codes, return_inverse=True)
        dense = dense.astype(np.int64).reshape(-1)
        lift = part_id * np.int64(len(distinct) + 1)
        lifted = dense + lift if is_max else dense - lift
        running = reduce.accumulate(lifted)
        back = running - lift if is_max else running + lift
        return distinct[back[fe - 1]]
    # General frames: a sparse table (level k holds extremes of windows of 2**k rows).
    length = fe - fs
    top = int(np.floor(np.log2(max(int(length.max()), 1))))
    levels = [codes]
    for k in range(1, top + 1):
        prev = levels[-1]
        half = 1 << (k - 1)
        levels.append(reduce(prev[:-half], prev[half:]))
    k_of = np.floor(np.log2(np.maximum(length, 1))).astype(np.int64)
    out = np.empty(n, dtype=np.int64)
    for k in range(top + 1):
        rows = np.flatnonzero(k_of == k)
        if not len(rows):
            continue
        level = levels[k]
        out[rows] = reduce(level[fs[rows]], level[fe[rows] - (1 << k)])
    return out


def _tie_places(n: int, within: Ints | None) -> tuple[Ints, Ints]:
    """Each row's place in the order that breaks ties, and the row at each place: the
    aggregate's own ORDER BY (its ties in window order) or else window order itself."""
    if within is None:
        row = np.arange(n, dtype=np.int64)
        return row, row
    row_at = np.argsort(within, kind="stable").astype(np.int64)
    place = np.empty(n, dtype=np.int64)
    place[row_at] = np.arange(n, dtype=np.int64)
    return place, row_at


def _arg_extreme(
    call: WindowCall,
    arg: pa.Array,
    by: pa.Array,
    fs: Ints,
    fe: Ints,
    part: tuple[Ints, Ints, Ints],
    within: Ints | None,
) -> pa.Array:
    n = len(arg)
    has_rows = fe > fs
    if n == 0:
        return arg
    valid = valid_mask(by)
    ranks = np.asarray(pc.rank(by, sort_keys="ascending", tiebreaker="dense"), dtype=np.int64)
    place, row_at = _tie_places(n, within)
    is_max = call.fn == WindowFunction.ARG_MAX
    # The tie-break is the earlier place either way: arg_max takes the largest
    # (rank, n - place), arg_min the smallest (rank, place).
    width = np.int64(n + 1)
    if is_max:
        codes = np.where(valid, ranks * width + (n - place), -1)
    else:
        codes = np.where(valid, ranks * width + place, np.iinfo(np.int64).max)
    fs_in = np.minimum(fs, n - 1)
    best = range_extreme(codes, fs_in, np.maximum(fe, fs_in + 1), is_max, *part)
    found = has_rows & (best >= 0) & (best != np.iinfo(np.int64).max)
    picked = np.where(found, best % width, 0)
    places = n - picked if is_max else picked
    return take(arg, row_at[np.where(found, places, 0)], found).cast(call.type)


def _ordered_end(
    call: WindowCall, arg: pa.Array, within: Ints, fs: Ints, fe: Ints, part: tuple[Ints, Ints, Ints]
) -> pa.Array:
    """first / last with an ORDER BY: the value (NULL or not) of the frame's row that
    the order puts first (last); ties to the earlier (later) row in window order, as a
    stable sort leaves them. The extreme of ``(code, row)`` over each frame."""
    n = len(arg)
    if n == 0:
        return arg
    has_rows = fe > fs
    width = np.int64(n + 1)
    codes = within * width + np.arange(n, dtype=np.int64)
    is_last = call.fn == WindowFunction.LAST_VALUE
    fs_in = np.minimum(fs, n - 1)
    best = range_extreme(codes, fs_in, np.maximum(fe, fs_in + 1), is_last, *part)
    return take(arg, best % width, has_rows).cast(call.type)


def _running_mode(
    call: WindowCall, arg: pa.Array, fe: Ints, part: tuple[Ints, Ints, Ints], within: Ints | None
) -> pa.Array:
    """mode over frames that start at the partition's first row, in O(n log n).

    A prefix's mode is the value of its row with the largest (count of that row's value
    so far, earliest place of that value so far): the row where the most frequent value
    reached its count, ties to the value placed first (window order, or the aggregate's
    own ORDER BY). So each row gets that pair as one key and the answer is a running
    maximum of keys (``range_extreme``)."""
    n = len(arg)
    valid, order, starts, _, group_of = _value_runs(arg, part[0])
    count = np.empty(n, dtype=np.int64)
    count[order] = np.arange(n, dtype=np.int64) - starts[group_of] + 1
    place, row_at = _tie_places(n, within)
    # Per (partition, value) run in row order, the running minimum of the places: runs
    # lifted below all earlier ones so one accumulate restarts at each.
    lift = group_of * np.int64(n + 1)
    first = np.empty(n, dtype=np.int64)
    first[order] = np.minimum.accumulate(place[order] - lift) + lift
    width = np.int64(n + 1)
    ranked = np.where(valid, count * width + (n - first), -1)
    fs = part[1]
    has = fe > fs
    fe_in = np.maximum(fe, np.minimum(fs + 1, n))
    best = range_extreme(ranked, fs, fe_in, True, *part)
    found = has & (best >= 0)
    places = n - np.where(found, best % width, n)
    return take(arg, row_at[np.minimum(places, n - 1)], found).cast(call.type)


def _value_runs(
    arg: pa.Array, part_id: Ints
) -> tuple[npt.NDArray[np.bool_], Ints, Ints, Ints, Ints]:
    """The rows of each (partition, value) in row order, for the prefix / suffix modes:
    (non-null rows, a stable order by (partition, value), each run's first and past-last
    position in that order, each sorted position's run)."""
    codes, distinct = value_codes(arg)
    key = part_id * np.int64(distinct + 1) + codes + 1
    order = np.argsort(key, kind="stable")
    new = np.diff(key[order], prepend=-1) != 0
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], len(arg))
    return codes >= 0, order, starts, ends, np.cumsum(new) - 1


def _suffix_mode(
    call: WindowCall,
    arg: pa.Array,
    fs: Ints,
    fe: Ints,
    part: tuple[Ints, Ints, Ints],
    within: Ints | None,
) -> pa.Array:
    """mode over frames that end at the partition's last row, in O(n log n).

    In a frame ``[fs, end)`` a value's first row ``j`` there counts all of the value's
    rows in the frame: the count of its value in ``[j, end)``. Every later row of the
    value counts fewer. So the frame's mode (ties to the value placed first: the
    smallest place among its rows from ``j`` on) is at the row with the largest
    ``(count of its value from there to the end, -that place)``: a range maximum of one
    key per row (``range_extreme``)."""
    n = len(arg)
    valid, order, _, ends, group_of = _value_runs(arg, part[0])
    # Rows of one value in one partition, in row order: the k-th of m has m - k from it on.
    remaining = np.empty(n, dtype=np.int64)
    remaining[order] = ends[group_of] - np.arange(n, dtype=np.int64)
    place, row_at = _tie_places(n, within)
    # Per run, the minimum place from each row on: a running minimum over the reversed
    # runs, each lifted above the ones after it so one accumulate restarts at each.
    lift = group_of[::-1] * np.int64(n + 1)
    suffix = np.minimum.accumulate(place[order][::-1] + lift) - lift
    least = np.empty(n, dtype=np.int64)
    least[order] = suffix[::-1]
    width = np.int64(n + 1)
    ranked = np.where(valid, remaining * width + (n - least), -1)
    has = fe > fs
    fs_in = np.minimum(fs, n - 1)
    best = range_extreme(ranked, fs_in, np.maximum(fe, fs_in + 1), True, *part)
    found = has & (best >= 0)
    places = n - np.where(found, best % width, n)
    return take(arg, row_at[np.minimum(places, n - 1)], found).cast(call.type)


#: Output bytes gathered per numpy step when string_agg copies frame strings out.
_GATHER_BYTES = 1 << 24
#: Past this many output bytes per row on average, strings are copied row by row (a
#: slice each) rather than gathered byte by byte.
_COPY_ROW_BYTES = 256


def _gather(
    out: npt.NDArray[np.uint8],
    out_offsets: Ints,
    data: npt.NDArray[np.uint8],
    start: Ints,
    size: Ints,
) -> None:
    """``out[out_offsets[i]:out_offsets[i + 1]] = data[start[i]:start[i] + size[i]]`` for
    every row, a bounded number of bytes per step."""
    n = len(size)
    row = 0
    while row < n:
        end = int(np.searchsorted(out_offsets, out_offsets[row] + _GATHER_BYTES, side="right"))
        end = min(max(end - 1, row + 1), n)
        sizes = size[row:end]
        total = int(sizes.sum())
        if total:
            base = out_offsets[row:end] - out_offsets[row]
            index = np.arange(total, dtype=np.int64) + np.repeat(start[row:end] - base, sizes)
            out[out_offsets[row] : out_offsets[end]] = data[index]
        row = end


def _frame_strings(call: WindowCall, arg: pa.Array, fs: Ints, fe: Ints) -> pa.Array:
    """string_agg over any frames in O(output): every non-NULL value followed by the
    separator, all in row order, is one byte string ``G``; a frame's rows are
    contiguous, so its string is the slice of ``G`` from its first value to its last
    (without the last separator), located by prefix sums of the pieces' lengths."""
    strings = arg.cast(pa.string())
    n = len(strings)
    sep = call.separator.encode()
    pieces = pc.binary_join_element_wise(strings, pa.scalar(call.separator), "")
    lengths = np.asarray(pc.binary_length(pieces).fill_null(0), dtype=np.int64)
    pos = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=pos[1:])
    joined = pieces.drop_null()
    if len(joined):
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[
            joined.offset : joined.offset + len(joined) + 1
        ]
        data = np.frombuffer(joined.buffers()[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    else:
        data = np.empty(0, dtype=np.uint8)
    start = pos[fs]
    stop = pos[fe] - len(sep)
    has = pos[fe] > pos[fs]
    size = np.where(has, stop - start, 0)
    out_offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(size, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), dtype=np.uint8)
    if len(out) > _COPY_ROW_BYTES * n:
        # Long strings (running frames): one copy per row.
        dst, src, length = out.data, data.data, size.tolist()
        at, begin = out_offsets.tolist(), start.tolist()
        for i in np.flatnonzero(size).tolist():
            dst[at[i] : at[i + 1]] = src[begin[i] : begin[i] + length[i]]
    else:
        _gather(out, out_offsets, data, start, size)
    validity = None if has.all() else pa.array(has).buffers()[1]
    nulls = int(n - has.sum())
    if len(out) < 2**31:
        return pa.StringArray.from_buffers(
            n, pa.py_buffer(out_offsets.astype(np.int32)), pa.py_buffer(out), validity, nulls
        )
    result = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(out_offsets), pa.py_buffer(out), validity, nulls
    )
    return result.cast(call.type)


# ------------------------------------------------------------------ expanded frames


def _unique_frames(fs: Ints, fe: Ints) -> tuple[Ints, Ints, Ints]:
    """The distinct (start, end) frames and, per row, which one is its frame."""
    width = np.int64(int(fe.max()) + 1 if len(fe) else 1)
    unique, inverse = np.unique(fs * width + fe, return_inverse=True)
    return unique // width, unique % width, inverse.astype(np.int64).reshape(-1)


def _chunks(sizes: Ints) -> Iterator[tuple[int, int]]:
    """Consecutive frame ranges [a, b) of at most CHUNK_ROWS rows (or one frame)."""
    ends = np.cumsum(sizes)
    a = 0
    k = len(sizes)
    while a < k:
        before = int(ends[a - 1]) if a else 0
        b = int(np.searchsorted(ends, before + CHUNK_ROWS, side="right"))
        b = max(b, a + 1)
        yield a, b
        a = b


def _members(starts: Ints, sizes: Ints) -> tuple[Ints, Ints]:
    """(frame, row) pairs of frames ``[starts[j], starts[j] + sizes[j])``, by frame."""
    total = int(sizes.sum())
    group = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    rows = np.arange(total, dtype=np.int64) - np.repeat(offsets - starts, sizes)
    return group, rows


def _first_per_group(group: Ints, codes: Ints, distinct: int) -> Bools:
    """True at each (group, value)'s first position (groups ascending)."""
    key = group * np.int64(distinct + 1) + codes + 1
    mask = np.zeros(len(key), dtype=bool)
    _, first = np.unique(key, return_index=True)
    mask[first] = True
    return mask


def _scatter(values: pa.Array, present: Ints, k: int) -> pa.Array:
    """A length-``k`` array with ``values[i]`` at ``present[i]``, NULL elsewhere."""
    where = np.full(k, -1, dtype=np.int64)
    where[present] = np.arange(len(present), dtype=np.int64)
    return take(values, where, where >= 0)


class _Expanded:
    """The rows of a set of frames, grouped by frame, computing one result per frame."""

    def __init__(
        self,
        call: WindowCall,
        arg: pa.Array,
        within: Ints | None = None,
        keep: Bools | None = None,
    ):
        self.call = call
        self.arg = arg
        self.within = within
        self.keep = keep
        self.valid = valid_mask(arg)
        needs_codes = call.distinct or call.fn == WindowFunction.MODE
        self.codes: Ints = np.empty(0, dtype=np.int64)
        self.distinct = 0
        if needs_codes:
            self.codes, self.distinct = value_codes(arg)

    def result(self, group: Ints, rows: Ints, k: int) -> pa.Array:
        fn = self.call.fn
        if self.within is not None:
            # Each frame's rows in the aggregate's own order, ties in window order
            # (frames are listed in it).
            order = np.lexsort((self.within[rows], group))
            group, rows = group[order], rows[order]
        if self.keep is not None:
            # FILTER first: DISTINCT is over the rows it lets in.
            kept = self.keep[rows]
            group, rows = group[kept], rows[kept]
        keep = np.ones(len(rows), dtype=bool)
        if fn != WindowFunction.ARRAY_AGG:
            keep = self.valid[rows]  # every other aggregate skips NULLs
        if self.call.distinct:
            keep &= _first_per_group(group, self.codes[rows], self.distinct)
        group, rows = group[keep], rows[keep]
        counts = np.bincount(group, minlength=k).astype(np.int64)
        if fn in (WindowFunction.ARRAY_AGG, WindowFunction.STRING_AGG):
            offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
            values = self.arg.take(pa.array(rows, pa.int64()))
            lists = pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))
            if fn == WindowFunction.ARRAY_AGG:
                return lists.cast(self.call.type) if lists.type != self.call.type else lists
            return pc.binary_join(lists.cast(pa.list_(pa.string())), self.call.separator)
        if fn == WindowFunction.COUNT:
            return pa.array(counts, pa.int64())
        if fn in (WindowFunction.SUM, WindowFunction.AVG):
            return self._sums(group, rows, counts, k)
        if fn == WindowFunction.MODE:
            return self._mode(group, rows, counts)
        if fn in (WindowFunction.QUANTILE_CONT, WindowFunction.QUANTILE_DISC):
            return self._quantile(group, rows, counts)
        raise ExecutionError(f"window function {fn.value} has no frame kernel")

    def _sums(self, group: Ints, rows: Ints, counts: Ints, k: int) -> pa.Array:
        values = self.arg.take(pa.array(rows, pa.int64()))
        if self.call.fn == WindowFunction.AVG:
            values = pc.cast(values, pa.float64())
        else:
            values = values.cast(self.call.type)
        table = pa.table({"g": pa.array(group, pa.int64()), "v": values})
        summed = table.group_by("g", use_threads=False).aggregate([("v", "sum")])
        totals = _scatter(summed.column("v_sum").combine_chunks(), summed.column("g").to_numpy(), k)
        if self.call.fn == WindowFunction.AVG:
            return pc.divide(totals, pa.array(np.maximum(counts, 1).astype(np.float64)))
        return totals.cast(self.call.type)

    def _mode(self, group: Ints, rows: Ints, counts: Ints) -> pa.Array:
        k = len(counts)
        key = group * np.int64(self.distinct + 1) + self.codes[rows] + 1
        pairs = len(key)
        cells = k * (self.distinct + 1)
        if pairs and cells <= 4 * pairs + 4096:
            # Few distinct values: a (frame, value) table of counts and first positions,
            # no sort. The best cell has the largest count, then the earliest first row.
            tally = np.bincount(key, minlength=cells)
            first_at = np.full(cells, pairs, dtype=np.int64)
            np.minimum.at(first_at, key, np.arange(pairs, dtype=np.int64))
            score = tally * np.int64(pairs + 1) + (pairs - first_at)
            best_cell = score.reshape(k, -1).argmax(axis=1)
            at = first_at.reshape(k, -1)[np.arange(k), best_cell]
            return take(self.arg, rows[np.minimum(at, pairs - 1)], counts > 0)
        _, first, sizes = np.unique(key, return_index=True, return_counts=True)
        owner = group[first]
        # Per frame: the largest count, ties to the value seen first.
        order = np.lexsort((first, -sizes, owner))
        lead = np.ones(len(order), dtype=bool)
        lead[1:] = owner[order][1:] != owner[order][:-1]
        best = np.zeros(k, dtype=np.int64)
        best[owner[order][lead]] = rows[first[order][lead]]
        return take(self.arg, best, counts > 0)

    def _quantile(self, group: Ints, rows: Ints, counts: Ints) -> pa.Array:
        values = self.arg.take(pa.array(rows, pa.int64()))
        table = pa.table({"g": pa.array(group, pa.int64()), "v": values})
        order = pc.sort_indices(table, sort_keys=[("g", "ascending"), ("v", "ascending")])
        ordered = values.take(order)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
        return quantile_of_sorted(self.call, ordered, starts, counts)


def quantile_of_sorted(call: WindowCall, arr: pa.Array, starts: Ints, count: Ints) -> pa.Array:
    """Per output row, the quantile of ``arr[starts : starts + count]`` (sorted, no NULLs)."""
    return _quantile(call, arr, count, lambda k: starts + k)


def _quantile(
    call: WindowCall, arr: pa.Array, count: Ints, locate: Callable[[Ints], Ints]
) -> pa.Array:
    """Per output row, the quantile of its ``count`` values; ``locate(k)`` gives, per
    output row, the row of ``arr`` holding its k-th smallest (0-based).

    As DuckDB: quantile_disc takes the value at ``ceil(n·q) − 1``; quantile_cont
    interpolates at ``(n − 1)·q``, a decimal result truncated to its scale.
    """
    has = count > 0
    if call.fn == WindowFunction.QUANTILE_DISC:
        rank = np.maximum(np.ceil(count * call.fraction).astype(np.int64) - 1, 0)
        return take(arr, locate(rank), has)
    position = np.maximum(count - 1, 0) * call.fraction
    low = locate(np.floor(position).astype(np.int64))
    high = locate(np.ceil(position).astype(np.int64))
    frac = position - np.floor(position)
    if pa.types.is_decimal(arr.type) and len(arr):
        unscaled = unscaled_int64(arr)
        if unscaled is not None:
            lo_u, hi_u = unscaled[np.where(has, low, 0)], unscaled[np.where(has, high, 0)]
            exact = lo_u + (hi_u - lo_u) * frac
            # Truncated toward zero; the tolerance keeps 2.9999999 from becoming 2.
            value = np.trunc(exact + np.sign(exact) * 1e-9).astype(np.int64)
            return decimal128_from_unscaled(value, arr.type.scale, has).cast(call.type)
    lo = np.asarray(pc.cast(take(arr, low, has), pa.float64()).fill_null(0.0).to_numpy())
    hi = np.asarray(pc.cast(take(arr, high, has), pa.float64()).fill_null(0.0).to_numpy())
    out = pa.array(lo + (hi - lo) * frac, pa.float64(), mask=~has)
    return out.cast(call.type, safe=False)


class _WaveletMatrix:
    """k-th smallest of ``codes[l:r]`` for many ranges at once, in O(log σ) numpy steps.

    Level by level from the top bit, the codes are stably split by that bit (zeros
    first); ``zeros[level][i]`` counts zeros among the first i codes of that level. A
    query follows its range down: into the zeros when k is among them, else into the
    ones with k reduced by the zeros it passed.
    """

    def __init__(self, codes: Ints, sigma: int):
        self.bits = max(int(sigma).bit_length(), 1)
        n = len(codes)
        self.zeros: list[Ints] = []
        self.total: list[int] = []
        cur = codes
        for level in range(self.bits):
            bit = (cur >> (self.bits - 1 - level)) & 1
            is_zero = bit == 0
            z = np.zeros(n + 1, dtype=np.int64)
            np.cumsum(is_zero, out=z[1:])
            self.zeros.append(z)
            self.total.append(int(z[-1]))
            cur = np.concatenate([cur[is_zero], cur[~is_zero]])

    def kth(self, left: Ints, right: Ints, k: Ints) -> Ints:
        result = np.zeros(len(left), dtype=np.int64)
        lo, hi, k = left.copy(), right.copy(), k.copy()
        for level in range(self.bits):
            z = self.zeros[level]
            zl, zr = z[lo], z[hi]
            inside = zr - zl
            left_side = k < inside
            result = result * 2 + (~left_side)
            lo = np.where(left_side, zl, self.total[level] + lo - zl)
            hi = np.where(left_side, zr, self.total[level] + hi - zr)
            k = np.where(left_side, k, k - inside)
        return result


def _frame_quantile(call: WindowCall, arg: pa.Array, fs: Ints, fe: Ints) -> pa.Array:
    """Quantiles over any frames in O((n + rows) log σ): a wavelet matrix over the
    values' dense ranks, NULLs ranked above every value (never reached: k < count)."""
    valid = valid_mask(arg)
    prefix = np.concatenate([[0], np.cumsum(valid, dtype=np.int64)])
    count = prefix[fe] - prefix[fs]
    ranks = np.asarray(pc.rank(arg, sort_keys="ascending", tiebreaker="dense"), dtype=np.int64) - 1
    sigma = int(ranks[valid].max()) + 1 if valid.any() else 0
    codes = np.where(valid, ranks, sigma)
    row_of_rank = np.zeros(sigma + 1, dtype=np.int64)
    row_of_rank[codes[::-1]] = np.arange(len(codes) - 1, -1, -1, dtype=np.int64)
    matrix = _WaveletMatrix(codes, sigma)

    def locate(k: Ints) -> Ints:
        rank = matrix.kth(fs, fe, np.minimum(k, np.maximum(count - 1, 0)))
        return row_of_rank[np.clip(rank, 0, sigma)]

    return _quantile(call, arg, count, locate)


def _expand(
    call: WindowCall,
    arg: pa.Array,
    fs: Ints,
    fe: Ints,
    within: Ints | None,
    keep: Bools | None = None,
) -> pa.Array:
    starts, ends, frame_of_row = _unique_frames(fs, fe)
    sizes = ends - starts
    kernel = _Expanded(call, arg, within, keep)
    pieces = []
    for a, b in _chunks(sizes):
        group, rows = _members(starts[a:b], sizes[a:b])
        pieces.append(kernel.result(group, rows, b - a))
    if not pieces:
        return pa.array([], call.type)
    per_frame = pa.concat_arrays([p.cast(call.type) for p in pieces])
    return per_frame.take(pa.array(frame_of_row, pa.int64()))


def _arg_extreme_n(
    call: WindowCall, arg: pa.Array, by: pa.Array, fs: Ints, fe: Ints, part: tuple[Ints, Ints, Ints]
) -> pa.Array:
    """arg_min / arg_max with a count ``n`` (``call.offset``): per frame, the list of
    ``arg`` at its ``n`` rows with the smallest (largest) ``by``, in that order, ties in
    window order; rows where ``by`` is NULL skipped (the binder nulls it where ``arg``
    is); NULL for a frame without such rows. Frames expanded (as ``_expand``); without
    ``over_frame`` the list is given on the partition's first row only."""
    n = len(arg)
    if n == 0:
        return pa.array([], call.type)
    valid = valid_mask(by)
    ranks = np.asarray(pc.rank(by, sort_keys="ascending", tiebreaker="dense"), dtype=np.int64)
    key = -ranks if call.fn == WindowFunction.ARG_MAX_N else ranks
    starts, ends, frame_of_row = _unique_frames(fs, fe)
    sizes = ends - starts
    pieces = []
    for a, b in _chunks(sizes):
        group, rows = _members(starts[a:b], sizes[a:b])
        keep = valid[rows]
        group, rows = group[keep], rows[keep]
        order = np.lexsort((rows, key[rows], group))
        group, rows = group[order], rows[order]
        first = np.searchsorted(group, np.arange(b - a, dtype=np.int64))
        within_group = np.arange(len(group), dtype=np.int64) - first[group]
        keep = within_group < call.offset
        group, rows = group[keep], rows[keep]
        counts = np.bincount(group, minlength=b - a).astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        values = arg.take(pa.array(rows, pa.int64()))
        pieces.append(
            pa.ListArray.from_arrays(pa.array(offsets), values, mask=pa.array(counts == 0))
        )
    per_frame = pa.concat_arrays([p.cast(call.type) for p in pieces])
    shown = np.ones(n, dtype=bool) if call.over_frame else np.arange(n) == part[1]
    return per_frame.take(pa.array(frame_of_row, pa.int64(), mask=~shown))


def evaluate_spans(
    call: WindowCall,
    arg: pa.Array,
    spans: tuple[tuple[Ints, Ints], ...],
    within: Ints | None,
    keep: Bools | None,
) -> pa.Array:
    """``call`` (one of ``logical.plan.SPAN_FUNCTIONS``: DISTINCT count / sum / avg,
    mode, quantiles, lists, strings) over frames an EXCLUDE clause cut into row ranges
    ``spans`` (per row, in row order): each distinct frame's rows listed from its ranges,
    as ``_expand`` does for whole frames. O(the distinct frames' total size)."""
    n = len(arg)
    if n == 0:
        return pa.array([], call.type)
    bounds = np.stack([x for span in spans for x in span], axis=1)
    unique, inverse = np.unique(bounds, axis=0, return_inverse=True)
    frame_of_row = inverse.astype(np.int64).reshape(-1)
    pairs = [(unique[:, 2 * j], unique[:, 2 * j + 1] - unique[:, 2 * j]) for j in range(len(spans))]
    sizes = sum((size for _, size in pairs), np.zeros(len(unique), dtype=np.int64))
    kernel = _Expanded(call, arg, within, keep)
    pieces = []
    for a, b in _chunks(sizes):
        listed = [_members(start[a:b], size[a:b]) for start, size in pairs]
        group = np.concatenate([g for g, _ in listed])
        rows = np.concatenate([r for _, r in listed])
        order = np.lexsort((rows, group))  # each frame's rows in window order
        pieces.append(kernel.result(group[order], rows[order], b - a))
    per_frame = pa.concat_arrays([p.cast(call.type) for p in pieces])
    return per_frame.take(pa.array(frame_of_row, pa.int64()))


def evaluate(
    call: WindowCall,
    arg: pa.Array,
    by: pa.Array | None,
    fs: Ints,
    fe: Ints,
    part: tuple[Ints, Ints, Ints],
    within: Ints | None = None,
    keep: Bools | None = None,
) -> pa.Array:
    """``call`` over each row's frame ``[fs, fe)``; ``part`` is (partition id, start,
    end) per row; ``within`` the rows' codes under the aggregate's own ORDER BY;
    ``keep`` the rows array_agg's FILTER lets in."""
    if call.fn in (WindowFunction.FIRST_VALUE, WindowFunction.LAST_VALUE):
        assert within is not None
        return _ordered_end(call, arg, within, fs, fe, part)
    if call.fn in (WindowFunction.ARG_MIN, WindowFunction.ARG_MAX):
        assert by is not None
        return _arg_extreme(call, arg, by, fs, fe, part, within)
    if call.fn in (WindowFunction.ARG_MIN_N, WindowFunction.ARG_MAX_N):
        assert by is not None
        return _arg_extreme_n(call, arg, by, fs, fe, part)
    if len(arg) == 0:
        return pa.array([], call.type)
    if call.fn == WindowFunction.MODE and np.array_equal(fs, part[1]):
        return _running_mode(call, arg, fe, part, within)
    if call.fn == WindowFunction.MODE and np.array_equal(fe, part[2]):
        return _suffix_mode(call, arg, fs, fe, part, within)
    if call.fn == WindowFunction.STRING_AGG and not call.distinct and within is None:
        return _frame_strings(call, arg, fs, fe)
    if (
        call.fn in (WindowFunction.QUANTILE_CONT, WindowFunction.QUANTILE_DISC)
        and not call.distinct
    ):
        return _frame_quantile(call, arg, fs, fe)
    return _expand(call, arg, fs, fe, within, keep)
