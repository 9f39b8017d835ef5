"""Binding sqlglot expressions to typed shoal expressions within a scope.

``ExpressionBinder`` resolves names against a ``Scope`` and types every node.
When an ``AggregateContext`` is given, it binds *after* aggregation: group-by
expressions and aggregate calls become references to the Aggregate's output.
"""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
from sqlglot import exp

from shoal.errors import TypeMismatchError, UnsupportedError, UserError
from shoal.expr.nodes import Case, Cast, ColumnRef, Expr, InList, Literal
from shoal.logical.plan import AggCall, SortKey, WindowFunction
from shoal.sql import quantiles
from shoal.sql import typing as t
from shoal.sql.functions import FUNCTION_HANDLERS, NAMED_HANDLERS
from shoal.sql.like import arrow_pattern
from shoal.sql.parameters import parameter_literal
from shoal.sql.quantiles import QuantileRequest
from shoal.sql.scope import NameGenerator, Scope
from shoal.sql.source_text import as_written, written, written_call
from shoal.sql.variance import Pairwise, Spread, pairwise, spread
from shoal.types import (
    is_decimal,
    is_integer,
    is_string,
    parse_sql_type,
    sql_type_name,
    sum_type,
)

AGGREGATE_NODES: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Min: "min",
    exp.Max: "max",
    exp.Stddev: "stddev_samp",
    exp.StddevSamp: "stddev_samp",
    exp.StddevPop: "stddev_pop",
    exp.Variance: "var_samp",
    exp.VariancePop: "var_pop",
    exp.LogicalAnd: "bool_and",
    exp.LogicalOr: "bool_or",
    exp.CountIf: "count_if",
    exp.Median: "quantile",
    exp.PercentileCont: "quantile",
    exp.PercentileDisc: "quantile",
    exp.Quantile: "quantile",
    exp.GroupConcat: "string_agg",
    exp.Mode: "mode",
    exp.ArrayAgg: "array_agg",
    exp.ArgMin: "arg_min",
    exp.ArgMax: "arg_max",
    exp.ApproxDistinct: "approx_count_distinct",
    exp.CovarPop: "covar_pop",
    exp.CovarSamp: "covar_samp",
    exp.Corr: "corr",
}


def is_aggregate(node: exp.Expr) -> bool:
    return type(node) in AGGREGATE_NODES


def contains_aggregate(node: exp.Expr) -> bool:
    # Aggregates inside a subquery belong to the subquery; a window function's own
    # aggregate (SUM(x) OVER ...) belongs to the window, but its arguments and keys
    # may hold real aggregates (SUM(SUM(x)) OVER ...).
    def prune(x: exp.Expr) -> bool:
        return isinstance(x, exp.Window) or (
            isinstance(x, exp.Subquery | exp.Select) and x is not node
        )

    for n in node.walk(prune=prune):
        if isinstance(n, exp.Window):
            func = n.this.this if isinstance(n.this, exp.RespectNulls | exp.IgnoreNulls) else n.this
            if isinstance(func, exp.Filter):  # agg(x) FILTER (WHERE c) OVER (...)
                func = filtered_aggregate(func)
            # f(q) WITHIN GROUP (ORDER BY x) OVER (...): f is the window's own.
            inner = [func.expression] if isinstance(func, exp.WithinGroup) else []
            if isinstance(func, exp.WithinGroup):
                func = func.this
            parts = [*func.args.values(), *inner, *(n.args.get("partition_by") or [])]
            if n.args.get("order") is not None:
                parts.append(n.args["order"])
            if any(isinstance(p, exp.Expr) and contains_aggregate(p) for p in parts):
                return True
            continue
        if is_aggregate(n) or isinstance(n, exp.Grouping):
            return True
    return False


def contains_subquery(node: exp.Expr) -> bool:
    return any(isinstance(n, exp.Subquery | exp.Exists) for n in node.walk())


@dataclass
class AggregateContext:
    """Group keys and the aggregate calls found so far, with their output names."""

    names: NameGenerator
    keys: list[tuple[str, Expr]] = field(default_factory=list)
    aggregates: list[tuple[str, AggCall]] = field(default_factory=list)
    #: Binds GROUPING(...) (provided by sql/grouping.py).
    grouping: Callable[[exp.Grouping, ExpressionBinder], Expr] | None = None
    #: median / quantiles, computed by windows below the Aggregate (sql/quantiles.py).
    quantiles: list[QuantileRequest] = field(default_factory=list)

    def key_ref(self, e: Expr) -> ColumnRef | None:
        for name, k in self.keys:
            if k == e:
                return ColumnRef(name, k.type)
        return None

    def add_aggregate(self, call: AggCall, label: str) -> ColumnRef:
        for name, existing in self.aggregates:
            if existing == call:
                return ColumnRef(name, call.type)
        name = self.names.fresh(label)
        self.aggregates.append((name, call))
        return ColumnRef(name, call.type)


# Subquery binding is provided by the query binder (it needs plans, not just expressions).
SubqueryHook = Callable[[exp.Expr, Scope], Expr]
# Window binding is provided by sql/windows.py; it binds the window's parts with the
# ExpressionBinder it is handed and returns a reference to the window's result column.
WindowHook = Callable[[exp.Window, "ExpressionBinder"], Expr]


