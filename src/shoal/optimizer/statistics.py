"""Cardinality estimates from table statistics: rough, cheap, explainable.

Base rows come from Parquet footers (or memory tables); a scan's comparisons of an
integer or date column with constants keep their share of the column's min/max
range, other filter conjuncts a fixed fraction (equality 10%, range 30%, LIKE by
its pattern, other 50%); an equi-join yields ``|L| * |R| / distinct keys``
(:func:`join_distinct`); aggregates keep 10% of their input.
"""

from __future__ import annotations

import datetime
import math
from functools import lru_cache
from typing import Any

import pyarrow as pa

from shoal.catalog.sources import ParquetSource, TableSource
from shoal.expr.nodes import COMPARISONS, Call, ColumnRef, Expr, InList, Literal, conjoin, conjuncts
from shoal.logical.plan import (
    Aggregate,
    CteRead,
    Expand,
    Filter,
    Join,
    Limit,
    LogicalPlan,
    Project,
    Scan,
    UnionAll,
    Unnest,
    Values,
    Window,
)


def selectivity(predicate: Expr | None, scan: Scan | None = None) -> float:
    """Share of rows ``predicate`` keeps; with the ``scan`` it filters, a comparison of an
    integer or date column with constants uses that column's min/max span."""
    s = 1.0
    parts = list(dict.fromkeys(conjuncts(predicate)))  # a repeated conjunct filters once
    parts = [c for c in parts if not any(d is not c and _implies(d, c) for d in parts)]
    if scan is not None:
        ranged, parts = _range_selectivity(parts, scan)
        s *= ranged
    for c in parts:
        known = _span_selectivity(c, scan) if scan is not None else None
        if known is not None:
            s *= known
        elif isinstance(c, Call) and c.fn == "equal":
            const = any(isinstance(a, Literal) for a in c.args)
            s *= 0.1 if const else 0.5
        elif isinstance(c, Call) and c.fn in COMPARISONS:
            s *= 0.3
        elif isinstance(c, Call) and c.fn == "like":
            s *= like_selectivity(c)
        elif isinstance(c, InList):
            s *= min(0.5, 0.1 * len(c.values))
        elif isinstance(c, Call) and c.fn == "or":
            # Either branch: what neither drops (taken as independent).
            a, b = (selectivity(branch, scan) for branch in c.args)
            s *= a + b - a * b
        else:
            s *= 0.5
    return s


_FLIPPED = {"less": "greater", "less_equal": "greater_equal", "greater": "less"}
_FLIPPED |= {"greater_equal": "less_equal"}


def _range_selectivity(parts: list[Expr], scan: Scan) -> tuple[float, list[Expr]]:
    """The share of rows that the range comparisons (``<``, ``<=``, ``>``, ``>=``) of an
    integer or date column of ``scan`` with constants keep, and the conjuncts left over.

    A column's comparisons together bound one interval, which keeps its part of the
    column's min/max range (values taken to spread evenly): TPC-DS's
    ``d_month_seq BETWEEN 1200 AND 1211`` keeps 12 of ``date_dim``'s 2,400 months, not
    the fixed 30% × 30% of two comparisons.
    """
    bounds: dict[str, list[float]] = {}
    rest: list[Expr] = []
    for c in parts:
        bound = _range_bound(c, scan)
        if bound is None:
            rest.append(c)
            continue
        name, fn, value = bound
        lo, hi = bounds.setdefault(name, [-math.inf, math.inf])
        if fn in ("greater", "greater_equal"):
            bounds[name][0] = max(lo, value + 1 if fn == "greater" else value)
        else:
            bounds[name][1] = min(hi, value - 1 if fn == "less" else value)
    share = 1.0
    for name, (lo, hi) in bounds.items():
        found = integer_range(scan.source, scan.columns[scan.names.index(name)])
        assert found is not None
        low, high = found
        span = high - low + 1
        kept = min(hi, high) - max(lo, low) + 1
        share *= min(1.0, max(kept, 1.0) / span)
    return share, rest


