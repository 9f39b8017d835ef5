"""GROUPING SETS, ROLLUP and CUBE (and GROUPING()) bound to ``Expand`` + ``Aggregate``.

``GROUP BY a, ROLLUP (b, c)`` groups by several key sets at once: (a, b, c), (a, b),
(a). The input is read once: ``Expand`` emits each row once per set, with the keys the
set does not group by set to NULL and the set's number in a hidden key (so two equal
sets stay two groups, as in DuckDB), and one ``Aggregate`` groups by all keys plus that
number. ``GROUPING(x, y)`` is constant per set (bit ``1`` for a key the set does not
group by, the first argument in the highest bit), so Expand emits it as a literal
column that the Aggregate also groups by.

Calls go one way: ``binder`` → this module; it uses ``ExpressionBinder`` only through the
binder it is handed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp

from shoal.errors import UnsupportedError, UserError
from shoal.expr.nodes import ColumnRef, Expr, Literal
from shoal.logical.plan import Aggregate, Expand, LogicalPlan
from shoal.sql.scope import NameGenerator

if TYPE_CHECKING:
    from shoal.sql.expressions import AggregateContext, ExpressionBinder

#: More sets than this is almost surely a mistake (CUBE of 13 keys is 8192 sets).
MAX_GROUPING_SETS = 4096


def has_grouping_sets(group: exp.Group | None) -> bool:
    if group is None:
        return False
    return any(
        isinstance(e, exp.Rollup | exp.Cube | exp.GroupingSets) for e in group.expressions
    ) or bool(group.args.get("rollup") or group.args.get("cube") or group.args.get("grouping_sets"))


def expand_group_by(group: exp.Group) -> tuple[list[exp.Expr], list[tuple[int, ...]]]:
    """The distinct key expressions of ``group`` and the sets, as positions in them."""
    keys: list[exp.Expr] = []
    texts: list[str] = []

    def position(node: exp.Expr) -> int:
        node = node.this if isinstance(node, exp.Paren) else node
        text = node.sql()
        if text not in texts:
            texts.append(text)
            keys.append(node)
        return texts.index(text)

    def tuple_items(node: exp.Expr) -> list[exp.Expr]:
        if isinstance(node, exp.Tuple):
            return list(node.expressions)
        if isinstance(node, exp.Paren):
            return [node.this]
        return [node]

    # Each GROUP BY item contributes a list of alternatives; the sets are the cross
    # product of those lists (each set the union of one alternative per item).
    factors: list[list[tuple[int, ...]]] = []
    items = list(group.expressions)
    for arg in ("grouping_sets", "cube", "rollup"):
        items += list(group.args.get(arg) or [])
    for item in items:
        if isinstance(item, exp.Rollup):
            parts = [tuple(position(x) for x in tuple_items(e)) for e in item.expressions]
            factors.append(
                [tuple(p for part in parts[:i] for p in part) for i in range(len(parts), -1, -1)]
            )
        elif isinstance(item, exp.Cube):
            parts = [tuple(position(x) for x in tuple_items(e)) for e in item.expressions]
            alternatives = []
            for mask in range(2 ** len(parts) - 1, -1, -1):
                chosen = [
                    p
                    for i, part in enumerate(parts)
                    if mask >> (len(parts) - 1 - i) & 1
                    for p in part
                ]
                alternatives.append(tuple(chosen))
            factors.append(alternatives)
        elif isinstance(item, exp.GroupingSets):
            alternatives = []
            for e in item.expressions:
                if isinstance(e, exp.Rollup | exp.Cube | exp.GroupingSets):
                    raise UnsupportedError(f"{e.key.upper()} inside GROUPING SETS: {e.sql()}")
                alternatives.append(tuple(position(x) for x in tuple_items(e)))
            factors.append(alternatives)
        else:
            factors.append([(position(item),)])
    sets: list[tuple[int, ...]] = []
    for combo in itertools.product(*factors):
        merged: list[int] = []
        for part in combo:
            merged += [p for p in part if p not in merged]
        sets.append(tuple(sorted(merged)))
        if len(sets) > MAX_GROUPING_SETS:
            raise UserError(f"GROUP BY makes more than {MAX_GROUPING_SETS} grouping sets")
    return keys, sets


@dataclass
class GroupingSets:
    """The grouping sets of one SELECT, and the GROUPING() calls met while binding it."""

    names: NameGenerator
    #: Per key node of ``expand_group_by``: its position in ``AggregateContext.keys``.
    key_positions: list[int] = field(default_factory=list)
    sets: list[tuple[int, ...]] = field(default_factory=list)
    #: GROUPING() calls: (positions in AggregateContext.keys, output name).
    calls: list[tuple[tuple[int, ...], str]] = field(default_factory=list)

    def bind_grouping(
        self, node: exp.Grouping, binder: ExpressionBinder, agg: AggregateContext
    ) -> Expr:
        """``GROUPING(x, ...)``: its column (constant 0 under a plain GROUP BY)."""
        args = list(node.expressions) or ([node.this] if node.this is not None else [])
        if not args:
            raise UserError("GROUPING() needs at least one argument")
        positions: list[int] = []
        pre = binder.pre_aggregate()
        for a in args:
            ref = agg.key_ref(pre.bind(a))
            if ref is None:
                raise UserError(f"GROUPING({a.sql()}): its argument must be a GROUP BY key")
            positions.append([n for n, _ in agg.keys].index(ref.name))
        if not self.sets:
            return Literal(0, pa.int64())
        for existing, name in self.calls:
            if existing == tuple(positions):
                return ColumnRef(name, pa.int64())
        name = self.names.fresh("grouping")
        self.calls.append((tuple(positions), name))
        return ColumnRef(name, pa.int64())

    def aggregate(self, plan: LogicalPlan, agg: AggregateContext) -> LogicalPlan:
        """``Aggregate(Expand(plan))`` grouping by every set at once."""
        key_sets = [frozenset(self.key_positions[i] for i in s) for s in self.sets]
        set_name = self.names.fresh("grouping_set")
        expand_names = [self.names.fresh(f"{name}_set") for name, _ in agg.keys]
        passthrough = tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema)
        projections = []
        for number, chosen in enumerate(key_sets):
            columns: list[tuple[str, Expr]] = []
            for i, ((_, key), name) in enumerate(zip(agg.keys, expand_names, strict=True)):
                columns.append((name, key if i in chosen else Literal(None, key.type)))
            for positions, name in self.calls:
                value = 0
                for p in positions:
                    value = value * 2 + (0 if p in chosen else 1)
                columns.append((name, Literal(value, pa.int64())))
            columns.append((set_name, Literal(number, pa.int64())))
            projections.append(tuple(columns) + passthrough)
        expand = Expand(plan, tuple(projections))
        keys = [
            (name, ColumnRef(ename, key.type))
            for (name, key), ename in zip(agg.keys, expand_names, strict=True)
        ]
        keys += [(name, ColumnRef(name, pa.int64())) for _, name in self.calls]
        keys.append((set_name, ColumnRef(set_name, pa.int64())))
        always: tuple[object, ...] | None = None
        for number, chosen in enumerate(key_sets):
            if not chosen:
                # The grand total has a row even over no input rows.
                grouping_values = [
                    int("".join("1" for _ in positions) or "0", 2) for positions, _ in self.calls
                ]
                always = (None,) * len(agg.keys) + tuple(grouping_values) + (number,)
                break
        return Aggregate(expand, tuple(keys), tuple(agg.aggregates), always)