class ExpressionBinder:
    def __init__(
        self,
        scope: Scope,
        agg: AggregateContext | None = None,
        subquery: SubqueryHook | None = None,
        window: WindowHook | None = None,
    ):
        self.scope = scope
        self.agg = agg
        self.subquery = subquery
        self.window = window

    def pre_aggregate(self) -> ExpressionBinder:
        return ExpressionBinder(self.scope, None, self.subquery)

    # ------------------------------------------------------------------ entry

    def bind(self, node: exp.Expr) -> Expr:
        if isinstance(node, exp.WithinGroup):
            node = _within_group(node)
        if isinstance(node, exp.Window):
            if self.window is None:
                raise UnsupportedError(f"window function here: {node.sql()[:60]}")
            return self.window(node, self)
        if isinstance(node, exp.Grouping):
            if self.agg is None or self.agg.grouping is None:
                raise UserError(f"{node.sql()} is only allowed in a query with GROUP BY")
            return self.agg.grouping(node, self)
        if self.agg is not None and self.window is not None and contains_window(node):
            # Bind structurally: the pre-aggregate form cannot hold a window.
            return self._bind(node)
        if self.agg is not None and contains_subquery(node):
            # Bind structurally: trying the pre-aggregate form first would bind
            # (and join) the subquery twice.
            if is_aggregate(node):
                return self._aggregate(node)
            return self._bind(node)
        if self.agg is not None:
            if is_aggregate(node) or isinstance(node, exp.Filter) and is_aggregate(node.this):
                return self._aggregate(node)
            if not contains_aggregate(node):
                pre = self.pre_aggregate().bind(node)
                ref = self.agg.key_ref(pre)
                if ref is not None:
                    return ref
                if not pre.columns():
                    return pre
                if isinstance(node, exp.Column):
                    raise UserError(
                        f"column '{node.sql()}' must appear in the GROUP BY clause "
                        "or be used in an aggregate function"
                    )
        elif is_aggregate(node):
            raise UserError(f"aggregate function {node.sql()} is not allowed here")
        return self._bind(node)

    # ---------------------------------------------------------------- dispatch

    def _bind(self, node: exp.Expr) -> Expr:
        handler = _HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        if isinstance(node, exp.Subquery | exp.Exists) or (
            isinstance(node, exp.In) and node.args.get("query") is not None
        ):
            if self.subquery is None:
                raise UnsupportedError(f"subquery here: {node.sql()[:60]}")
            return self.subquery(node, self.scope)
        function = FUNCTION_HANDLERS.get(type(node))
        if isinstance(node, exp.Anonymous):
            function = NAMED_HANDLERS.get(str(node.name).lower())
        if function is not None:
            return function(self, node)
        where = written(node)
        if isinstance(node, exp.Anonymous):
            raise UnsupportedError(f"function {where or node.name + '()'}")
        if isinstance(node, exp.Func) and where is not None:
            raise UnsupportedError(f"function {where}: {node.sql(dialect='duckdb')[:60]}")
        if isinstance(node, exp.Func):
            raise UnsupportedError(f"function {node.sql(dialect='duckdb')[:60]}")
        raise UnsupportedError(f"{as_written(node)[:120]}")

    def _column(self, node: exp.Column) -> Expr:
        if isinstance(node.this, exp.Star):
            raise UnsupportedError("'*' in an expression")
        return self.scope.resolve(node.name, node.table or None)

    def _literal(self, node: exp.Literal) -> Expr:
        if node.is_string:
            return Literal(node.this, pa.string())
        text = node.this
        if any(ch in text for ch in "eE"):
            return Literal(float(text), pa.float64())
        if "." in text:
            return t.literal_from_python(decimal.Decimal(text))
        return t.literal_from_python(int(text))

    def _parameter(self, node: exp.Placeholder) -> Expr:
        return parameter_literal(node)

    def _null(self, node: exp.Null) -> Expr:
        return Literal(None, pa.null())

    def _boolean(self, node: exp.Boolean) -> Expr:
        return Literal(bool(node.this), pa.bool_())

    def _paren(self, node: exp.Paren) -> Expr:
        return self.bind(node.this)

    def _cast(self, node: exp.Cast) -> Expr:
        target = _data_type(node.to)
        arg = self.bind(node.this)
        if pa.types.is_null(arg.type):
            return Literal(None, target)
        if isinstance(arg, Literal) and is_string(arg.type):
            return t.literal_as(arg, target)
        return t.fold(Cast(arg, target) if arg.type != target else arg)

    def _array(self, node: exp.Array) -> Expr:
        """A list ``[1, 2, 3]`` / ``[a, b * 2]``: elements of one type (unified); a
        constant when they all are."""
        elements = [self.bind(e) for e in node.expressions]
        if not elements:
            return Literal((), pa.list_(pa.int32()))
        unified, element_type = t.unify(elements, "list")
        if pa.types.is_null(element_type):
            element_type = pa.int32()
        if not all(isinstance(e, Literal) for e in elements):
            coerced = [t.coerce(e, element_type) for e in unified]
            return t.call("list_value", coerced, pa.list_(element_type))
        values = []
        for e in unified:
            e = t.fold(e)
            if not isinstance(e, Literal):
                raise UnsupportedError(f"list element {e}")
            values.append(e.value)
        return Literal(tuple(values), pa.list_(element_type))

    def _try_cast(self, node: exp.TryCast) -> Expr:
        """TRY_CAST: NULL where the CAST fails."""
        target = _data_type(node.to)
        arg = self.bind(node.this)
        if pa.types.is_null(arg.type):
            return Literal(None, target)
        if arg.type == target:
            return arg
        # A constant is folded through the same kernel (so ' 12 ' and '2.5' read alike).
        return t.call("try_cast", [arg], target)

    # ------------------------------------------------------------ arithmetic

    def _arith(self, node: exp.Binary) -> Expr:
        fn, op = _ARITH[type(node)]
        if isinstance(node.right, exp.Interval) or isinstance(node.left, exp.Interval):
            return self._interval_arith(node, fn)
        left, right = self.bind(node.left), self.bind(node.right)
        if pa.types.is_date(left.type) or pa.types.is_date(right.type):
            return self._date_arith(fn, left, right)
        return t.arithmetic(fn, op, left, right)

    def _int_div(self, node: exp.IntDiv) -> Expr:
        left, right = self.bind(node.left), self.bind(node.right)
        if not (is_integer(left.type) and is_integer(right.type)):
            raise TypeMismatchError("'//' needs integers")
        return t.call("int_divide", [left, right], pa.int64())

    def _date_arith(self, fn: str, left: Expr, right: Expr) -> Expr:
        if fn == "add" and is_integer(left.type) and pa.types.is_date(right.type):
            left, right = right, left
        if fn in ("add", "subtract") and pa.types.is_date(left.type) and is_integer(right.type):
            days = right if fn == "add" else t.call("negate", [right], right.type)
            return t.call("date_add_days", [left, days], pa.date32())
        if fn == "subtract" and pa.types.is_date(left.type) and pa.types.is_date(right.type):
            as_int = [t.coerce(t.coerce(x, pa.date32()), pa.int32()) for x in (left, right)]
            return t.call(
                "subtract",
                [t.coerce(as_int[0], pa.int64()), t.coerce(as_int[1], pa.int64())],
                pa.int64(),
            )
        raise TypeMismatchError(
            f"cannot apply '{fn}' to {sql_type_name(left.type)} and {sql_type_name(right.type)}"
        )

    def _interval_arith(self, node: exp.Binary, fn: str) -> Expr:
        date_node: exp.Expr
        interval: exp.Expr
        if isinstance(node.left, exp.Interval):
            if fn != "add":
                raise TypeMismatchError("an INTERVAL can only be added to a date")
            date_node, interval = node.right, node.left
        else:
            date_node, interval = node.left, node.right
        assert isinstance(interval, exp.Interval)
        date = self.bind(date_node)
        if is_string(date.type) and isinstance(date, Literal):
            date = t.literal_as(date, pa.date32())
        amount, unit = _interval(interval)
        if fn == "subtract":
            amount = -amount
        if pa.types.is_timestamp(date.type):
            # TIMESTAMP ± INTERVAL: fixed units as a duration, months on the calendar.
            seconds = {"day": 86400, "hour": 3600, "minute": 60, "second": 1}.get(unit)
            if seconds is not None:
                return t.call("ts_add_seconds", [date], date.type, (amount * seconds,))
            months = amount * (12 if unit == "year" else 1)
            return t.call("ts_add_months", [date], date.type, (months,))
        if not pa.types.is_date(date.type):
            raise TypeMismatchError(
                f"INTERVAL arithmetic needs a DATE or TIMESTAMP, got {sql_type_name(date.type)} ({date})"
            )
        if unit in ("hour", "minute", "second"):
            raise UnsupportedError(
                f"DATE ± INTERVAL in {unit.upper()}S (cast the date to TIMESTAMP)"
            )
        if unit == "day":
            return t.call("date_add_days", [date, Literal(amount, pa.int32())], pa.date32())
        months = amount * (12 if unit == "year" else 1)
        return t.call("date_add_months", [date], pa.date32(), (months,))

    def _neg(self, node: exp.Neg) -> Expr:
        arg = self.bind(node.this)
        t.require_numeric(arg, "unary minus")
        if isinstance(arg, Literal) and arg.value is not None and _fits(-arg.value, arg.type):
            return Literal(-arg.value, arg.type)
        # -(-9223372036854775808) does not fit a BIGINT: the run-time negation reports it.
        return t.call("negate", [arg], arg.type)

    # ------------------------------------------------------------ predicates

    def _compare(self, node: exp.Binary) -> Expr:
        return t.comparison(_COMPARE[type(node)], self.bind(node.left), self.bind(node.right))

    def _and(self, node: exp.And) -> Expr:
        return self._connective("and", node)

    def _or(self, node: exp.Or) -> Expr:
        return self._connective("or", node)

    def _connective(self, fn: str, node: exp.Connector) -> Expr:
        """A chain ``a AND b AND …`` bound as a balanced tree.

        AND and OR are associative (Kleene logic included), so a 5,000-term chain
        becomes a tree 13 levels deep instead of 5,000: nothing downstream has to
        recurse through it.
        """
        terms = _chain(node, type(node))
        bound = [self.bind(term) for term in terms]
        while len(bound) > 1:
            paired = [
                t.boolean(fn, bound[i : i + 2]) if i + 1 < len(bound) else bound[i]
                for i in range(0, len(bound), 2)
            ]
            bound = paired
        return bound[0]

    def _not(self, node: exp.Not) -> Expr:
        inner = node.this
        if isinstance(inner, exp.In) and inner.args.get("query") is None:
            return self._in(inner, negated=True)
        return t.boolean("not", [self.bind(inner)])

    def _is(self, node: exp.Is) -> Expr:
        arg = self.bind(node.this)
        target = node.expression
        if isinstance(target, exp.Null):
            return t.call("is_null", [arg], pa.bool_())
        if isinstance(target, exp.Boolean):
            # x IS TRUE: never NULL.
            eq = t.comparison("equal", arg, Literal(bool(target.this), pa.bool_()))
            return t.call("coalesce", [eq, Literal(False, pa.bool_())], pa.bool_())
        raise UnsupportedError(f"IS {target.sql()}")

    def _in(self, node: exp.In, negated: bool = False) -> Expr:
        negated = negated != bool(node.args.get("negate"))
        if node.args.get("query") is not None:
            if self.subquery is None:
                raise UnsupportedError("IN (subquery)")
            bound = self.subquery(node, self.scope)
            return t.boolean("not", [bound]) if negated else bound
        arg = self.bind(node.this)
        items = [self.bind(v) for v in node.expressions]
        if all(isinstance(i, Literal) for i in items):
            unified, target = t.unify([arg, *items], "IN list")
            values = tuple(v for v in unified[1:] if isinstance(v, Literal))
            return InList(unified[0], values, negated)
        # Non-constant lists: an OR of equalities.
        out: Expr | None = None
        for item in items:
            eq = t.comparison("equal", arg, item)
            out = eq if out is None else t.boolean("or", [out, eq])
        assert out is not None
        return t.boolean("not", [out]) if negated else out

    def _between(self, node: exp.Between) -> Expr:
        arg = self.bind(node.this)
        low = t.comparison("greater_equal", arg, self.bind(node.args["low"]))
        high = t.comparison("less_equal", arg, self.bind(node.args["high"]))
        both = t.boolean("and", [low, high])
        return t.boolean("not", [both]) if node.args.get("negate") else both

    def _like(self, node: exp.Like | exp.ILike, escape: str | None = None) -> Expr:
        arg = t.require_string(self.bind(node.this), "LIKE")
        pattern = self.bind(node.expression)
        if not isinstance(pattern, Literal) or not (
            is_string(pattern.type) or pa.types.is_null(pattern.type)
        ):
            raise UnsupportedError("LIKE with a non-constant pattern")
        if pattern.value is None:
            return Literal(None, pa.bool_())
        negated = bool(node.args.get("negate"))
        # The call holds the pattern as pyarrow reads it (see sql/like.py).
        arrow = arrow_pattern(pattern.value, escape)
        return t.call("like", [arg], pa.bool_(), (arrow, isinstance(node, exp.ILike), negated))

    def _escape(self, node: exp.Escape) -> Expr:
        like = node.this
        if not isinstance(like, exp.Like | exp.ILike):
            raise UnsupportedError(f"ESCAPE after {like.key.upper()}")
        escape = self.bind(node.expression)
        if not (isinstance(escape, Literal) and is_string(escape.type)):
            raise UnsupportedError("ESCAPE with a non-constant escape string")
        return self._like(like, str(escape.value))

    # ---------------------------------------------------------- conditionals

    def _case(self, node: exp.Case) -> Expr:
        operand = self.bind(node.this) if node.this is not None else None
        conds: list[Expr] = []
        values: list[Expr] = []
        for when in node.args.get("ifs") or []:
            cond = self.bind(when.this)
            if operand is not None:
                cond = t.comparison("equal", operand, cond)
            elif not (pa.types.is_boolean(cond.type) or pa.types.is_null(cond.type)):
                raise TypeMismatchError(f"CASE WHEN needs a BOOLEAN condition, got {cond}")
            conds.append(cond)
            values.append(self.bind(when.args["true"]))
        default_node = node.args.get("default")
        default = self.bind(default_node) if default_node is not None else Literal(None, pa.null())
        unified, target = t.unify([*values, default], "CASE")
        whens = tuple(zip(conds, unified[:-1], strict=True))
        return t.fold(Case(whens, unified[-1], target))

    def _if(self, node: exp.If) -> Expr:
        cond = self.bind(node.this)
        values = [self.bind(node.args["true"])]
        false = node.args.get("false")
        values.append(self.bind(false) if false is not None else Literal(None, pa.null()))
        unified, target = t.unify(values, "IF")
        return t.fold(Case(((cond, unified[0]),), unified[1], target))

    def _coalesce(self, node: exp.Coalesce) -> Expr:
        args = [self.bind(node.this), *[self.bind(e) for e in node.expressions]]
        unified, target = t.unify(args, "COALESCE")
        return t.call("coalesce", unified, target)

    def _nullif(self, node: exp.Nullif) -> Expr:
        a, b = self.bind(node.this), self.bind(node.expression)
        eq = t.comparison("equal", a, b)
        return t.fold(Case(((eq, Literal(None, a.type)),), a, a.type))

    # --------------------------------------------------------------- strings

    def _concat(self, node: exp.DPipe) -> Expr:
        args = [self.bind(node.left), self.bind(node.right)]
        args = [t.coerce(a, pa.string()) for a in args]
        return t.call("concat", args, pa.string())

    def _concat_function(self, node: exp.Concat) -> Expr:
        # concat(): NULL arguments count as empty strings (DuckDB), unlike ||.
        args = [t.coerce(self.bind(a), pa.string()) for a in node.expressions]
        if not args:
            raise UserError("concat() needs at least one argument")
        parts = [t.call("coalesce", [a, Literal("", pa.string())], pa.string()) for a in args]
        return t.call("concat", parts, pa.string())

    def _concat_ws(self, node: exp.ConcatWs) -> Expr:
        args = [t.coerce(self.bind(a), pa.string()) for a in node.expressions]
        if len(args) < 2:
            raise UserError("concat_ws() needs a separator and at least one argument")
        return t.call("concat_ws", args, pa.string())

    def _substring(self, node: exp.Substring) -> Expr:
        arg = t.require_string(self.bind(node.this), "SUBSTRING")
        if node.args.get("start") is None:
            raise UserError("SUBSTRING needs a start position: SUBSTRING(s, start[, length])")
        start = t.require_integer_literal(self.bind(node.args["start"]), "SUBSTRING start")
        length_node = node.args.get("length")
        length = (
            t.require_integer_literal(self.bind(length_node), "SUBSTRING length")
            if length_node is not None
            else None
        )
        return t.call("substring", [arg], pa.string(), (start, length))

    def _trim(self, node: exp.Trim) -> Expr:
        arg = t.require_string(self.bind(node.this), "TRIM")
        position = str(node.args.get("position") or "BOTH").upper()
        side = {"LEADING": "left", "TRAILING": "right"}.get(position, "both")
        chars_node = node.args.get("expression")
        chars = None
        if chars_node is not None:
            bound = self.bind(chars_node)
            if not (isinstance(bound, Literal) and isinstance(bound.value, str)):
                raise UnsupportedError("TRIM with non-constant characters")
            chars = bound.value
        return t.call("trim", [arg], pa.string(), (side, chars))

    # --------------------------------------------------------------- numbers

    def _abs(self, node: exp.Abs) -> Expr:
        arg = self.bind(node.this)
        t.require_numeric(arg, "ABS")
        return t.call("abs", [arg], arg.type)

    def _round(self, node: exp.Round) -> Expr:
        arg = self.bind(node.this)
        t.require_numeric(arg, "ROUND")
        digits_node = node.args.get("decimals")
        digits = (
            t.require_integer_literal(self.bind(digits_node), "ROUND digits") if digits_node else 0
        )
        out = arg.type
        if is_decimal(out):
            out = pa.decimal128(out.precision, max(0, min(out.scale, digits)))
        return t.call("round", [arg], out, (digits,))

    # ----------------------------------------------------------------- dates

    def _extract(self, node: exp.Extract) -> Expr:
        part = node.this.name.lower() if node.this is not None else ""
        part = {"years": "year", "months": "month", "days": "day", "dayofweek": "dow"}.get(
            part, part
        )
        if part not in ("year", "month", "day", "quarter", "dow", "doy", "week"):
            raise UnsupportedError(f"EXTRACT({part.upper()})")
        arg = self.bind(node.expression)
        if is_string(arg.type) and isinstance(arg, Literal):
            arg = t.literal_as(arg, pa.date32())
        if not pa.types.is_date(arg.type) and not pa.types.is_timestamp(arg.type):
            raise TypeMismatchError(f"EXTRACT needs a DATE, got {sql_type_name(arg.type)}")
        return t.call("extract", [arg], pa.int64(), (part,))

    # ------------------------------------------------------------ aggregates

    def _string_agg(self, node: exp.Expr, label: str) -> Expr:
        assert self.agg is not None
        value, ordered = aggregate_parts(node)
        value, distinct = _distinct_value(value, node)
        if value is None or contains_aggregate(value):
            raise UserError(f"STRING_AGG needs a plain value: {node.sql()}")
        pre = self.pre_aggregate()
        separator = string_agg_separator(node, pre)
        order = tuple(
            SortKey(pre.bind(o.this), not o.args.get("desc"), bool(o.args.get("nulls_first")))
            for o in ordered
        )
        wanted = quantiles.string_agg_request(
            pre.bind(value), separator, order, self.agg.names, self.agg.quantiles, distinct
        )
        return self.agg.add_aggregate(quantiles.aggregate_call(wanted), label)

    def _plain_argument(self, node: exp.Expr | None, label: str) -> Expr:
        """An aggregate's argument, bound before aggregation (no DISTINCT, no nesting)."""
        if isinstance(node, exp.Distinct):
            outer = node.parent
            while isinstance(outer, exp.Order):
                outer = outer.parent
            shown = as_written(outer) if isinstance(outer, exp.Expr) else label
            raise UnsupportedError(f"DISTINCT in {shown}")
        if node is None or isinstance(node, exp.Star):
            raise UserError(f"{label} needs an argument")
        if contains_aggregate(node):
            raise UserError(f"aggregate function calls cannot be nested: {label}")
        arg = self.pre_aggregate().bind(node)
        return Literal(None, pa.int32()) if pa.types.is_null(arg.type) else arg

    def _holistic(self, node: exp.Expr, fn: str, label: str) -> Expr:
        """mode / array_agg / arg_min / arg_max: a window below the Aggregate
        (sql/quantiles.py), partitioned by the group keys."""
        assert self.agg is not None
        if node.args.get("count") is not None and fn not in ("arg_min", "arg_max"):
            raise UnsupportedError(f"{as_written(node)} (a count of values)")
        if fn == "mode":
            value, ordered = aggregate_parts(node)
            arg = self._plain_argument(value, label)
            within = self._within_order(ordered)
            wanted = quantiles.holistic_request(
                WindowFunction.MODE,
                arg,
                arg.type,
                within or (SortKey(arg),),
                self.agg.names,
                self.agg.quantiles,
                # Sorted by its ORDER BY, the framed mode's ties go to the value first in it.
                over_frame=bool(within),
            )
        elif fn == "array_agg":
            value, ordered = aggregate_parts(node)
            value, distinct = _distinct_value(value, node)
            arg = self._plain_argument(value, label)
            order = self._within_order(ordered)
            wanted = quantiles.holistic_request(
                WindowFunction.ARRAY_AGG,
                arg,
                pa.list_(arg.type),
                order,
                self.agg.names,
                self.agg.quantiles,
                distinct,
            )
        else:
            # arg_min(a, b): a at the smallest b, among rows where neither is NULL; an
            # ORDER BY (which sqlglot hangs on b) breaks ties on b.
            by_node, ordered = node.expression, []
            if isinstance(by_node, exp.Order):
                by_node, ordered = by_node.this, list(by_node.expressions)
            picked = self._plain_argument(node.this, label)
            key = self._plain_argument(by_node, label)
            arg = Case(
                ((t.call("is_not_null", [key], pa.bool_()), picked),),
                Literal(None, picked.type),
                picked.type,
            )
            by = Case(
                ((t.call("is_not_null", [picked], pa.bool_()), key),),
                Literal(None, key.type),
                key.type,
            )
            count_node = node.args.get("count")
            if count_node is not None:
                if ordered or isinstance(count_node, exp.Order):
                    raise UnsupportedError(f"ORDER BY inside {written_call(node)}")
                wanted = quantiles.arg_extreme_n_request(
                    WindowFunction.ARG_MIN_N if fn == "arg_min" else WindowFunction.ARG_MAX_N,
                    arg,
                    by,
                    quantiles.arg_count(self.pre_aggregate().bind(count_node), node),
                    self.agg.names,
                    self.agg.quantiles,
                )
                return self.agg.add_aggregate(quantiles.aggregate_call(wanted), label)
            wanted = quantiles.holistic_request(
                WindowFunction.FIRST_VALUE,
                arg,
                picked.type,
                (SortKey(by, fn == "arg_min", False), *self._within_order(ordered)),
                self.agg.names,
                self.agg.quantiles,
            )
        return self.agg.add_aggregate(quantiles.aggregate_call(wanted), label)

    def _within_order(self, ordered: list[exp.Ordered]) -> tuple[SortKey, ...]:
        """An aggregate's own ORDER BY keys, bound before aggregation (NULLS LAST unless
        written, as DuckDB)."""
        pre = self.pre_aggregate()
        return tuple(
            SortKey(pre.bind(o.this), not o.args.get("desc"), bool(o.args.get("nulls_first")))
            for o in ordered
        )

    def _pairwise(self, node: exp.Expr, kind: Pairwise) -> Expr:
        assert self.agg is not None
        label = node.sql(dialect="duckdb").lower()
        if node.args.get("null_on_zero_variance"):
            raise UnsupportedError(f"{label}")
        y = self._plain_argument(node.this, label)
        x = self._plain_argument(node.expression, label)
        agg = self.agg

        def plain(name: str, e: Expr) -> Expr:
            typ = pa.int64() if name == "count" else sum_type(e.type)
            return agg.add_aggregate(AggCall(name, e, typ), f"{name}({e})")

        return pairwise(kind, y, x, plain)

    def _aggregate(self, node: exp.Expr) -> Expr:
        assert self.agg is not None
        label = node.sql(dialect="duckdb").lower()
        if isinstance(node, exp.Filter):
            return self._aggregate(filtered_aggregate(node))
        fn = AGGREGATE_NODES[type(node)]
        if fn == "string_agg":
            return self._string_agg(node, label)
        if fn in ("mode", "array_agg", "arg_min", "arg_max"):
            return self._holistic(node, fn, label)
        if fn in _PAIRWISE:
            return self._pairwise(node, Pairwise(fn))
        if fn == "quantile":
            if isinstance(node.this, exp.Distinct):
                raise UnsupportedError(f"DISTINCT in {as_written(node)}")
            if contains_aggregate(node.this):
                raise UserError(f"aggregate function calls cannot be nested: {label}")
            arg = self.pre_aggregate().bind(node.this)
            wanted = quantiles.request(node, arg, self.agg.names, self.agg.quantiles)
            return self.agg.add_aggregate(quantiles.aggregate_call(wanted), label)
        if fn in ("min", "max") and node.args.get("count") is not None:
            # min(x, n) / max(x, n): the list of the group's n smallest (largest) x.
            value = self._plain_argument(node.this, label)
            wanted = quantiles.arg_extreme_n_request(
                WindowFunction.ARG_MIN_N if fn == "min" else WindowFunction.ARG_MAX_N,
                value,
                value,
                quantiles.arg_count(self.pre_aggregate().bind(node.args["count"]), node),
                self.agg.names,
                self.agg.quantiles,
            )
            return self.agg.add_aggregate(quantiles.aggregate_call(wanted), label)
        extra = [k for k, v in node.args.items() if k not in ("this", "big_int") and v]
        if extra:
            raise UserError(f"{fn.upper()} takes one argument: {node.sql()}")
        inner = node.this
        distinct = False
        if isinstance(inner, exp.Distinct):
            distinct = True
            if len(inner.expressions) != 1:
                raise UnsupportedError(f"DISTINCT with several arguments: {as_written(node)}")
            inner = inner.expressions[0]
        pre = self.pre_aggregate()
        if fn == "count" and (inner is None or isinstance(inner, exp.Star)):
            call = AggCall("count_star", None, pa.int64())
            return self.agg.add_aggregate(call, "count_star")
        if inner is None:
            raise UserError(f"{fn.upper()} needs an argument")
        if contains_aggregate(inner):
            raise UserError(f"aggregate function calls cannot be nested: {label}")
        arg = pre.bind(inner)
        if pa.types.is_null(arg.type):
            arg = Literal(None, pa.int32())
        if fn in _SPREADS:
            if distinct:
                raise UnsupportedError(f"DISTINCT in {as_written(node)}")
            agg = self.agg

            def plain(name: str, x: Expr) -> Expr:
                typ = pa.int64() if name == "count" else sum_type(x.type)
                return agg.add_aggregate(AggCall(name, x, typ), f"{name}({x})")

            return spread(Spread(fn), arg, plain)
        if fn == "approx_count_distinct":
            if distinct or node.args.get("accuracy") is not None:
                raise UnsupportedError(f"{as_written(node)} (DISTINCT or an accuracy argument)")
            call = AggCall("approx_count_distinct", arg, pa.int64())
            return self.agg.add_aggregate(call, label)
        if fn in ("bool_and", "bool_or", "count_if"):
            if not (pa.types.is_boolean(arg.type) or pa.types.is_null(arg.type)):
                raise TypeMismatchError(f"{fn.upper()} needs a BOOLEAN, got {arg}")
            if distinct:
                raise UnsupportedError(f"DISTINCT in {as_written(node)}")
            if fn == "count_if":
                # The rows where the condition holds; NULL when it is NULL on every row
                # (DuckDB).
                one = Case(((arg, Literal(1, pa.int32())),), Literal(None, pa.int32()), pa.int32())
                holds = self.agg.add_aggregate(AggCall("count", one, pa.int64()), label)
                known = self.agg.add_aggregate(AggCall("count", arg, pa.int64()), f"count({arg})")
                none = t.comparison("equal", known, Literal(0, pa.int64()))
                return Case(((none, Literal(None, pa.int64())),), holds, pa.int64())
            # Over booleans false < true: AND is the minimum, OR the maximum.
            minmax = "min" if fn == "bool_and" else "max"
            return self.agg.add_aggregate(AggCall(minmax, arg, pa.bool_()), label)
        if fn == "count":
            call = AggCall("count", arg, pa.int64(), distinct)
        elif fn == "sum":
            call = AggCall("sum", arg, sum_type(arg.type), distinct)
        elif fn == "avg":
            t.require_numeric(arg, "AVG")
            call = AggCall("avg", arg, pa.float64(), distinct)
        else:
            call = AggCall(fn, arg, arg.type, distinct)
        return self.agg.add_aggregate(call, label)


