"""Predicate pushdown: move filter conjuncts as close to the scan as they can go.

A conjunct moves through Project (by substituting the projected expressions),
through Sort, through UnionAll (into every input), below Aggregate when it only
touches group keys, and finally into ``Scan.filters``, where the scan evaluates
it batch by batch and uses it to skip row groups.
"""

from __future__ import annotations

import datetime
from dataclasses import replace

import pyarrow as pa

from shoal.errors import ShoalError
from shoal.expr.evaluate import evaluate
from shoal.expr.nodes import Call, ColumnRef, Expr, Literal, conjoin, conjuncts, rename_columns
from shoal.logical.plan import (
    Aggregate,
    Filter,
    Join,
    LogicalPlan,
    Project,
    Scan,
    Sort,
    UnionAll,
    Window,
)
from shoal.optimizer.statistics import estimate_rows, integer_range, origin_column


def push_down_predicates(plan: LogicalPlan) -> LogicalPlan:
    return _push(plan, [])


def _split(predicate: Expr) -> list[Expr]:
    """Conjuncts of ``predicate``, with two rewrites of OR-ed conjunctions.

    Conjuncts common to every branch are factored out — ``(a AND b) OR (a AND c)``
    is ``a AND (b OR c)`` — so a join key hidden in every branch (TPC-H Q19)
    still becomes a hash-join key. And where every branch constrains the same
    single column, the OR of those constraints is implied and added as a
    conjunct of its own (the OR itself stays): it reaches that column's scan
    (``n1.n_name = 'FRANCE' ... OR n1.n_name = 'GERMANY' ...`` filters nation
    before the joins in Q7).
    """
    out: list[Expr] = []
    for c in conjuncts(predicate):
        if isinstance(c, Call) and c.fn == "or":
            branches = [conjuncts(b) for b in _disjuncts(c)]
            common = [x for x in branches[0] if all(x in b for b in branches[1:])]
            if common:
                rest = [conjoin([x for x in b if x not in common]) for b in branches]
                out.extend(common)
                if all(r is not None for r in rest):
                    out.append(_disjoin([r for r in rest if r is not None]))
                continue
            out.append(c)
            out.extend(_implied_by_branches(branches))
            continue
        out.append(c)
    # Pushdown runs more than once: keep each conjunct once.
    unique: list[Expr] = []
    for c in out:
        if c not in unique:
            unique.append(c)
    return unique


def _implied_by_branches(branches: list[list[Expr]]) -> list[Expr]:
    """For each column every branch constrains alone: OR of those constraints."""
    per_branch: list[dict[str, list[Expr]]] = []
    for branch in branches:
        by_column: dict[str, list[Expr]] = {}
        for x in branch:
            cols = x.columns()
            if len(cols) == 1:
                by_column.setdefault(next(iter(cols)), []).append(x)
        per_branch.append(by_column)
    shared = set(per_branch[0])
    for by_column in per_branch[1:]:
        shared &= set(by_column)
    implied = []
    for col in sorted(shared):
        parts = [conjoin(b[col]) for b in per_branch]
        implied.append(_disjoin([p for p in parts if p is not None]))
    return implied


def _disjuncts(e: Expr) -> list[Expr]:
    if isinstance(e, Call) and e.fn == "or":
        return _disjuncts(e.args[0]) + _disjuncts(e.args[1])
    return [e]


def _disjoin(parts: list[Expr]) -> Expr:
    out = parts[0]
    for p in parts[1:]:
        out = Call("or", (out, p), pa.bool_())
    return out


def _push(plan: LogicalPlan, preds: list[Expr]) -> LogicalPlan:
    """``plan`` with ``preds`` (conjuncts over its output) applied as low as possible."""
    if isinstance(plan, Filter):
        return _push(plan.input, preds + _split(plan.predicate))
    if isinstance(plan, Scan):
        fresh = [p for p in dict.fromkeys(preds) if p not in plan.filters]
        if not fresh:
            return plan
        return replace(plan, filters=plan.filters + tuple(fresh))
    if isinstance(plan, Project):
        mapping = {name: e for name, e in plan.exprs}
        substituted = [fold_constants(rename_columns(p, mapping)) for p in preds]
        # A constant projected into a conjunct may decide it: a UNION ALL branch's
        # ``'s' AS sale_type`` makes ``sale_type = 'c'`` false there (TPC-DS q4).
        kept = [p for p in substituted if not (isinstance(p, Literal) and p.value is True)]
        return replace(plan, input=_push(plan.input, kept))
    if isinstance(plan, Sort):
        return replace(plan, input=_push(plan.input, preds))
    if isinstance(plan, UnionAll):
        inputs = []
        for child in plan.inputs:
            child_map: dict[str, Expr] = {
                out.name: ColumnRef(f.name, f.type)
                for out, f in zip(plan.schema, child.schema, strict=True)
            }
            inputs.append(_push(child, [rename_columns(p, child_map) for p in preds]))
        return replace(plan, inputs=tuple(inputs))
    if isinstance(plan, Aggregate):
        key_map = {name: e for name, e in plan.keys}
        below = [p for p in preds if p.columns() <= set(key_map) and plan.keys]
        above = [p for p in preds if not any(p is b for b in below)]
        child = _push(plan.input, [rename_columns(p, key_map) for p in below])
        return _wrap(replace(plan, input=child), above)
    if isinstance(plan, Window):
        # A filter on the PARTITION BY keys keeps or drops whole partitions: the
        # windows of the rows it keeps are unchanged, so it may run first.
        keys = set(plan.partition_by)
        below = [p for p in preds if keys and p.columns() <= keys]
        above = [p for p in preds if not any(p is x for x in below)]
        return _wrap(replace(plan, input=_push(plan.input, below)), above)
    if isinstance(plan, Join):
        return _push_join(plan, preds)
    # Anything else (Limit, Values): filters stay above it; push into children fresh.
    new_children = tuple(_push(c, []) for c in plan.children())
    return _wrap(plan.with_children(new_children) if new_children else plan, preds)


