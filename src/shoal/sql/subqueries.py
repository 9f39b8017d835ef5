"""Subqueries become joins: decorrelation at bind time.

    EXISTS (… WHERE inner.k = outer.k AND inner.x <> outer.x)  -> semi join, residual kept
    NOT EXISTS (…)                                              -> anti join
    x IN (SELECT y …)                                           -> semi join on x = y
    x NOT IN (SELECT y …)                                       -> null-aware anti join
    (SELECT agg(…) FROM … )              uncorrelated           -> left join to its single row
    (SELECT agg(v) FROM … WHERE inner.k = outer.k)  correlated  -> left join to
                  (SELECT k, agg(v) FROM … GROUP BY k) on k = outer.k   (COUNT -> coalesce 0)

EXISTS / IN as top-level AND-ed conjuncts of WHERE become semi / anti joins; elsewhere
(under OR, in SELECT) they become mark joins (sql/mark_joins.py). Scalar subqueries work
anywhere an expression does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from shoal.errors import UnknownColumnError, UnsupportedError, UserError
from shoal.expr.nodes import Case, ColumnRef, Expr, Literal, conjoin
from shoal.logical.plan import Join, LogicalPlan
from shoal.sql import typing as t
from shoal.sql.expressions import ExpressionBinder, contains_aggregate
from shoal.sql.mark_joins import exists_mark, in_mark
from shoal.sql.scope import Scope

if TYPE_CHECKING:
    from shoal.sql.binder import Binder


class PlanBuilder:
    """The plan of one SELECT under construction; subqueries join onto it."""

    def __init__(self, plan: LogicalPlan):
        self.plan = plan
        self._deferred: list[Join] | None = None

    def join(self, right: LogicalPlan, kind: str, condition: Expr | None, **flags: bool) -> None:
        if self._deferred is not None:
            # Left side filled in when applied (after the aggregation).
            self._deferred.append(Join(self.plan, right, kind, condition, **flags))
        else:
            self.plan = Join(self.plan, right, kind, condition, **flags)

    def defer_joins(self) -> None:
        self._deferred = []

    def apply_deferred(self) -> LogicalPlan:
        for j in self._deferred or []:
            self.plan = Join(
                self.plan, j.right, j.kind, j.condition, j.null_aware, j.null_equal, j.single_row
            )
        self._deferred = None
        return self.plan

    @property
    def deferred(self) -> bool:
        return self._deferred is not None


class SubqueryBinder:
    def __init__(self, binder: Binder, builder: PlanBuilder):
        self.binder = binder
        self.builder = builder

    # ------------------------------------------------------------ expressions

    def bind(self, node: exp.Expr, scope: Scope) -> Expr:
        """A subquery met inside an expression: only scalar subqueries fit here."""
        if isinstance(node, exp.Subquery):
            return self._scalar(node, scope)
        # EXISTS / IN as a value (under OR, in SELECT): a left join that marks rows.
        if isinstance(node, exp.Exists):
            return exists_mark(self, node, scope)
        assert isinstance(node, exp.In)
        return in_mark(self, node, scope)

    # ---------------------------------------------------------------- WHERE

    def try_semi_join(self, conj: exp.Expr, scope: Scope) -> bool:
        """Turn a WHERE conjunct that is [NOT] EXISTS / [NOT] IN (subquery) into a join."""
        negated = False
        node = conj
        while isinstance(node, exp.Not | exp.Paren):
            if isinstance(node, exp.Not):
                negated = not negated
            node = node.this
        if isinstance(node, exp.Exists):
            self._exists(_unwrap(node.this), scope, anti=negated)
            return True
        if isinstance(node, exp.In) and node.args.get("query") is not None:
            anti = negated != bool(node.args.get("negate"))
            self._in(node, scope, anti)
            return True
        return False

    def _exists(self, select: exp.Expr, scope: Scope, anti: bool) -> None:
        kind = "anti" if anti else "semi"
        if not isinstance(select, exp.Select) or any(
            select.args.get(k) for k in ("group", "having", "limit", "distinct")
        ):
            plan, _ = self._bind_uncorrelated(select, scope, "EXISTS")
            self.builder.join(plan, kind, None)
            return
        local, correlated = self._split(select, scope)
        inner = select.copy()
        inner.set("where", exp.Where(this=exp.and_(*local)) if local else None)
        inner_builder, inner_scope = self.binder.from_where(inner, None)
        condition = None
        if correlated:
            cond_binder = ExpressionBinder(Scope(inner_scope.columns, scope))
            condition = conjoin([cond_binder.bind(c) for c in correlated])
        self.builder.join(inner_builder.plan, kind, condition)

    def _in(self, node: exp.In, scope: Scope, anti: bool) -> None:
        query = _unwrap(node.args["query"])
        if isinstance(query, exp.Select) and query.args.get("from_") is not None:
            local, correlated = self._split(query, scope)
            if correlated:
                self._correlated_in(node, query, local, correlated, scope, anti)
                return
        plan, _ = self._bind_uncorrelated(query, scope, "IN (subquery)")
        if len(plan.schema) != 1:
            raise UserError(f"IN (subquery) needs one column, the subquery has {len(plan.schema)}")
        probe = ExpressionBinder(scope, subquery=self.bind).bind(node.this)
        column = plan.schema[0]
        condition = t.comparison("equal", probe, ColumnRef(column.name, column.type))
        self.builder.join(plan, "anti" if anti else "semi", condition, null_aware=anti)

    def _correlated_in(
        self,
        node: exp.In,
        select: exp.Select,
        local: list[exp.Expr],
        correlated: list[exp.Expr],
        scope: Scope,
        anti: bool,
    ) -> None:
        """x [NOT] IN (SELECT y … WHERE corr): a semi / anti join on corr AND x = y.

        NOT IN keeps SQL's NULL rules within each correlated group: a row is
        dropped when the group holds y = x, a NULL y, or when x is NULL and the
        group is not empty.
        """
        if any(select.args.get(k) for k in ("group", "having", "limit", "distinct")):
            raise UnsupportedError("correlated IN (subquery) with GROUP BY / HAVING / LIMIT")
        if len(select.expressions) != 1:
            raise UserError("IN (subquery) needs one column")
        inner = select.copy()
        inner.set("where", exp.Where(this=exp.and_(*local)) if local else None)
        inner_builder, inner_scope = self.binder.from_where(inner, None)
        item = select.expressions[0]
        item = item.this if isinstance(item, exp.Alias) else item
        value = ExpressionBinder(inner_scope).bind(item)
        probe = ExpressionBinder(scope, subquery=self.bind).bind(node.this)
        cond_binder = ExpressionBinder(Scope(inner_scope.columns, scope))
        parts = [cond_binder.bind(c) for c in correlated]
        match = t.comparison("equal", probe, value)
        if anti:
            nulls = [t.call("is_null", [e], pa.bool_()) for e in (probe, value)]
            match = t.boolean("or", [t.boolean("or", [match, nulls[0]]), nulls[1]])
        self.builder.join(inner_builder.plan, "anti" if anti else "semi", conjoin([*parts, match]))

    # --------------------------------------------------------------- scalar

    def _scalar(self, node: exp.Subquery, scope: Scope) -> Expr:
        select = _unwrap(node)
        if isinstance(select, exp.Select) and select.args.get("from_") is not None:
            local, correlated = self._split(select, scope)
            if correlated:
                return self._correlated_scalar(select, local, correlated, scope)
        plan, _ = self._bind_uncorrelated(select, scope, "scalar subquery")
        if len(plan.schema) != 1:
            raise UserError(f"a scalar subquery must return one column, not {len(plan.schema)}")
        column = plan.schema[0]
        self.builder.join(plan, "left", None, single_row=True)
        return ColumnRef(column.name, column.type)

    def _correlated_scalar(
        self, select: exp.Select, local: list[exp.Expr], correlated: list[exp.Expr], scope: Scope
    ) -> Expr:
        if self.builder.deferred:
            raise UnsupportedError("correlated subquery in SELECT or HAVING of an aggregate query")
        if any(select.args.get(k) for k in ("group", "having", "limit", "distinct", "order")):
            raise UnsupportedError("correlated scalar subquery with GROUP BY / HAVING / LIMIT")
        if len(select.expressions) != 1:
            raise UserError("a scalar subquery must return one column")
        value = select.expressions[0]
        value = value.this if isinstance(value, exp.Alias) else value
        if not contains_aggregate(value):
            raise UnsupportedError("correlated scalar subquery without an aggregate")
        inner_keys: list[exp.Expr] = []
        outer_keys: list[exp.Expr] = []
        inner_scope = self.binder._from(select, None).scope
        for conj in correlated:
            pair = _correlation_pair(conj, inner_scope)
            if pair is None:
                raise UnsupportedError(f"correlated scalar subquery condition {conj.sql()}")
            inner_keys.append(pair[0])
            outer_keys.append(pair[1])
        rewritten = select.copy()
        rewritten.set("where", exp.Where(this=exp.and_(*local)) if local else None)
        rewritten.set("group", exp.Group(expressions=[k.copy() for k in inner_keys]))
        rewritten.set(
            "expressions",
            [exp.alias_(k.copy(), f"corr_key_{i}") for i, k in enumerate(inner_keys)]
            + [exp.alias_(value.copy(), "corr_value")],
        )
        plan, _ = self._bind_uncorrelated(rewritten, scope, "correlated scalar subquery")
        fields = list(plan.schema)
        outer_binder = ExpressionBinder(scope, subquery=self.bind)
        condition = conjoin(
            [
                t.comparison("equal", outer_binder.bind(o), ColumnRef(f.name, f.type))
                for o, f in zip(outer_keys, fields[:-1], strict=True)
            ]
        )
        self.builder.join(plan, "left", condition)
        result: Expr = ColumnRef(fields[-1].name, fields[-1].type)
        # An outer row with no partner gets NULL from the left join, but the subquery
        # would have aggregated an empty group: COUNT(*) + 1 is 1 there, not NULL.
        empty = self._empty_group_value(value)
        if empty.value is not None:
            matched = t.call("is_not_null", [ColumnRef(fields[0].name, fields[0].type)], pa.bool_())
            result = Case(((matched, result),), t.coerce(empty, result.type), result.type)
        return result

    def _empty_group_value(self, value: exp.Expr) -> Literal:
        """``value`` computed over no rows: COUNT is 0, every other aggregate NULL."""

        def replace(node: exp.Expr) -> exp.Expr:
            if isinstance(node, exp.Count):
                return exp.Literal.number(0)
            if isinstance(node, exp.Sum | exp.Avg | exp.Min | exp.Max):
                return exp.Null()
            return node

        folded = ExpressionBinder(Scope([])).bind(value.copy().transform(replace))
        if not isinstance(folded, Literal):
            raise UnsupportedError(f"correlated scalar subquery value {value.sql()}")
        return folded

    # --------------------------------------------------------------- helpers

    def correlation_pair(self, conj: exp.Expr, inner: Scope) -> tuple[exp.Expr, exp.Expr] | None:
        """(inner side, outer side) of a correlation ``inner_expr = outer_expr``, else None."""
        return _correlation_pair(conj, inner)

    def _bind_uncorrelated(
        self, query: exp.Expr, scope: Scope, what: str
    ) -> tuple[LogicalPlan, list[str]]:
        try:
            return self.binder.bind_query(query, None)
        except UnknownColumnError as err:
            try:
                scope.resolve(err.name.split(".")[-1])
            except UnknownColumnError:
                raise err from None
            raise UnsupportedError(
                f"{what} referring to outer column '{err.name}' in this position"
            ) from None

    def _split(self, select: exp.Select, scope: Scope) -> tuple[list[exp.Expr], list[exp.Expr]]:
        """WHERE conjuncts of ``select``: (local ones, ones that refer to the outer query)."""
        where = select.args.get("where")
        if where is None:
            return [], []
        inner_scope = self.binder._from(select, None).scope
        local: list[exp.Expr] = []
        correlated: list[exp.Expr] = []
        for conj in _factor_or(ast_conjuncts(where.this)):
            (local if _is_local(conj, inner_scope) else correlated).append(conj)
        return local, correlated


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Subquery | exp.Paren):
        node = node.this
    return node


def ast_conjuncts(node: exp.Expr) -> list[exp.Expr]:
    """The AND-ed parts of a sqlglot condition."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return ast_conjuncts(node.left) + ast_conjuncts(node.right)
    return [node]