def _range_bound(c: Expr, scan: Scan) -> tuple[str, str, float] | None:
    """(column, comparison with the column on the left, constant) for a range
    comparison of an integer or date column of ``scan`` with a constant."""
    if not (isinstance(c, Call) and c.fn in _FLIPPED):
        return None
    a, b = c.args
    fn = c.fn
    if isinstance(a, Literal) and isinstance(b, ColumnRef):
        a, b, fn = b, a, _FLIPPED[fn]
    if not (isinstance(a, ColumnRef) and isinstance(b, Literal)) or b.value is None:
        return None
    if a.name not in scan.names:
        return None
    if integer_range(scan.source, scan.columns[scan.names.index(a.name)]) is None:
        return None
    try:
        value = _number(b.value)
    except (TypeError, ValueError):
        return None
    if math.isnan(value):
        return None
    return a.name, fn, value


def _span_selectivity(c: Expr, scan: Scan) -> float | None:
    """``column = constant`` / ``column IN (constants)`` (or an OR of equalities) over an
    integer or date column of ``scan``: each value in ``span`` (max - min + 1) keeps
    1/span of the rows, assuming the values spread evenly. ``d_year = 1999`` keeps 1/201
    of ``date_dim`` (365 rows), not the fixed 10%. None when the span is unknown
    (strings, computed sides)."""
    found = equal_constants(c)
    if found is None:
        return None
    column, constants = found
    values = len(constants)
    if column.name not in scan.names:
        return None
    span = integer_span(scan.source, scan.columns[scan.names.index(column.name)])
    if span is None:
        return None
    return min(1.0, values / span)


def equal_constants(c: Expr) -> tuple[ColumnRef, frozenset[Literal]] | None:
    """(column, the constants) for ``column = constant``, ``column IN (constants)`` or an
    OR of those over one column (TPC-DS q4's ``d_year = 2001 OR d_year = 2002``)."""
    if isinstance(c, Call) and c.fn == "equal":
        a, b = c.args
        column, value = (a, b) if isinstance(b, Literal) else (b, a)
        if isinstance(column, ColumnRef) and isinstance(value, Literal):
            return column, frozenset((value,))
        return None
    if isinstance(c, InList) and not c.negated and isinstance(c.arg, ColumnRef):
        return c.arg, frozenset(c.values)
    if isinstance(c, Call) and c.fn == "or":
        left, right = equal_constants(c.args[0]), equal_constants(c.args[1])
        if left is None or right is None or left[0] != right[0]:
            return None
        return left[0], left[1] | right[1]
    return None


def _disjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Call) and e.fn == "or":
        return _disjuncts(e.args[0]) + _disjuncts(e.args[1])
    return [e]


def _implies(d: Expr, c: Expr) -> bool:
    """Whether the OR ``d`` implies the OR ``c``: every branch of ``d`` has a conjunct
    that is one of ``c``'s branches. Pushdown adds such implied ORs beside the one they
    come from (``(a AND b) OR (x AND y)`` gains ``a OR x`` and ``b OR y``, TPC-DS q91's
    ``customer_demographics``); counted again they would shrink its estimate 30-fold."""
    if not (isinstance(c, Call) and c.fn == "or" and isinstance(d, Call) and d.fn == "or"):
        return False
    wanted = set(_disjuncts(c))
    return all(any(x in wanted for x in conjuncts(branch)) for branch in _disjuncts(d))


def residual_selectivity(condition: Expr | None) -> float:
    """The share of a join's key matches that its other conjuncts keep: those that are
    no equality of two sides (TPC-DS q72's ``inv_quantity_on_hand < cs_quantity``)."""
    rest = [c for c in conjuncts(condition) if not _is_column_equality(c)]
    return selectivity(conjoin(rest)) if rest else 1.0