_SPREADS = frozenset(s.value for s in Spread)
_PAIRWISE = frozenset(p.value for p in Pairwise)


def contains_window(node: exp.Expr) -> bool:
    """Whether ``node`` holds a window function outside any subquery."""
    prune = lambda x: isinstance(x, exp.Subquery | exp.Select) and x is not node  # noqa: E731
    return any(isinstance(n, exp.Window) for n in node.walk(prune=prune))


def aggregate_parts(node: exp.Expr) -> tuple[exp.Expr, list[exp.Ordered]]:
    """An aggregate's value and its ORDER BY items (sqlglot nests them as an Order)."""
    inner = node.this
    if isinstance(inner, exp.Order):
        return inner.this, list(inner.expressions)
    return inner, []


def _distinct_value(value: exp.Expr, node: exp.Expr) -> tuple[exp.Expr, bool]:
    """``value`` without its DISTINCT, and whether it had one (of one argument)."""
    if not isinstance(value, exp.Distinct):
        return value, False
    if len(value.expressions) != 1:
        raise UnsupportedError(f"DISTINCT with several arguments: {as_written(node)}")
    return value.expressions[0], True


def string_agg_separator(node: exp.Expr, binder: ExpressionBinder) -> str:
    """string_agg's separator: a constant string, ',' when not given."""
    separator_node = node.args.get("separator")
    if separator_node is None:
        return ","
    bound = binder.bind(separator_node)
    if not (isinstance(bound, Literal) and isinstance(bound.value, str)):
        raise UnsupportedError(f"STRING_AGG with a non-constant separator: {as_written(node)}")
    return bound.value