def _factor_or(conjuncts: list[exp.Expr]) -> list[exp.Expr]:
    """``(a AND b) OR (a AND c)`` as ``a AND (b OR c)``, so that a correlation every
    branch repeats (TPC-DS q41's ``i_manufact = i1.i_manufact``) becomes a conjunct."""
    out: list[exp.Expr] = []
    for conj in conjuncts:
        branches = _disjuncts(conj)
        if len(branches) < 2:
            out.append(conj)
            continue
        parts = [ast_conjuncts(b) for b in branches]
        texts = [{p.sql() for p in branch} for branch in parts]
        common = [p for p in parts[0] if all(p.sql() in other for other in texts[1:])]
        if not common:
            out.append(conj)
            continue
        shared = {p.sql() for p in common}
        rests = [[p for p in branch if p.sql() not in shared] for branch in parts]
        out += [p.copy() for p in common]
        if all(rests):
            out.append(exp.or_(*[exp.paren(exp.and_(*r), copy=True) for r in rests], copy=True))
    return out


def _disjuncts(node: exp.Expr) -> list[exp.Expr]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Or):
        return _disjuncts(node.left) + _disjuncts(node.right)
    return [node]


def _columns(node: exp.Expr) -> list[exp.Column]:
    """Column references of ``node``, not descending into nested subqueries."""
    out = []
    for n in node.walk(prune=lambda x: isinstance(x, exp.Subquery | exp.Select) and x is not node):
        if isinstance(n, exp.Column) and not isinstance(n.this, exp.Star):
            out.append(n)
    return out


def _resolves(col: exp.Column, scope: Scope) -> bool:
    try:
        Scope(scope.columns).resolve(col.name, col.table or None)
        return True
    except UnknownColumnError:
        return False


def _is_local(node: exp.Expr, inner: Scope) -> bool:
    return all(_resolves(c, inner) for c in _columns(node))


def _correlation_pair(conj: exp.Expr, inner: Scope) -> tuple[exp.Expr, exp.Expr] | None:
    """(inner side, outer side) of ``inner_expr = outer_expr``, else None."""
    if not isinstance(conj, exp.EQ):
        return None
    left, right = conj.left, conj.right
    left_local = bool(_columns(left)) and _is_local(left, inner)
    right_local = bool(_columns(right)) and _is_local(right, inner)
    left_outer = bool(_columns(left)) and not any(_resolves(c, inner) for c in _columns(left))
    right_outer = bool(_columns(right)) and not any(_resolves(c, inner) for c in _columns(right))
    if left_local and right_outer:
        return left, right
    if right_local and left_outer:
        return right, left
    return None