def _is_column_equality(c: Expr) -> bool:
    return (
        isinstance(c, Call)
        and c.fn == "equal"
        and all(not isinstance(a, Literal) and a.columns() for a in c.args)
    )


def like_selectivity(c: Call) -> float:
    """Share of rows a LIKE keeps: the more literal characters its pattern fixes, the
    fewer strings match (halved per character, from 1% to 50%); NOT LIKE keeps the
    rest. ('forest%' keeps 1.6%; '%special%requests%' keeps 1%, its NOT LIKE 99%.)"""
    pattern, _, negated = c.options if len(c.options) == 3 else ("", False, False)
    fixed = sum(1 for ch in str(pattern) if ch not in "%_")
    share = min(0.5, max(0.01, 0.5**fixed))
    return 1.0 - share if negated else share


@lru_cache(maxsize=4096)
def estimate_rows(plan: LogicalPlan) -> float:
    if isinstance(plan, Scan):
        base = float(plan.source.statistics().num_rows)
        return max(1.0, base * selectivity(conjoin(list(plan.filters)), plan))
    if isinstance(plan, Values):
        return float(len(plan.rows))
    if isinstance(plan, CteRead):
        return estimate_rows(plan.body)
    if isinstance(plan, Filter):
        return max(1.0, estimate_rows(plan.input) * selectivity(plan.predicate))
    if isinstance(plan, Project | Window):
        return estimate_rows(plan.input)
    if isinstance(plan, Expand):
        return estimate_rows(plan.input) * len(plan.projections)
    if isinstance(plan, Unnest):
        return estimate_rows(plan.input) * 4  # no list lengths are known: a guess
    if isinstance(plan, Aggregate):
        if not plan.keys:
            return 1.0
        return max(1.0, estimate_rows(plan.input) * 0.1)
    if isinstance(plan, Limit):
        below = estimate_rows(plan.input)
        return min(below, float(plan.limit)) if plan.limit is not None else below
    if isinstance(plan, UnionAll):
        return sum(estimate_rows(c) for c in plan.inputs)
    if isinstance(plan, Join):
        left, right = estimate_rows(plan.left), estimate_rows(plan.right)
        if plan.kind in ("semi", "anti"):
            # The share of left keys that find a partner: right's rows over left's
            # distinct keys (a semi join to a small set keeps few rows).
            pairs = equi_pairs(plan.condition, plan.left.schema, plan.right.schema)
            share = 0.5
            if pairs:
                share = min(1.0, right / max(key_distinct(plan.left, pairs[0][0]), 1.0))
            if plan.kind == "anti":
                share = max(0.1, 1.0 - share)
            return max(1.0, left * share)
        if plan.single_row:
            return left
        keys = equi_pairs(plan.condition, plan.left.schema, plan.right.schema)
        rows: float
        if not keys:
            rows = left * right * selectivity(plan.condition)
        else:
            # A foreign key has no more distinct values than the primary key it
            # points at, so the smaller origin table bounds the key's distinct count.
            distinct = composite_distinct(
                [join_distinct(plan.left, lk, plan.right, rk) for lk, rk in keys],
                key_table_rows(plan.left, [lk for lk, _ in keys]),
                key_table_rows(plan.right, [rk for _, rk in keys]),
            )
            rows = left * right / max(distinct, 1.0) * residual_selectivity(plan.condition)
        if plan.kind in ("left", "full"):
            rows = max(rows, left)
        if plan.kind in ("right", "full"):
            rows = max(rows, right)
        return max(1.0, rows)
    return 1000.0


def estimate_bytes(plan: LogicalPlan) -> float:
    return estimate_rows(plan) * row_width(plan.schema)


def row_width(schema: pa.Schema) -> float:
    width = 0.0
    for f in schema:
        try:
            width += f.type.bit_width / 8
        except ValueError:
            width += 24.0  # strings and other variable-width values
    return max(width, 1.0)


