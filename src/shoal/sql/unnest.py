"""``unnest(list)`` in a SELECT list: one output row per element.

The binder hands the select items to :func:`take_unnests` before binding them: an item
that is ``unnest(e)`` (optionally aliased) is replaced by ``e`` and its position kept.
After the select list's ``Project``, :func:`apply_unnests` puts an ``Unnest`` node on
the plan that turns that list column into its elements, so DISTINCT, ORDER BY and
LIMIT see the unnested rows (as in DuckDB). An empty or NULL list gives no row. One
unnest per SELECT; ``unnest`` inside another expression is an ``UnsupportedError``
naming it as written (the expression binder has no handler for it).

``unnest(e)`` in FROM (:func:`unnest_relation`) is the same node over what is left of
it: ``FROM unnest([1, 2, 3])`` over one row, and the lateral ``FROM t, unnest(t.l)``
over ``t``'s rows, with ``e`` projected beside ``t``'s columns (each row of ``t`` once
per element; rows with an empty or NULL list drop out, as in DuckDB's inner form).
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from shoal.errors import TypeMismatchError, UnsupportedError, UserError
from shoal.expr.nodes import ColumnRef, Expr
from shoal.logical.plan import LogicalPlan, Project, Unnest
from shoal.sql.scope import NameGenerator, ScopeColumn
from shoal.sql.source_text import as_written, written
from shoal.types import sql_type_name


def take_unnests(
    items: list[tuple[str, exp.Expr]],
) -> tuple[list[tuple[str, exp.Expr]], int | None]:
    """The items with ``unnest(e)`` replaced by ``e``, and the position of that item."""
    found = [i for i, (_, n) in enumerate(items) if isinstance(n, exp.Explode)]
    if not found:
        return items, None
    if len(found) > 1:
        second = items[found[1]][1]
        where = written(second) or "unnest"
        raise UnsupportedError(f"several unnest calls in one SELECT: {where}")
    i = found[0]
    name, node = items[i]
    if node.expressions:
        # recursive := true, max_depth := n: not taken, and never silently ignored.
        raise UnsupportedError(f"UNNEST with options: {as_written(node)}")
    out = list(items)
    out[i] = (name, node.this)
    return out, i


def apply_unnests(
    plan: LogicalPlan, exprs: list[tuple[str, Expr]], position: int | None
) -> LogicalPlan:
    """``plan`` (the select list's Project) with the unnested column made one row per
    element; ``exprs`` is updated to the element's type."""
    if position is None:
        return plan
    name, bound = exprs[position]
    if pa.types.is_null(bound.type):
        raise TypeMismatchError("UNNEST of NULL: cast it to a list type")
    if not pa.types.is_list(bound.type):
        raise TypeMismatchError(f"UNNEST needs a list, got {sql_type_name(bound.type)}")
    exprs[position] = (name, ColumnRef(name, bound.type.value_type))
    return Unnest(plan, name)


def unnest_relation(
    plan: LogicalPlan, node: exp.Unnest, bound: Expr, names: NameGenerator
) -> tuple[LogicalPlan, ScopeColumn]:
    """``plan`` with ``bound`` (``node``'s list, bound over ``plan``'s scope) added as a
    column and unnested, and the scope column naming its elements (``unnest``, or the
    alias's column: ``unnest(l) AS u(x)``)."""
    if pa.types.is_null(bound.type):
        raise TypeMismatchError("UNNEST of NULL: cast it to a list type")
    if not pa.types.is_list(bound.type):
        raise TypeMismatchError(f"UNNEST needs a list, got {sql_type_name(bound.type)}")
    alias = node.args.get("alias")
    qualifier = alias.name.lower() if alias is not None and alias.name else None
    columns = alias.columns if alias is not None else []
    if len(columns) > 1:
        raise UserError(f"UNNEST of one list gives one column: {as_written(node)}")
    shown = columns[0].name if columns else "unnest"
    name = names.fresh("unnest")
    passthrough = tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema)
    plan = Unnest(Project(plan, passthrough + ((name, bound),)), name)
    return plan, ScopeColumn(qualifier, shown, name, bound.type.value_type)


def check_unnest_source(node: exp.Unnest) -> exp.Expr:
    """The one list ``unnest(...)`` in FROM reads."""
    if node.args.get("offset"):
        raise UnsupportedError(f"UNNEST ... WITH OFFSET / ORDINALITY: {as_written(node)}")
    if len(node.expressions) != 1:
        raise UnsupportedError(f"UNNEST of several lists: {as_written(node)}")
    return node.expressions[0]