def _within_group(node: exp.WithinGroup) -> exp.Expr:
    """``percentile_cont(q) WITHIN GROUP (ORDER BY x)`` as ``quantile_cont(x, q)``."""
    func = node.this
    order = node.expression
    keys = list(order.expressions) if isinstance(order, exp.Order) else []
    if not isinstance(func, exp.PercentileCont | exp.PercentileDisc) or len(keys) != 1:
        raise UnsupportedError(as_written(node))
    if keys[0].args.get("desc"):
        raise UnsupportedError(f"{as_written(func)} WITHIN GROUP (ORDER BY … DESC)")
    rewritten = type(func)(this=keys[0].this.copy(), expression=func.this.copy())
    rewritten.meta.update(func.meta)
    return rewritten


def filtered_aggregate(node: exp.Filter) -> exp.Expr:
    """``agg(x) FILTER (WHERE c)`` as ``agg(CASE WHEN c THEN x END)`` (aggregates skip NULLs)."""
    agg = node.this.copy()
    condition = node.expression.this if isinstance(node.expression, exp.Where) else node.expression
    inner = agg.this
    distinct = isinstance(inner, exp.Distinct)
    value = inner.expressions[0] if distinct else inner
    if value is None or isinstance(value, exp.Star):
        value = exp.Literal.number(1)  # COUNT(*) FILTER: count the rows where c holds
    guarded = exp.Case(ifs=[exp.If(this=condition.copy(), true=value.copy())])
    agg.set("this", exp.Distinct(expressions=[guarded]) if distinct else guarded)
    return agg