def key_distinct(plan: LogicalPlan, key: Expr) -> float:
    """Distinct values of ``key`` in ``plan``: the row count of the table it comes from."""
    if isinstance(key, ColumnRef):
        origin = _origin_rows(plan, key.name)
        if origin is not None:
            return origin
    return estimate_rows(plan)


def join_distinct(left: LogicalPlan, lk: Expr, right: LogicalPlan, rk: Expr) -> float:
    """The distinct count an equi-join on ``lk = rk`` divides ``|L| * |R|`` by.

    A foreign key has no more distinct values than the primary key it points at, so
    the smaller of the two key distinct counts bounds it — unless one side's key is
    unique in its table (an integer key spanning at least its row count: a surrogate
    key). Then each row of the other side matches at most one row of that table: the
    divisor is the larger of the other side's distinct count (at most the unique
    key's: ``l_orderkey`` spans 6 M values but has the 1.5 M of ``o_orderkey``) and the
    unique side's distinct count, the latter no more than that side's estimated rows
    (containment: the kept keys are taken to lie among the other side's values). A fact table's date
    key spans 1,823 days but joins a 73,049-row ``date_dim`` one row per fact row
    (divisor 73,049; TPC-DS q72 estimated 40× the rows of its ship-date join and so
    built on the wrong side of ``inventory``), and the 365 days of one year within those
    1,823 keep a fifth of the fact rows (divisor 1,823), not 365/73,049 of them.
    """
    ld, rd = key_distinct(left, lk), key_distinct(right, rk)
    divisors = [
        max(min(own, estimate_rows(plan)), min(other, own))
        for own, other, plan, key in ((ld, rd, left, lk), (rd, ld, right, rk))
        if key_unique(plan, key)
    ]
    # When both look unique, the larger: a foreign key spanning widely in a small table
    # (``c_current_cdemo_sk``: 100,000 rows over 1.9 M values) passes the span test too,
    # and dividing by its count would multiply the join by 19 (TPC-DS q64). Were both
    # truly unique, the join has at most min(|L|, |R|) rows: the larger divisor gives that.
    return max(divisors) if divisors else min(ld, rd)


def composite_distinct(per_key: list[float], left_rows: float, right_rows: float) -> float:
    """The divisor of a join on several keys, from each key's divisor (``per_key``) and the
    rows of the table each side's keys all come from (``key_table_rows``).

    Independent keys multiply; but a side's key combinations are no more than its table's
    rows, and the larger side's combinations contain the smaller's (a return's
    ``(item, order)`` is one of the sales'), so the product is bounded by the larger
    table — and no key does worse than on its own. ``inventory ⋈ (dates, items)`` on
    ``(date, item)`` (TPC-DS q72) divides by 1,821 × 18,000, not by 18,000.
    """
    single = max(per_key)
    if len(per_key) == 1:
        return single
    return max(single, min(math.prod(per_key), max(left_rows, right_rows)))


def key_table_rows(plan: LogicalPlan, keys: list[Expr]) -> float:
    """Rows of the one table all ``keys`` are columns of, unfiltered (an upper bound on
    their combinations); infinite when they come from several tables or none."""
    sources = set()
    for key in keys:
        scan = origin_scan(plan, key.name) if isinstance(key, ColumnRef) else None
        if scan is None:
            return math.inf
        sources.add(id(scan.source))
        found = scan
    if len(sources) != 1:
        return math.inf
    return float(found.source.statistics().num_rows)


def origin_scan(plan: LogicalPlan, name: str) -> Scan | None:
    """The scan column ``name`` of ``plan`` is read from, unchanged (through projections
    that pass it on and joins), or None."""
    found = origin_column(plan, name)
    return found[0] if found is not None else None


