"""EXISTS and IN (subquery) as values (under OR, in SELECT): left joins that mark rows.

A semi join can only filter; where the subquery's answer is a value the outer row
keeps, it is joined as a *mark*:

    EXISTS (SELECT … WHERE inner.k = outer.k AND local)
        -> LEFT JOIN (SELECT k, TRUE AS mark … WHERE local GROUP BY k) ON k = outer.k
           value: mark IS NOT NULL
    x IN (SELECT y …)                                        (uncorrelated)
        -> LEFT JOIN (SELECT DISTINCT y, TRUE AS mark …) ON x = y
           LEFT JOIN (SELECT count(*) n, count(y) n_y …)    (one row)
           value: TRUE when marked; else NULL when the subquery has rows and x or
                  some y is NULL; else FALSE (SQL's three-valued IN)

The subquery side is grouped on its keys, so an outer row meets at most one partner
and no row is repeated. EXISTS correlated by anything but ``inner = outer`` equalities,
and correlated IN as a value, are ``UnsupportedError``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from shoal.errors import UnsupportedError, UserError
from shoal.expr.nodes import Case, ColumnRef, Expr, Literal, conjoin
from shoal.logical.plan import AggCall, Aggregate, Limit, Project
from shoal.sql import typing as t
from shoal.sql.expressions import ExpressionBinder
from shoal.sql.scope import Scope

if TYPE_CHECKING:
    from shoal.sql.subqueries import SubqueryBinder


def exists_mark(sub: SubqueryBinder, node: exp.Exists, scope: Scope) -> Expr:
    select = _unwrap(node.this)
    names = sub.binder.names
    simple = isinstance(select, exp.Select) and not any(
        select.args.get(k) for k in ("group", "having", "limit", "distinct")
    )
    local: list[exp.Expr] = []
    correlated: list[exp.Expr] = []
    if simple:
        assert isinstance(select, exp.Select)
        local, correlated = sub._split(select, scope)
    if not correlated:
        plan, _ = sub._bind_uncorrelated(select, scope, "EXISTS")
        mark = names.fresh("exists_mark")
        one = Limit(Project(plan, ((mark, Literal(True, pa.bool_())),)), 1)
        sub.builder.join(one, "left", None, single_row=True)
        return t.call("is_not_null", [ColumnRef(mark, pa.bool_())], pa.bool_())
    if sub.builder.deferred:
        raise UnsupportedError("correlated EXISTS in SELECT or HAVING of an aggregate query")
    assert isinstance(select, exp.Select)
    inner_scope = sub.binder._from(select, None).scope
    inner_keys: list[exp.Expr] = []
    outer_keys: list[exp.Expr] = []
    for conj in correlated:
        pair = sub.correlation_pair(conj, inner_scope)
        if pair is None:
            raise UnsupportedError(f"EXISTS as a value correlated by {conj.sql()}")
        inner_keys.append(pair[0])
        outer_keys.append(pair[1])
    rewritten = select.copy()
    rewritten.set("where", exp.Where(this=exp.and_(*local)) if local else None)
    rewritten.set("group", exp.Group(expressions=[k.copy() for k in inner_keys]))
    rewritten.set(
        "expressions",
        [exp.alias_(k.copy(), f"mark_key_{i}") for i, k in enumerate(inner_keys)],
    )
    rewritten.set("order", None)
    plan, _ = sub._bind_uncorrelated(rewritten, scope, "EXISTS")
    mark = names.fresh("exists_mark")
    keyed = Project(
        plan,
        tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema)
        + ((mark, Literal(True, pa.bool_())),),
    )
    outer = ExpressionBinder(scope, subquery=sub.bind)
    condition = conjoin(
        [
            t.comparison("equal", outer.bind(o), ColumnRef(f.name, f.type))
            for o, f in zip(outer_keys, plan.schema, strict=True)
        ]
    )
    sub.builder.join(keyed, "left", condition)
    return t.call("is_not_null", [ColumnRef(mark, pa.bool_())], pa.bool_())


def in_mark(sub: SubqueryBinder, node: exp.In, scope: Scope) -> Expr:
    query = _unwrap(node.args["query"])
    if isinstance(query, exp.Select) and query.args.get("from_") is not None:
        _, correlated = sub._split(query, scope)
        if correlated:
            raise UnsupportedError("correlated IN (subquery) as a value (under OR or in SELECT)")
    plan, _ = sub._bind_uncorrelated(query, scope, "IN (subquery)")
    if len(plan.schema) != 1:
        raise UserError(f"IN (subquery) needs one column, the subquery has {len(plan.schema)}")
    names = sub.binder.names
    column = plan.schema[0]
    value = ColumnRef(column.name, column.type)
    probe = ExpressionBinder(scope, subquery=sub.bind).bind(node.this)
    key, mark = names.fresh("mark_key"), names.fresh("in_mark")
    distinct = Aggregate(plan, ((key, value),), ())
    keyed = Project(
        distinct, ((key, ColumnRef(key, column.type)), (mark, Literal(True, pa.bool_())))
    )
    sub.builder.join(keyed, "left", t.comparison("equal", probe, ColumnRef(key, column.type)))
    rows, valued = names.fresh("in_rows"), names.fresh("in_values")
    counts = Aggregate(
        plan,
        (),
        (
            (rows, AggCall("count_star", None, pa.int64())),
            (valued, AggCall("count", value, pa.int64())),
        ),
    )
    sub.builder.join(counts, "left", None, single_row=True)
    n, n_valued = ColumnRef(rows, pa.int64()), ColumnRef(valued, pa.int64())
    marked = t.call("is_not_null", [ColumnRef(mark, pa.bool_())], pa.bool_())
    empty = t.comparison("equal", n, Literal(0, pa.int64()))
    unknown = t.boolean(
        "or",
        [t.call("is_null", [probe], pa.bool_()), t.comparison("less", n_valued, n)],
    )
    result: Expr = Case(
        (
            (marked, Literal(True, pa.bool_())),
            (empty, Literal(False, pa.bool_())),
            (unknown, Literal(None, pa.bool_())),
        ),
        Literal(False, pa.bool_()),
        pa.bool_(),
    )
    if node.args.get("negate"):
        result = t.boolean("not", [result])
    return result


def _unwrap(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Subquery | exp.Paren):
        node = node.this
    return node