def _push_join(plan: Join, preds: list[Expr]) -> LogicalPlan:
    """Route conjuncts from above and from ON to the sides that may filter early.

    Inner/cross: anything touching one side goes to that side; the rest is the
    join condition. Outer joins never filter their preserved side from ON, and
    conjuncts above them stay above unless they touch only the preserved side.
    """
    sunk = _sink_scalar_join(plan, preds)
    if sunk is not None:
        return _push(sunk, preds)
    lnames = set(plan.left.schema.names)
    rnames = set(plan.right.schema.names)
    on = _split(plan.condition) if plan.condition is not None else []
    to_left: list[Expr] = []
    to_right: list[Expr] = []
    keep_on: list[Expr] = []
    above: list[Expr] = []

    def side(p: Expr) -> str:
        cols = p.columns()
        if cols <= lnames:
            return "left"
        if cols <= rnames:
            return "right"
        return "both"

    kind = plan.kind
    if kind in ("inner", "cross") and not plan.single_row:
        for p in preds + on:
            {"left": to_left, "right": to_right, "both": keep_on}[side(p)].append(p)
        kind = "inner" if keep_on else "cross"
        for p in keep_on:
            for bound in _bounds_from_comparison(p, plan.left, plan.right):
                (to_left if bound.columns() <= lnames else to_right).append(bound)
    else:
        preserved_left = kind in ("left", "semi", "anti") or plan.single_row
        preserved_right = kind == "right"
        for p in preds:
            where = side(p)
            if where == "left" and (preserved_left or kind == "inner"):
                to_left.append(p)
            elif where == "right" and preserved_right:
                to_right.append(p)
            else:
                above.append(p)
        for p in on:
            where = side(p)
            if where == "right" and kind in ("left", "semi", "anti", "inner"):
                to_right.append(p)
            elif where == "left" and kind in ("right", "semi", "inner"):
                to_left.append(p)
            else:
                keep_on.append(p)
    joined: LogicalPlan = replace(
        plan,
        left=_push(plan.left, to_left),
        right=_push(plan.right, to_right),
        kind=kind,
        condition=conjoin(keep_on),
    )
    if isinstance(joined, Join) and joined.kind in ("semi", "anti"):
        joined = _sink_semi_join(joined)
    return _wrap(joined, above)


_MIRRORED = {"less": "greater", "less_equal": "greater_equal", "greater": "less"}
_MIRRORED |= {"greater_equal": "less_equal"}


def _bounds_from_comparison(p: Expr, left: LogicalPlan, right: LogicalPlan) -> list[Expr]:
    """Single-side conjuncts an inner join's ``a < b`` (``<=``, ``>``, ``>=``) of two
    integer or date columns implies from the other column's table min/max: ``a < b`` keeps
    only ``a < max(b)`` and ``b > min(a)``. Each is kept where it drops rows the column's
    own range holds (TPC-DS q72's ``inv_quantity_on_hand < cs_quantity``, quantities 0..1000
    against 1..100, keeps a tenth of ``inventory`` before its join)."""
    if not (isinstance(p, Call) and p.fn in _MIRRORED):
        return []
    a, b = p.args
    if not (isinstance(a, ColumnRef) and isinstance(b, ColumnRef)) or a.type != b.type:
        return []
    out: list[Expr] = []
    for col, fn, other in ((a, p.fn, b), (b, _MIRRORED[p.fn], a)):
        own, theirs = column_range(left, right, col), column_range(left, right, other)
        if own is None or theirs is None:
            continue
        if fn in ("less", "less_equal"):
            limit = theirs[1]
            useful = own[1] > limit or (fn == "less" and own[1] >= limit)
        else:
            limit = theirs[0]
            useful = own[0] < limit or (fn == "greater" and own[0] <= limit)
        if useful:
            out.append(Call(fn, (col, _literal(limit, col.type)), pa.bool_()))
    return out