def _string_fn(
    fn: str, out: pa.DataType | None = None
) -> Callable[[ExpressionBinder, exp.Expr], Expr]:
    def run(self: ExpressionBinder, node: exp.Expr) -> Expr:
        arg = t.require_string(self.bind(node.this), fn.upper())
        return t.call(fn, [arg], out or pa.string())

    return run


def _date_fn(part: str) -> Callable[[ExpressionBinder, exp.Expr], Expr]:
    def run(self: ExpressionBinder, node: exp.Expr) -> Expr:
        arg = self.bind(node.this)
        if not (pa.types.is_date(arg.type) or pa.types.is_timestamp(arg.type)):
            raise TypeMismatchError(f"{part.upper()}() needs a DATE, got {sql_type_name(arg.type)}")
        return t.call("extract", [arg], pa.int64(), (part,))

    return run


def _data_type(node: exp.DataType) -> pa.DataType:
    if node.this == exp.DataType.Type.ARRAY:
        inner = node.expressions
        if len(inner) != 1 or not isinstance(inner[0], exp.DataType):
            raise UnsupportedError(f"type {node.sql(dialect='duckdb')}")
        return pa.list_(_data_type(inner[0]))
    name = node.this.name if hasattr(node.this, "name") else str(node.this)
    params: list[int] = []
    for p in node.expressions:
        value = p.this if isinstance(p, exp.DataTypeParam) else p
        try:
            params.append(int(str(value.name if hasattr(value, "name") else value)))
        except ValueError:
            raise UnsupportedError(f"type {node.sql()}") from None
    name = {"DOUBLE": "DOUBLE", "DECIMAL": "DECIMAL", "TEXT": "VARCHAR"}.get(name, name)
    try:
        return parse_sql_type(name.replace("_", " "), params)
    except TypeMismatchError:
        raise UnsupportedError(f"type {node.sql()}") from None


