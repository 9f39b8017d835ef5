"""``unnest(list)`` in a SELECT list: one output row per element.

The binder hands the select items to :func:`take_unnests` before binding them: an item
that is ``unnest(e)`` (optionally aliased) is replaced by ``e`` and its position kept.
After the select list's ``Project``, :func:`apply_unnests` puts an ``Unnest`` node on
the plan that turns that list column into its elements, so DISTINCT, ORDER BY and
LIMIT see the unnested rows (as in DuckDB). An empty or NULL list gives no row. One
unnest per SELECT; ``unnest`` inside another expression is an ``UnsupportedError``
naming it as written (the expression binder has no handler for it).
"""

from __future__ import annotations

import pyarrow as pa
from sqlglot import exp

from shoal.errors import TypeMismatchError, UnsupportedError
from shoal.expr.nodes import ColumnRef, Expr
from shoal.logical.plan import LogicalPlan, Unnest
from shoal.sql.source_text import written
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