def origin_column(plan: LogicalPlan, name: str) -> tuple[Scan, str] | None:
    """(scan, the table column) that column ``name`` of ``plan`` is read from unchanged."""
    if isinstance(plan, CteRead):
        if name not in plan.names:
            return None
        return origin_column(plan.body, plan.body_name(name))
    if isinstance(plan, Scan):
        if name not in plan.names:
            return None
        return plan, plan.columns[plan.names.index(name)]
    if isinstance(plan, Aggregate | UnionAll):
        return None  # computed, or from several inputs
    if isinstance(plan, Project):
        for n, e in plan.exprs:
            if n == name:
                return origin_column(plan.input, e.name) if isinstance(e, ColumnRef) else None
        return None
    for child in plan.children():
        if name in child.schema.names:
            return origin_column(child, name)
    return None


def key_unique(plan: LogicalPlan, key: Expr) -> bool:
    """Whether ``key`` is an integer column of a table whose values span at least the
    table's rows (its values may all differ), read through projections and joins."""
    if not isinstance(key, ColumnRef):
        return False
    return _origin_unique(plan, key.name)


def _origin_unique(plan: LogicalPlan, name: str) -> bool:
    if isinstance(plan, CteRead):
        if name not in plan.names:
            return False
        return _origin_unique(plan.body, plan.body_name(name))
    if isinstance(plan, Scan):
        if name not in plan.names:
            return False
        column = plan.columns[plan.names.index(name)]
        span = integer_span(plan.source, column)
        return span is not None and float(plan.source.statistics().num_rows) <= span
    if isinstance(plan, Aggregate):
        return False
    if isinstance(plan, Project):
        for n, e in plan.exprs:
            if n == name:
                return isinstance(e, ColumnRef) and _origin_unique(plan.input, e.name)
        return False
    if isinstance(plan, Join):
        return _unique_through_join(plan, name)
    for child in plan.children():
        if name in child.schema.names:
            return _origin_unique(child, name)
    return False


def _unique_through_join(plan: Join, name: str) -> bool:
    """A column unique in one input of a join stays unique in its output only when each
    of that input's rows meets at most one row of the other: a semi/anti join's left
    side, or an equi-join on a key unique in the other input (``d1 ⋈ d2`` on the 7-row
    ``d_week_seq`` repeats each ``d1.d_date_sk`` seven times: TPC-DS q72)."""
    on_left = name in plan.left.schema.names
    side, other = (plan.left, plan.right) if on_left else (plan.right, plan.left)
    if not _origin_unique(side, name):
        return False
    if on_left and (plan.kind in ("semi", "anti") or plan.single_row):
        return True
    for lk, rk in equi_pairs(plan.condition, plan.left.schema, plan.right.schema):
        if key_unique(other, rk if on_left else lk):
            return True
    return False


def distinct_is_estimated(plan: LogicalPlan, key: Expr) -> bool:
    """Whether :func:`key_distinct` has more than a row count to go on for ``key``: it
    comes from an integer or date column of a table (min/max span) or is an aggregate's
    output. A string column's distinct count is unknown (TPC-DS q85's marital status
    has 5 values, not one per row)."""
    if not isinstance(key, ColumnRef):
        return False
    return _origin_estimated(plan, key.name)


def _origin_estimated(plan: LogicalPlan, name: str) -> bool:
    if isinstance(plan, CteRead):
        if name not in plan.names:
            return False
        return _origin_estimated(plan.body, plan.body_name(name))
    if isinstance(plan, Scan):
        if name not in plan.names:
            return False
        column = plan.columns[plan.names.index(name)]
        return integer_span(plan.source, column) is not None
    if isinstance(plan, Aggregate):
        return name in {f.name for f in plan.schema}
    if isinstance(plan, Project):
        for n, e in plan.exprs:
            if n == name:
                return isinstance(e, ColumnRef) and _origin_estimated(plan.input, e.name)
        return False
    for child in plan.children():
        if name in child.schema.names:
            return _origin_estimated(child, name)
    return False