def _interval(node: exp.Interval) -> tuple[int, str]:
    """(amount, unit) for a day/month/year interval literal."""
    value = node.this
    unit_node = node.args.get("unit")
    unit = unit_node.name.lower() if unit_node is not None else ""
    text = value.name if value is not None else ""
    if not unit and " " in text.strip():
        text, unit = text.split(None, 1)
    unit = unit.lower().rstrip("s")
    try:
        amount = int(text)
    except ValueError:
        raise UnsupportedError(f"INTERVAL {node.sql()}") from None
    if unit not in ("day", "month", "year", "hour", "minute", "second"):
        raise UnsupportedError(f"INTERVAL unit {unit.upper() or '?'}")
    return amount, unit


def _fits(value: object, type_: pa.DataType) -> bool:
    """Whether an integer literal's value is inside its type's range."""
    if not (pa.types.is_integer(type_) and isinstance(value, int)):
        return True
    bits = type_.bit_width
    return -(1 << (bits - 1)) <= value < (1 << (bits - 1))


def _chain(node: exp.Expr, kind: type[exp.Expr]) -> list[exp.Expr]:
    """The operands of a chain of ``kind`` nodes, left to right, found without recursion."""
    terms: list[exp.Expr] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if type(current) is kind and isinstance(current, exp.Binary):
            stack.append(current.right)
            stack.append(current.left)
        else:
            terms.append(current)
    return terms


