"""Binding window functions (``f(...) OVER (...)``, named windows, QUALIFY) to ``Window`` nodes.

The expression binder hands every ``exp.Window`` it meets to :meth:`WindowBinder.bind`,
which binds the function's arguments and the PARTITION BY / ORDER BY keys with that same
binder (so ``rank() OVER (ORDER BY sum(x))`` reads the aggregate's output), and returns a
reference to the window's result column. :meth:`WindowBinder.apply` then puts the windows
on the plan: one ``Project`` computing the non-column arguments and keys, and one
``Window`` node per distinct (PARTITION BY, ORDER BY), the longest sort requirement
lowest, so that a window whose requirement is a prefix of the one below needs no sort of
its own. Calls go one way: ``binder`` → this module → ``expressions`` (through the
``ExpressionBinder`` it is handed).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from shoal.errors import TypeMismatchError, UnsupportedError, UserError
from shoal.expr.nodes import Case, ColumnRef, Expr, Literal
from shoal.logical.plan import (
    DEFAULT_ORDERED_FRAME,
    FRAMED_FUNCTIONS,
    SPAN_FUNCTIONS,
    WHOLE_PARTITION,
    BoundKind,
    FrameBound,
    FrameExclude,
    FrameUnit,
    LogicalPlan,
    Project,
    SortKey,
    Window,
    WindowCall,
    WindowFrame,
    WindowFunction,
)
from shoal.sql import typing as t
from shoal.sql.expressions import (
    AGGREGATE_NODES,
    aggregate_parts,
    filtered_aggregate,
    string_agg_separator,
)
from shoal.sql.quantiles import QUANTILE_NODES, arg_count, quantile_fraction
from shoal.sql.scope import NameGenerator
from shoal.sql.source_text import as_written, written_call
from shoal.sql.variance import Pairwise, Spread, pairwise, spread
from shoal.types import is_decimal, is_float, is_integer, sql_type_name, sum_type

if TYPE_CHECKING:
    from shoal.sql.expressions import ExpressionBinder

_SPREADS = frozenset(s.value for s in Spread)
_PAIRWISE = frozenset(p.value for p in Pairwise)
#: Aggregates that take DISTINCT over a window (min / max ignore it).
_DISTINCT_OK = frozenset(
    {"count", "sum", "avg", "min", "max", "array_agg", "string_agg", "approx_count_distinct"}
)

#: The aggregates a window computes: those of GROUP BY, and first / last (DuckDB's,
#: which take NULLs too: first_value / last_value, or the row their ORDER BY puts first
#: or last).
_AGGREGATES: dict[type[exp.Expr], str] = {**AGGREGATE_NODES, exp.First: "first", exp.Last: "last"}

#: Aggregates whose ORDER BY changes the result: the order of the values in lists and
#: strings, the row first / last take.
_ORDERED = frozenset({"array_agg", "string_agg", "first", "last", "mode", "arg_min", "arg_max"})
#: Aggregates whose result the order of the values cannot change: their ORDER BY is
#: ignored. (mode and arg_min / arg_max break ties by it, as DuckDB: the value first in
#: that order among those tied.)
_ORDER_FREE = frozenset(
    {
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "stddev_samp",
        "stddev_pop",
        "var_samp",
        "var_pop",
        "bool_and",
        "bool_or",
        "count_if",
        "quantile",
        "approx_count_distinct",
        "covar_pop",
        "covar_samp",
        "corr",
    }
)

#: The window functions IGNORE NULLS applies to (any_value is first_value IGNORE NULLS;
#: sqlglot wraps it so itself).
_IGNORE_NULLS_OK = (
    exp.First,
    exp.Last,
    exp.FirstValue,
    exp.LastValue,
    exp.NthValue,
    exp.Lag,
    exp.Lead,
    exp.AnyValue,
)

_RANKING: dict[type[exp.Expr], WindowFunction] = {
    exp.RowNumber: WindowFunction.ROW_NUMBER,
    exp.Rank: WindowFunction.RANK,
    exp.DenseRank: WindowFunction.DENSE_RANK,
    exp.PercentRank: WindowFunction.PERCENT_RANK,
    exp.CumeDist: WindowFunction.CUME_DIST,
}
_PLAIN: dict[str, WindowFunction] = {
    "count": WindowFunction.COUNT,
    "sum": WindowFunction.SUM,
    "avg": WindowFunction.AVG,
    "min": WindowFunction.MIN,
    "max": WindowFunction.MAX,
}
_VALUES: dict[type[exp.Expr], WindowFunction] = {
    exp.FirstValue: WindowFunction.FIRST_VALUE,
    exp.LastValue: WindowFunction.LAST_VALUE,
    exp.NthValue: WindowFunction.NTH_VALUE,
    exp.Lag: WindowFunction.LAG,
    exp.Lead: WindowFunction.LEAD,
}


@dataclass(frozen=True)
class _Spec:
    partition_by: tuple[str, ...]
    order_by: tuple[SortKey, ...]


@dataclass
class WindowBinder:
    """Collects the window calls of one SELECT and puts them on its plan."""

    names: NameGenerator
    #: ``WINDOW w AS (...)`` definitions by lower-cased name.
    named: dict[str, exp.Window] = field(default_factory=dict)
    computed: list[tuple[str, Expr]] = field(default_factory=list)
    groups: dict[_Spec, list[tuple[str, WindowCall]]] = field(default_factory=dict)
    #: The call being bound, as written (for errors about the calls it makes).
    current: str = ""

    @classmethod
    def for_select(cls, node: exp.Select, names: NameGenerator) -> WindowBinder:
        made = cls(names)
        # Each definition may build on an earlier one only (as DuckDB); stored resolved.
        for w in node.args.get("windows") or []:
            made.named[w.name.lower()] = made._resolve_named(w)
        return made

    def bind(self, node: exp.Window, binder: ExpressionBinder) -> Expr:
        """A window function call: bind its parts, return an expression over its result
        (a reference to one window column, or arithmetic over several for the
        aggregates built from plain ones, such as stddev or corr)."""
        node = self._resolve_named(node)
        func = node.this
        if isinstance(func, exp.RespectNulls):
            func = func.this
        ignore_nulls = isinstance(func, exp.IgnoreNulls)
        if ignore_nulls:
            func = func.this
            if not isinstance(func, _IGNORE_NULLS_OK):
                raise UnsupportedError(f"IGNORE NULLS in window function {written_call(func)}")
        if isinstance(func, exp.WithinGroup):
            raise UnsupportedError(
                f"{written_call(func)} as a window function: an ordered-set aggregate has "
                "no window form (quantile_cont(x, q) OVER (...) is one)"
            )
        source = func  # as written, for errors (FILTER is rewritten below)
        keep: ColumnRef | None = None
        if isinstance(func, exp.Filter):
            inner = func.this
            if isinstance(inner, exp.IgnoreNulls) and isinstance(inner.this, exp.AnyValue):
                inner = inner.this  # sqlglot's own wrapping of any_value
                func = exp.Filter(this=inner, expression=func.expression)
            if not (type(inner) in AGGREGATE_NODES or isinstance(inner, exp.AnyValue)):
                # As DuckDB: first_value, lag, rank, ... take no FILTER.
                raise UserError(
                    "FILTER (WHERE ...) applies to aggregates, not to window function "
                    f"{written_call(inner)}"
                )
            if isinstance(inner, exp.ArrayAgg):
                # array_agg keeps NULLs: its FILTER drops rows, it cannot NULL them.
                where = func.expression
                condition = binder.bind(where.this if isinstance(where, exp.Where) else where)
                if not pa.types.is_boolean(condition.type):
                    raise TypeMismatchError(f"FILTER needs a BOOLEAN, got {condition}")
                keep = self._column(condition)
                func = inner
            else:
                func = _filtered(func)
        partition = tuple(self._column(binder.bind(p)) for p in node.args.get("partition_by") or [])
        order = node.args.get("order")
        order_keys: list[SortKey] = []
        for o in order.expressions if order is not None else []:
            ref = self._column(binder.bind(o.this))
            order_keys.append(SortKey(ref, not o.args.get("desc"), bool(o.args.get("nulls_first"))))
        frame_node = node.args.get("spec")
        frame = _frame(frame_node, order_keys)
        self.current = written_call(source)
        spec = _Spec(tuple(p.name for p in partition), tuple(order_keys))
        if isinstance(func, exp.AnyValue):
            # DuckDB: the frame's first non-NULL value.
            return self._add(spec, self._any_value(func, source, binder, frame))
        if type(func) in _AGGREGATES:
            return self._aggregate(func, source, binder, frame, spec, keep, ignore_nulls)
        call = self._call(func, binder, frame, order_keys)
        if ignore_nulls:
            if call.within:
                raise UnsupportedError(
                    f"IGNORE NULLS with ORDER BY in window function {written_call(func)}"
                )
            call = replace(call, ignore_nulls=True)
        return self._add(spec, call)

    def _any_value(
        self, func: exp.Expr, source: exp.Expr, binder: ExpressionBinder, frame: WindowFrame
    ) -> WindowCall:
        value, ordered = aggregate_parts(func)
        if ordered:
            raise UnsupportedError(f"ORDER BY inside window function {written_call(source)}")
        if value is None or isinstance(value, exp.Star | exp.Distinct):
            raise UnsupportedError(f"window function {written_call(source)}")
        arg = binder.bind(value)
        if pa.types.is_null(arg.type):
            arg = Literal(None, pa.int32())
        return WindowCall(
            WindowFunction.FIRST_VALUE, self._column(arg), arg.type, frame, ignore_nulls=True
        )

    def _add(self, spec: _Spec, call: WindowCall) -> ColumnRef:
        """A reference to ``call``'s result column under ``spec`` (one column per
        distinct call)."""
        if call.frame.exclude != FrameExclude.NO_OTHERS and not _excludes(call):
            raise UnsupportedError(
                f"EXCLUDE {call.frame.exclude.value} in the frame of window function "
                f"{self.current} (not arg_min / arg_max nor an ORDER BY inside first / last)"
            )
        group = self.groups.setdefault(spec, [])
        for name, existing in group:
            if existing == call:
                return ColumnRef(name, call.type)
        name = self.names.fresh(call.fn.value)
        group.append((name, call))
        return ColumnRef(name, call.type)

    def apply(self, plan: LogicalPlan) -> LogicalPlan:
        """``plan`` with the computed arguments projected and the windows on top."""
        if self.computed:
            passthrough = tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema)
            plan = Project(plan, passthrough + tuple(self.computed))
        # Longest sort requirement lowest: a window whose (partition, order) is a
        # prefix of the one below it reads rows already in its order.
        specs = sorted(
            self.groups, key=lambda s: len(s.partition_by) + len(s.order_by), reverse=True
        )
        for spec in specs:
            plan = Window(plan, spec.partition_by, spec.order_by, tuple(self.groups[spec]))
        return plan

    def _aggregate(
        self,
        func: exp.Expr,
        source: exp.Expr,
        binder: ExpressionBinder,
        frame: WindowFrame,
        spec: _Spec,
        keep: ColumnRef | None,
        ignore_nulls: bool,
    ) -> Expr:
        """An aggregate over each row's frame. One path for all of them: the plain
        aggregates (and those built from them: the variance family, covariance, corr,
        count_if, bool_and / bool_or) use the operator's prefix-sum and sparse-table
        kernels; the others (DISTINCT, mode, quantiles, lists, strings, arg_min /
        arg_max) its frame-aggregate kernels (``physical/operators/frame_aggregate.py``)."""
        fn = _AGGREGATES[type(func)]
        label = written_call(source)
        if ignore_nulls and fn not in ("first", "last"):
            raise UnsupportedError(f"IGNORE NULLS in window function {label}")
        value, ordered = aggregate_parts(func)
        by_node = func.args.get("expression")
        if fn in ("arg_min", "arg_max") and isinstance(by_node, exp.Order):
            # sqlglot hangs arg_min(a, b ORDER BY k)'s ORDER BY on its second argument.
            by_node, ordered = by_node.this, list(by_node.expressions)
        within = self._within(ordered, binder)
        if within and fn not in _ORDER_FREE | _ORDERED:
            raise UnsupportedError(f"ORDER BY inside window function {label}")
        if fn in _ORDER_FREE:
            within = ()  # as DuckDB: the order of the values does not change the result
        distinct = isinstance(value, exp.Distinct)
        if isinstance(value, exp.Distinct):
            if len(value.expressions) != 1:
                raise UnsupportedError(f"DISTINCT with several arguments: {written_call(func)}")
            value = value.expressions[0]
        if distinct and fn not in _DISTINCT_OK:
            raise UnsupportedError(f"DISTINCT in window function {label}")
        if fn == "count" and (value is None or isinstance(value, exp.Star)):
            if distinct:
                raise UserError(f"COUNT(DISTINCT *) is not valid: {label}")
            return self._add(spec, WindowCall(WindowFunction.COUNT_STAR, None, pa.int64(), frame))
        if value is None or isinstance(value, exp.Star):
            raise UserError(f"{fn.upper()} needs an argument: {label}")
        arg = binder.bind(value)
        if pa.types.is_null(arg.type):
            arg = Literal(None, pa.int32())

        def plain(name: str, x: Expr) -> Expr:
            typ = pa.int64() if name == "count" else sum_type(x.type)
            return self._add(spec, WindowCall(_PLAIN[name], self._column(x), typ, frame))

        if fn in ("min", "max") and func.args.get("count") is not None:
            # min(x, n) / max(x, n): the list of the frame's n smallest (largest) x.
            if distinct:
                raise UnsupportedError(f"DISTINCT in window function {label}")
            n = arg_count(binder.bind(func.args["count"]), source)
            wfn = WindowFunction.ARG_MIN_N if fn == "min" else WindowFunction.ARG_MAX_N
            column = self._column(arg)
            call = WindowCall(
                wfn, column, pa.list_(arg.type), frame, offset=n, by=column, over_frame=True
            )
            return self._add(spec, call)
        if fn in _PLAIN:
            extra = [k for k, v in func.args.items() if k not in ("this", "big_int") and v]
            if extra:
                raise UserError(f"{fn.upper()} takes one argument: {label}")
            wfn = _PLAIN[fn]
            distinct = distinct and fn in ("count", "sum", "avg")
            if fn == "count":
                out = pa.int64()
            elif fn == "sum":
                out = sum_type(arg.type)
            elif fn == "avg":
                t.require_numeric(arg, "AVG")
                out = pa.float64()
            else:
                out = arg.type
            call = WindowCall(wfn, self._column(arg), out, frame, distinct=distinct)
            return self._add(spec, call)
        if fn in _SPREADS:
            return spread(Spread(fn), arg, plain)
        if fn in _PAIRWISE:
            if func.args.get("null_on_zero_variance"):
                raise UnsupportedError(f"window function {label}")
            return pairwise(Pairwise(fn), arg, binder.bind(func.expression), plain)
        if fn in ("bool_and", "bool_or", "count_if"):
            if not pa.types.is_boolean(arg.type):
                raise TypeMismatchError(f"{fn.upper()} needs a BOOLEAN, got {arg}")
            if fn == "count_if":
                one = Case(((arg, Literal(1, pa.int32())),), Literal(None, pa.int32()), pa.int32())
                holds = plain("count", one)
                none = t.comparison("equal", plain("count", arg), Literal(0, pa.int64()))
                return Case(((none, Literal(None, pa.int64())),), holds, pa.int64())
            # Over booleans false < true: AND is the minimum, OR the maximum.
            minmax = WindowFunction.MIN if fn == "bool_and" else WindowFunction.MAX
            return self._add(spec, WindowCall(minmax, self._column(arg), pa.bool_(), frame))
        if fn == "approx_count_distinct":
            # Exact: a frame's distinct count is computed anyway, an estimate would
            # only add error.
            call = WindowCall(
                WindowFunction.COUNT, self._column(arg), pa.int64(), frame, distinct=True
            )
            return self._add(spec, call)
        if fn in ("arg_min", "arg_max"):
            assert by_node is not None
            by = binder.bind(by_node)
            picked = Case(
                ((t.call("is_not_null", [by], pa.bool_()), arg),), Literal(None, arg.type), arg.type
            )
            guarded_by = Case(
                ((t.call("is_not_null", [arg], pa.bool_()), by),), Literal(None, by.type), by.type
            )
            count_node = func.args.get("count")
            if count_node is not None:
                if within or isinstance(count_node, exp.Order):
                    raise UnsupportedError(f"ORDER BY inside window function {written_call(func)}")
                n = arg_count(binder.bind(count_node), func)
                wfn = WindowFunction.ARG_MIN_N if fn == "arg_min" else WindowFunction.ARG_MAX_N
                call = WindowCall(
                    wfn,
                    self._column(picked),
                    pa.list_(arg.type),
                    frame,
                    offset=n,
                    by=self._column(guarded_by),
                    over_frame=True,
                )
                return self._add(spec, call)
            wfn = WindowFunction.ARG_MIN if fn == "arg_min" else WindowFunction.ARG_MAX
            call = WindowCall(
                wfn,
                self._column(picked),
                arg.type,
                frame,
                by=self._column(guarded_by),
                within=within,
            )
            return self._add(spec, call)
        if isinstance(arg, Literal):
            raise UnsupportedError(f"window function {label} of a constant")
        if fn == "quantile":
            qfn = QUANTILE_NODES[type(func)]
            if qfn == WindowFunction.QUANTILE_CONT:
                t.require_numeric(arg, func.key.upper())
                out = arg.type if is_decimal(arg.type) else pa.float64()
            else:
                out = arg.type
            call = WindowCall(
                qfn,
                self._column(arg),
                out,
                frame,
                fraction=quantile_fraction(func),
                over_frame=True,
            )
            return self._add(spec, call)
        if fn == "mode":
            call = WindowCall(
                WindowFunction.MODE,
                self._column(arg),
                arg.type,
                frame,
                over_frame=True,
                within=within,
            )
            return self._add(spec, call)
        if distinct and within and any(k.expr != self._column(arg) for k in within):
            # DuckDB requires it too: which duplicate's key would place the value?
            raise UserError(f"DISTINCT with ORDER BY needs the ORDER BY on the argument: {label}")
        if fn == "array_agg":
            call = WindowCall(
                WindowFunction.ARRAY_AGG,
                self._column(arg),
                pa.list_(arg.type),
                frame,
                distinct=distinct,
                over_frame=True,
                within=within,
                keep=keep,
            )
            return self._add(spec, call)
        if fn == "string_agg":
            separator = string_agg_separator(func, binder)
            call = WindowCall(
                WindowFunction.STRING_AGG,
                self._column(t.coerce(arg, pa.string())),
                pa.string(),
                frame,
                separator=separator,
                distinct=distinct,
                over_frame=True,
                within=within,
            )
            return self._add(spec, call)
        if fn in ("first", "last"):
            wfn = WindowFunction.FIRST_VALUE if fn == "first" else WindowFunction.LAST_VALUE
            if ignore_nulls and within:
                raise UnsupportedError(f"IGNORE NULLS with ORDER BY in window function {label}")
            call = WindowCall(
                wfn, self._column(arg), arg.type, frame, within=within, ignore_nulls=ignore_nulls
            )
            return self._add(spec, call)
        raise UnsupportedError(f"window function {label}")

    # ------------------------------------------------------------------ parts

    def _within(self, ordered: list[exp.Ordered], binder: ExpressionBinder) -> tuple[SortKey, ...]:
        """An aggregate's own ORDER BY keys, bound and projected to columns (NULLS LAST
        unless written, as DuckDB)."""
        keys = []
        for o in ordered:
            ref = self._column(binder.bind(o.this))
            keys.append(SortKey(ref, not o.args.get("desc"), bool(o.args.get("nulls_first"))))
        return tuple(keys)

    def _resolve_named(self, node: exp.Window) -> exp.Window:
        alias = node.args.get("alias")
        if alias is None:
            return node
        base = self.named.get(alias.name.lower())
        if base is None:
            raise UserError(f"window '{alias.name}' is not defined (WINDOW {alias.name} AS ...)")
        merged = node.copy()
        merged.set("alias", None)
        if node.args.get("partition_by"):
            raise UserError(f"a window based on '{alias.name}' cannot add PARTITION BY")
        merged.set("partition_by", [p.copy() for p in base.args.get("partition_by") or []])
        has_order, has_spec = bool(node.args.get("order")), bool(node.args.get("spec"))
        if base.args.get("order") is not None:
            if has_order:
                raise UserError(f"a window based on '{alias.name}' cannot override its ORDER BY")
            merged.set("order", base.args["order"].copy())
        if base.args.get("spec") is not None:
            if has_order or has_spec:
                raise UserError(
                    f"window '{alias.name}' has a frame: a window based on it can add nothing"
                )
            merged.set("spec", base.args["spec"].copy())
        return merged

    def _column(self, e: Expr) -> ColumnRef:
        """A column holding ``e``: itself, or a computed column projected below."""
        if isinstance(e, ColumnRef):
            return e
        for name, existing in self.computed:
            if existing == e:
                return ColumnRef(name, e.type)
        name = self.names.fresh("window_arg")
        self.computed.append((name, e))
        return ColumnRef(name, e.type)

    def _call(
        self,
        func: exp.Expr,
        binder: ExpressionBinder,
        frame: WindowFrame,
        order: list[SortKey],
    ) -> WindowCall:
        label = written_call(func)
        kind = type(func)
        ordered = [v for v in func.args.values() if isinstance(v, exp.Order)]
        if ordered and not (kind in (exp.FirstValue, exp.LastValue) and func.this is ordered[0]):
            raise UnsupportedError(f"ORDER BY inside window function {label}")
        if kind in _RANKING:
            return WindowCall(_RANKING[kind], None, _ranking_type(_RANKING[kind]), frame)
        if isinstance(func, exp.Ntile):
            n = _positive_int(binder.bind(func.this) if func.this is not None else None, label)
            return WindowCall(WindowFunction.NTILE, None, pa.int64(), frame, offset=n)
        if kind in _VALUES:
            fn = _VALUES[kind]
            if func.this is None:
                raise UserError(f"{fn.value.upper()} needs an argument: {label}")
            if ordered:
                # first_value(x ORDER BY k): DuckDB's first(x ORDER BY k) over the frame.
                within = self._within(list(ordered[0].expressions), binder)
                arg = binder.bind(ordered[0].this)
                return WindowCall(fn, self._column(arg), arg.type, frame, within=within)
            arg = binder.bind(func.this)
            if fn in (WindowFunction.LAG, WindowFunction.LEAD):
                offset_node = func.args.get("offset")
                offset = _int(binder.bind(offset_node), label) if offset_node is not None else 1
                if offset < 0:
                    # As DuckDB: lag(x, -n) is lead(x, n), and lead(x, -n) lag(x, n).
                    offset = -offset
                    fn = WindowFunction.LEAD if fn == WindowFunction.LAG else WindowFunction.LAG
                default_node = func.args.get("default")
                default: Expr | None = None
                if default_node is not None:
                    unified, _ = t.unify([arg, binder.bind(default_node)], label)
                    arg, default = unified
                    if not isinstance(default, Literal):
                        default = self._column(default)
                return WindowCall(fn, self._column(arg), arg.type, frame, offset, default)
            if fn == WindowFunction.NTH_VALUE:
                offset_node = func.args.get("offset")
                n = _positive_int(binder.bind(offset_node) if offset_node else None, label)
                return WindowCall(fn, self._column(arg), arg.type, frame, offset=n)
            return WindowCall(fn, self._column(arg), arg.type, frame)
        if isinstance(func, exp.Anonymous):
            raise UnsupportedError(f"window function {as_written(func)}")
        raise UnsupportedError(f"window function {as_written(func)}")


#: The functions whose frames may EXCLUDE rows (the operator's prefix-sum, sparse-table
#: and value kernels); functions that read no frame ignore EXCLUDE, as DuckDB.
_EXCLUDING = frozenset(
    {
        WindowFunction.COUNT_STAR,
        WindowFunction.COUNT,
        WindowFunction.SUM,
        WindowFunction.AVG,
        WindowFunction.MIN,
        WindowFunction.MAX,
        WindowFunction.FIRST_VALUE,
        WindowFunction.LAST_VALUE,
        WindowFunction.NTH_VALUE,
    }
)


def _excludes(call: WindowCall) -> bool:
    """Whether the operator computes ``call`` over a frame with an EXCLUDE clause."""
    if call.fn not in FRAMED_FUNCTIONS and not call.over_frame:
        return True  # ranking, lag / lead: no frame to exclude from
    if call.over_frame or call.distinct:
        return call.fn in SPAN_FUNCTIONS  # the frames listed from their ranges
    return call.fn in _EXCLUDING and not call.within


def _filtered(node: exp.Filter) -> exp.Expr:
    """``agg(x [ORDER BY k]) FILTER (WHERE c)`` as ``agg(CASE WHEN c THEN x END [ORDER BY
    k])``, for the aggregates that skip NULLs."""
    order = node.this.this if isinstance(node.this.this, exp.Order) else None
    if order is None:
        return filtered_aggregate(node)
    bare = node.copy()
    bare.this.set("this", order.this.copy())
    agg = filtered_aggregate(bare)
    ordered = order.copy()
    ordered.set("this", agg.this)
    agg.set("this", ordered)
    return agg


def _ranking_type(fn: WindowFunction) -> pa.DataType:
    if fn in (WindowFunction.PERCENT_RANK, WindowFunction.CUME_DIST):
        return pa.float64()
    return pa.int64()


def _positive_int(e: Expr | None, label: str) -> int:
    if not (isinstance(e, Literal) and isinstance(e.value, int) and e.value > 0):
        raise UserError(f"{label}: the count must be a positive whole constant")
    return int(e.value)


def _int(e: Expr, label: str) -> int:
    if not (isinstance(e, Literal) and isinstance(e.value, int) and not isinstance(e.value, bool)):
        raise UnsupportedError(f"an offset that is not a whole constant: {label}")
    return int(e.value)


def _frame(spec: exp.WindowSpec | None, order: list[SortKey]) -> WindowFrame:
    if spec is None:
        return DEFAULT_ORDERED_FRAME if order else WHOLE_PARTITION
    kind = str(spec.args.get("kind", "")).upper()
    units = {"ROWS": FrameUnit.ROWS, "RANGE": FrameUnit.RANGE, "GROUPS": FrameUnit.GROUPS}
    if kind not in units:
        raise UnsupportedError(f"window frame {spec.sql(dialect='duckdb')}")
    unit = units[kind]
    start = _bound(spec.args.get("start"), spec.args.get("start_side"), unit, order, True)
    end_node = spec.args.get("end")
    end = (
        _bound(end_node, spec.args.get("end_side"), unit, order, False)
        if end_node is not None
        else FrameBound(BoundKind.CURRENT_ROW)
    )
    if start.kind == BoundKind.UNBOUNDED_FOLLOWING or end.kind == BoundKind.UNBOUNDED_PRECEDING:
        raise UserError(f"window frame {spec.sql()} is empty by definition")
    # As DuckDB: a frame may not end above where it starts by the kind of its bounds.
    if start.kind == BoundKind.FOLLOWING and end.kind in (
        BoundKind.PRECEDING,
        BoundKind.CURRENT_ROW,
    ):
        raise UserError(
            f"window frame {spec.sql()}: a frame starting after the current row cannot end before it"
        )
    if start.kind == BoundKind.CURRENT_ROW and end.kind == BoundKind.PRECEDING:
        raise UserError(
            f"window frame {spec.sql()}: a frame starting at the current row cannot end before it"
        )
    exclude_node = spec.args.get("exclude")
    exclude = FrameExclude.NO_OTHERS
    if exclude_node is not None:
        written_exclude = " ".join(exclude_node.name.upper().split())
        try:
            exclude = FrameExclude(written_exclude)
        except ValueError:
            raise UnsupportedError(f"window frame EXCLUDE {written_exclude}") from None
    return WindowFrame(unit, start, end, exclude)


def _bound(
    node: exp.Expr | str | None,
    side: str | None,
    unit: FrameUnit,
    order: list[SortKey],
    is_start: bool,
) -> FrameBound:
    text = node.upper() if isinstance(node, str) else None
    side_text = (side or "").upper()
    if text == "UNBOUNDED":
        if side_text == "FOLLOWING":
            return FrameBound(BoundKind.UNBOUNDED_FOLLOWING)
        return FrameBound(BoundKind.UNBOUNDED_PRECEDING)
    if text == "CURRENT ROW":
        return FrameBound(BoundKind.CURRENT_ROW)
    kind = BoundKind.FOLLOWING if side_text == "FOLLOWING" else BoundKind.PRECEDING
    offset = _offset(node, unit, order)
    return FrameBound(kind, offset)


def _offset(node: exp.Expr | str | None, unit: FrameUnit, order: list[SortKey]) -> int | Decimal:
    where = node.sql() if isinstance(node, exp.Expr) else str(node)
    if unit == FrameUnit.RANGE:
        if len(order) != 1:
            raise UserError(
                f"RANGE with an offset ({where}) needs exactly one ORDER BY key, got {len(order)}"
            )
        key_type = order[0].expr.type
        if isinstance(node, exp.Interval):
            if not pa.types.is_date(key_type):
                raise TypeMismatchError(
                    f"RANGE offset {where} needs a DATE ORDER BY key, got {sql_type_name(key_type)}"
                )
            unit_node = node.args.get("unit")
            unit_name = unit_node.name.upper() if unit_node is not None else ""
            if unit_name.rstrip("S") != "DAY":
                raise UnsupportedError(f"RANGE offset {where} (only days)")
            return _number(node.this, where, integral=True)
        if not (is_integer(key_type) or is_decimal(key_type) or is_float(key_type)):
            raise TypeMismatchError(
                f"RANGE offset {where} needs a numeric ORDER BY key, got {sql_type_name(key_type)}"
            )
        # A fractional offset over an integer key compares as a number (as DuckDB).
        return _number(node, where, integral=False)
    return _number(node, where, integral=True)


def _number(node: exp.Expr | str | None, where: str, integral: bool) -> int | Decimal:
    if isinstance(node, exp.Literal):
        try:
            value = Decimal(str(node.this))
        except ArithmeticError:
            value = Decimal(-1)
        if value >= 0 and (not integral or value == value.to_integral_value()):
            return int(value) if integral else value
    kind = "whole number" if integral else "number"
    raise UserError(f"window frame offset {where} must be a non-negative constant {kind}")