def column_range(left: LogicalPlan, right: LogicalPlan, col: ColumnRef) -> tuple[int, int] | None:
    """The table min/max of ``col`` (an integer or date column) of either join input."""
    found = origin_column(left if col.name in left.schema.names else right, col.name)
    return integer_range(found[0].source, found[1]) if found is not None else None


def _literal(value: int, type_: pa.DataType) -> Literal:
    if pa.types.is_date(type_):
        return Literal(datetime.date.fromordinal(value), type_)
    return Literal(value, type_)


def _sink_scalar_join(plan: Join, preds: list[Expr]) -> LogicalPlan | None:
    """An uncorrelated scalar subquery's join moved onto the input its filters compare.

    ``(a JOIN b) LEFT JOIN scalar`` (one row, no condition) adds the same value to every
    row, so it may sit on either input of an inner join below it. When every conjunct
    above that reads the subquery's column reads otherwise only one input, it moves
    there: ``d_month_seq = (SELECT …)`` then filters ``date_dim`` before the joins, not
    their result (TPC-DS q6). None when it cannot move.
    """
    below = plan.left
    uncorrelated = plan.condition is None or (
        isinstance(plan.condition, Literal) and plan.condition.value is True
    )
    if not (
        plan.single_row
        and plan.kind == "left"
        and uncorrelated
        and isinstance(below, Join)
        and below.kind in ("inner", "cross")
        and not (below.single_row or below.null_equal or below.null_aware)
    ):
        return None
    rnames = set(plan.right.schema.names)
    reading = [p.columns() - rnames for p in preds if p.columns() & rnames]
    if not reading:
        return None
    if all(cols and cols <= set(below.left.schema.names) for cols in reading):
        return replace(below, left=replace(plan, left=below.left))
    if all(cols and cols <= set(below.right.schema.names) for cols in reading):
        return replace(below, right=replace(plan, left=below.right))
    return None


def _sink_semi_join(plan: Join) -> LogicalPlan:
    """Move a semi / anti join below an inner join, onto the input its condition reads.

    ``(orders JOIN lineitem) SEMI JOIN big_orders ON o_orderkey = …`` becomes
    ``(orders SEMI JOIN big_orders) JOIN lineitem``: the filter applies before the
    inner join multiplies rows. Done only when that input is estimated no larger
    than the inner join's output — else the other joins filter more, first (Q21).
    """
    below = plan.left
    if not (
        isinstance(below, Join)
        and below.kind in ("inner", "cross")
        and not (below.single_row or below.null_equal or below.null_aware)
    ):
        return plan
    right_names = set(plan.right.schema.names)
    needed = (plan.condition.columns() if plan.condition is not None else set()) - right_names
    for side in ("left", "right"):
        child = getattr(below, side)
        if needed <= set(child.schema.names) and estimate_rows(child) <= estimate_rows(below):
            sunk = _sink_semi_join(replace(plan, left=child))
            if side == "left":
                return replace(below, left=sunk)
            return replace(below, right=sunk)
    return plan


def _wrap(plan: LogicalPlan, preds: list[Expr]) -> LogicalPlan:
    predicate = conjoin(preds)
    return Filter(plan, predicate) if predicate is not None else plan


def fold_constants(e: Expr) -> Expr:
    """``e`` with every sub-expression that reads no column evaluated, and AND / OR with
    a constant TRUE or FALSE operand reduced (``x OR TRUE`` is TRUE, ``x AND TRUE`` x)."""
    if not isinstance(e, Call):
        return _fold(e)
    args = tuple(fold_constants(a) for a in e.args)
    if e.fn in ("and", "or"):
        decisive, neutral = (False, True) if e.fn == "and" else (True, False)
        for a in args:
            if isinstance(a, Literal) and a.value is decisive:
                return Literal(decisive, pa.bool_())
        rest = [a for a in args if not (isinstance(a, Literal) and a.value is neutral)]
        if not rest:
            return Literal(neutral, pa.bool_())
        if len(rest) == 1:
            return rest[0]
        return Call(e.fn, tuple(rest), e.type, e.options)
    return _fold(Call(e.fn, args, e.type, e.options))


_NO_ROWS = pa.RecordBatch.from_pydict({})


def _fold(e: Expr) -> Expr:
    """``e`` evaluated now when it reads no column (an error is left for run time)."""
    if isinstance(e, Literal | ColumnRef) or e.column_set:
        return e
    try:
        value = evaluate(e, _NO_ROWS)
        return Literal(value.as_py(), e.type) if isinstance(value, pa.Scalar) else e
    except (ShoalError, pa.ArrowException, OverflowError, ValueError):
        return e