_ARITH: dict[type[exp.Expr], tuple[str, str]] = {
    exp.Add: ("add", "+"),
    exp.Sub: ("subtract", "-"),
    exp.Mul: ("multiply", "*"),
    exp.Div: ("divide", "/"),
    exp.Mod: ("modulo", "%"),
}

_COMPARE: dict[type[exp.Expr], str] = {
    exp.EQ: "equal",
    exp.NEQ: "not_equal",
    exp.LT: "less",
    exp.LTE: "less_equal",
    exp.GT: "greater",
    exp.GTE: "greater_equal",
}

B = ExpressionBinder
_HANDLERS: dict[type[exp.Expr], Callable[[ExpressionBinder, exp.Expr], Expr]] = {
    exp.Column: B._column,  # type: ignore[dict-item]
    exp.Literal: B._literal,  # type: ignore[dict-item]
    exp.Null: B._null,  # type: ignore[dict-item]
    exp.Placeholder: B._parameter,  # type: ignore[dict-item]
    exp.Boolean: B._boolean,  # type: ignore[dict-item]
    exp.Paren: B._paren,  # type: ignore[dict-item]
    exp.Cast: B._cast,  # type: ignore[dict-item]
    exp.TryCast: B._try_cast,  # type: ignore[dict-item]
    exp.Array: B._array,  # type: ignore[dict-item]
    exp.IntDiv: B._int_div,  # type: ignore[dict-item]
    exp.Neg: B._neg,  # type: ignore[dict-item]
    exp.And: B._and,  # type: ignore[dict-item]
    exp.Or: B._or,  # type: ignore[dict-item]
    exp.Not: B._not,  # type: ignore[dict-item]
    exp.Is: B._is,  # type: ignore[dict-item]
    exp.In: B._in,  # type: ignore[dict-item]
    exp.Between: B._between,  # type: ignore[dict-item]
    exp.Like: B._like,  # type: ignore[dict-item]
    exp.Escape: B._escape,  # type: ignore[dict-item]
    exp.ILike: B._like,  # type: ignore[dict-item]
    exp.Case: B._case,  # type: ignore[dict-item]
    exp.If: B._if,  # type: ignore[dict-item]
    exp.Coalesce: B._coalesce,  # type: ignore[dict-item]
    exp.Nullif: B._nullif,  # type: ignore[dict-item]
    exp.DPipe: B._concat,  # type: ignore[dict-item]
    exp.Concat: B._concat_function,  # type: ignore[dict-item]
    exp.ConcatWs: B._concat_ws,  # type: ignore[dict-item]
    exp.Substring: B._substring,  # type: ignore[dict-item]
    exp.Abs: B._abs,  # type: ignore[dict-item]
    exp.Round: B._round,  # type: ignore[dict-item]
    exp.Extract: B._extract,  # type: ignore[dict-item]
    exp.Upper: _string_fn("upper"),  # type: ignore[arg-type,dict-item]
    exp.Lower: _string_fn("lower"),  # type: ignore[arg-type,dict-item]
    exp.Trim: B._trim,  # type: ignore[dict-item]
    exp.Year: _date_fn("year"),  # type: ignore[arg-type,dict-item]
    exp.Month: _date_fn("month"),  # type: ignore[arg-type,dict-item]
    exp.Day: _date_fn("day"),  # type: ignore[arg-type,dict-item]
}
for _node in _ARITH:
    _HANDLERS[_node] = B._arith  # type: ignore[assignment]
for _node in _COMPARE:
    _HANDLERS[_node] = B._compare  # type: ignore[assignment]

__all__ = [
    "AggregateContext",
    "ExpressionBinder",
    "contains_aggregate",
    "contains_window",
    "is_aggregate",
]