def _origin_rows(plan: LogicalPlan, name: str) -> float | None:
    if isinstance(plan, CteRead):
        if name not in plan.names:
            return None
        return _origin_rows(plan.body, plan.body_name(name))
    if isinstance(plan, Scan):
        if name not in plan.names:
            return None
        rows = float(plan.source.statistics().num_rows)
        column = plan.columns[plan.names.index(name)]
        span = integer_span(plan.source, column)
        return min(rows, span) if span is not None else rows
    if isinstance(plan, Aggregate):
        return estimate_rows(plan) if name in {f.name for f in plan.schema} else None
    if isinstance(plan, Project):
        for n, e in plan.exprs:
            if n == name:
                return _origin_rows(plan.input, e.name) if isinstance(e, ColumnRef) else None
        return None
    for child in plan.children():
        if name in child.schema.names:
            return _origin_rows(child, name)
    return None


def integer_span(source: TableSource, column: str) -> float | None:
    """max - min + 1 of an integer or date column, from Parquet min/max statistics.

    An upper bound on its distinct values: tells a foreign key with 25 values
    (``c_nationkey``) from a key with one value per row.
    """
    bounds = integer_range(source, column)
    return bounds[1] - bounds[0] + 1 if bounds is not None else None


def integer_range(source: TableSource, column: str) -> tuple[int, int] | None:
    """(min, max) of an integer or date column (a date as its day number), from Parquet
    min/max statistics; None for other columns or when a file lacks them."""
    if not isinstance(source, ParquetSource):
        return None
    field = source.schema.field(column)
    if not (pa.types.is_integer(field.type) or pa.types.is_date(field.type)):
        return None
    return _integer_range(source, column, tuple(source.file_version(path) for path in source.files))


@lru_cache(maxsize=4096)
def _integer_range(
    source: ParquetSource, column: str, versions: tuple[tuple[str, int, int] | None, ...]
) -> tuple[int, int] | None:
    """``integer_range`` while the files keep these versions (the join orderer asks for
    the same spans hundreds of times per query)."""
    if None in versions:
        return None
    lo: Any = None
    hi: Any = None
    for split in source.splits():
        try:
            md = source.footer(split.path)
        except (OSError, pa.ArrowInvalid):
            return None
        for rg in split.row_groups or ():
            if rg >= md.num_row_groups:
                return None  # the file changed since it was registered
            group = md.row_group(rg)
            for i in range(group.num_columns):
                chunk = group.column(i)
                if chunk.path_in_schema != column:
                    continue
                stats = chunk.statistics
                if stats is None or not stats.has_min_max:
                    return None
                lo = stats.min if lo is None else min(lo, stats.min)
                hi = stats.max if hi is None else max(hi, stats.max)
    if lo is None or hi is None:
        return None
    return _number(lo), _number(hi)


def _number(value: Any) -> int:
    """An integer or date value on one number line (dates as day numbers), exact: the
    pushdown turns these into filter constants, and a float would round int64s past 2^53."""
    if isinstance(value, datetime.datetime):
        value = value.date()
    if isinstance(value, datetime.date):
        return value.toordinal()
    return int(value)


def equi_pairs(
    condition: Expr | None, left: pa.Schema, right: pa.Schema
) -> list[tuple[Expr, Expr]]:
    """(left expr, right expr) for each ``l = r`` conjunct with sides from each input."""
    lnames, rnames = set(left.names), set(right.names)
    pairs = []
    for c in conjuncts(condition):
        if not (isinstance(c, Call) and c.fn == "equal"):
            continue
        a, b = c.args
        ac, bc = a.columns(), b.columns()
        if not ac or not bc:
            continue
        if ac <= lnames and bc <= rnames:
            pairs.append((a, b))
        elif ac <= rnames and bc <= lnames:
            pairs.append((b, a))
    return pairs
