"""Join order: greedy over each cluster of inner joins, guided by estimates.

A cluster is a maximal tree of inner / cross joins; its leaves (scans, outer
joins, aggregates...) are ordered by one of two strategies (``JoinOrderStrategy``):

* ``PAIRS`` (clusters of up to ``PAIRS_MAX_LEAVES`` leaves): repeatedly join the
  connected pair of components whose estimated result is smallest — a bushy plan,
  O(n³) estimates.
* ``LEFT_DEEP`` (larger clusters): start from the connected pair with the smallest
  estimated result, then repeatedly add the connected leaf that keeps the estimate
  smallest — O(n²) cheap estimates, so a 100-way join plans in well under a second.

Neither makes a cross product while an equi-join path exists. The larger input of
each join is put on the left (the probe side), the smaller on the right (the build
side, which a hash join holds in memory).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from shoal.expr.nodes import Call, Expr, conjoin, conjuncts
from shoal.logical.plan import Filter, Join, LogicalPlan
from shoal.optimizer.statistics import (
    composite_distinct,
    distinct_is_estimated,
    equi_pairs,
    estimate_rows,
    join_distinct,
    key_table_rows,
    selectivity,
)


class JoinOrderStrategy(enum.Enum):
    PAIRS = "pairs"
    LEFT_DEEP = "left-deep"


#: Above this many leaves a cluster is ordered LEFT_DEEP. Greedy left-deep growth from
#: the cheapest pair can start in a dimension branch and reach the fact table late
#: (TPC-DS q64, 18 leaves); PAIRS over 20 leaves still plans in well under 0.1 s.
PAIRS_MAX_LEAVES = 20


@dataclass
class _Component:
    plan: LogicalPlan
    members: frozenset[int]  # indices of the cluster's leaves it holds
    rows: float


def strategy_for(leaves: int) -> JoinOrderStrategy:
    return JoinOrderStrategy.PAIRS if leaves <= PAIRS_MAX_LEAVES else JoinOrderStrategy.LEFT_DEEP


def reorder_joins(plan: LogicalPlan) -> LogicalPlan:
    if not _is_inner(plan):
        children = tuple(reorder_joins(c) for c in plan.children())
        return plan.with_children(children) if children else plan
    leaves: list[LogicalPlan] = []
    predicates: list[Expr] = []
    _flatten(plan, leaves, predicates)
    # Only the cluster's leaves are reordered on their own: its inner joins are
    # rebuilt here, once, not once per level.
    leaves = [reorder_joins(leaf) for leaf in leaves]
    if len(leaves) < 3 and not predicates:
        assert isinstance(plan, Join)
        return _orient(Join(leaves[0], leaves[1], plan.kind, plan.condition))
    cluster = _Cluster(leaves, predicates)
    if strategy_for(len(leaves)) is JoinOrderStrategy.PAIRS:
        result = cluster.order_pairs()
    else:
        result = cluster.order_left_deep()
    rest = conjoin(cluster.predicates)
    return Filter(result, rest) if rest is not None else result


class _Cluster:
    """The leaves of one cluster and the predicates not yet placed on a join."""

    def __init__(self, leaves: list[LogicalPlan], predicates: list[Expr]):
        self.leaves = leaves
        self._predicates = predicates
        self._placed: set[int] = set()  # ids of predicates already on a join
        owner = {name: i for i, leaf in enumerate(leaves) for name in leaf.schema.names}
        self.owner = owner
        # The leaves each predicate reads, worked out once (not once per pair tried).
        self.touches = {
            id(p): frozenset(owner[c] for c in p.column_set if c in owner) for p in predicates
        }
        self._position = {id(p): k for k, p in enumerate(predicates)}
        self.by_leaf: list[list[Expr]] = [[] for _ in leaves]
        for p in predicates:
            for m in self.touches[id(p)]:
                self.by_leaf[m].append(p)
        self._keys: dict[int, tuple[frozenset[int], frozenset[int], float] | None] = {}

    @property
    def predicates(self) -> list[Expr]:
        """The predicates not yet placed on a join, in their original order."""
        return [p for p in self._predicates if id(p) not in self._placed]

    def connecting(self, a: frozenset[int], b: frozenset[int]) -> list[Expr]:
        """The unplaced predicates that read both ``a`` and ``b`` and nothing else."""
        small = a if len(a) <= len(b) else b
        both = a | b
        found = {
            id(p): p
            for m in small
            for p in self.by_leaf[m]
            if id(p) not in self._placed and (t := self.touches[id(p)]) <= both and t & a and t & b
        }
        return sorted(found.values(), key=lambda p: self._position[id(p)])

    def join(self, a: _Component, b: _Component, conds: list[Expr], rows: float) -> _Component:
        self._placed.update(id(c) for c in conds)
        if b.rows > a.rows:
            a, b = b, a
        joined = Join(a.plan, b.plan, "inner" if conds else "cross", conjoin(conds))
        return _Component(joined, a.members | b.members, rows)

    def order_pairs(self) -> LogicalPlan:
        components = [
            _Component(leaf, frozenset((i,)), estimate_rows(leaf))
            for i, leaf in enumerate(self.leaves)
        ]
        while len(components) > 1:
            best: tuple[tuple[bool, int, float], int, int, list[Expr]] | None = None
            for i in range(len(components)):
                for j in range(i + 1, len(components)):
                    a, b = components[i], components[j]
                    conds = self.connecting(a.members, b.members)
                    pairs = (
                        equi_pairs(conjoin(conds), a.plan.schema, b.plan.schema) if conds else []
                    )
                    if not pairs:
                        continue
                    # A pair joined only on columns with no distinct-count estimate
                    # (strings) goes last (TPC-DS q85: two customer_demographics copies
                    # share 5- and 7-valued status columns: no join to start with).
                    weak = not any(
                        distinct_is_estimated(a.plan, lk) or distinct_is_estimated(b.plan, rk)
                        for lk, rk in pairs
                    )
                    rows = estimate_rows(Join(a.plan, b.plan, "inner", conjoin(conds)))
                    score = (weak, *_score(rows, min(a.rows, b.rows)))
                    if best is None or score < best[0]:
                        best = (score, i, j, conds)
            if best is None:
                # No equi-join connects what is left: cross the two smallest.
                order = sorted(range(len(components)), key=lambda k: components[k].rows)
                i, j = sorted(order[:2])
                conds = self.connecting(components[i].members, components[j].members)
            else:
                _, i, j, conds = best
            a, b = components[i], components[j]
            merged = self.join(a, b, conds, 0.0)
            merged.rows = estimate_rows(merged.plan)
            components = [c for k, c in enumerate(components) if k not in (i, j)] + [merged]
        return components[0].plan

    def order_left_deep(self) -> LogicalPlan:
        singles = [
            _Component(leaf, frozenset((i,)), estimate_rows(leaf))
            for i, leaf in enumerate(self.leaves)
        ]
        # Seed: the connected pair with the smallest estimated result.
        seed: tuple[tuple[int, float], int, int, list[Expr], float] | None = None
        for p in self._predicates:
            t = self.touches[id(p)]
            if len(t) != 2:
                continue
            i, j = sorted(t)
            a, b = singles[i], singles[j]
            conds = self.connecting(a.members, b.members)
            rows = self.estimate(a, b, conds)
            if rows is None:
                continue
            score = _score(rows, min(a.rows, b.rows))
            if seed is None or score < seed[0]:
                seed = (score, i, j, conds, rows)
        if seed is None:
            order = sorted(range(len(singles)), key=lambda k: singles[k].rows)
            i, j = sorted(order[:2])
            conds = self.connecting(singles[i].members, singles[j].members)
            rows = singles[i].rows * singles[j].rows * selectivity(conjoin(conds))
        else:
            _, i, j, conds, rows = seed
        current = self.join(singles[i], singles[j], conds, max(1.0, rows))
        remaining = [c for k, c in enumerate(singles) if k not in (i, j)]
        while remaining:
            best: tuple[tuple[int, float], int, list[Expr], float] | None = None
            # Only leaves sharing a predicate with the tree so far can connect to it.
            near = {
                m
                for member in current.members
                for p in self.by_leaf[member]
                for m in self.touches[id(p)]
            } - current.members
            for k, leaf in enumerate(remaining):
                if not leaf.members & near:
                    continue
                conds = self.connecting(current.members, leaf.members)
                if not conds:
                    continue
                rows = self.estimate(current, leaf, conds)
                if rows is None:
                    continue
                score = _score(rows, leaf.rows)
                if best is None or score < best[0]:
                    best = (score, k, conds, rows)
            if best is None:
                # Nothing left connects by an equi-join: cross in the smallest leaf.
                k = min(range(len(remaining)), key=lambda n: remaining[n].rows)
                conds = self.connecting(current.members, remaining[k].members)
                rows = current.rows * remaining[k].rows * selectivity(conjoin(conds))
            else:
                _, k, conds, rows = best
            current = self.join(current, remaining.pop(k), conds, max(1.0, rows))
        return current.plan

    def estimate(self, a: _Component, b: _Component, conds: list[Expr]) -> float | None:
        """Rows of ``a ⋈ b`` on ``conds`` (None without an equi-join key between them).

        As ``estimate_rows`` of the join, but each key's distinct count is read
        from the leaf the key column comes from, not by walking the joined tree.
        """
        per_key: list[float] = []
        sides: tuple[list[Expr], list[Expr]] = ([], [])  # the keys of a, of b
        rest = []
        for c in conds:
            key = self._equi_key(c)
            if key is None:
                rest.append(c)
                continue
            xs, ys, d = key
            x, y = c.args if isinstance(c, Call) else (c, c)
            if xs <= a.members and ys <= b.members:
                per_key.append(d)
                sides[0].append(x)
                sides[1].append(y)
            elif xs <= b.members and ys <= a.members:
                per_key.append(d)
                sides[0].append(y)
                sides[1].append(x)
            else:
                rest.append(c)
        if not per_key:
            return None
        distinct = composite_distinct(
            per_key, self._key_table_rows(sides[0]), self._key_table_rows(sides[1])
        )
        return max(1.0, a.rows * b.rows / max(distinct, 1.0) * selectivity(conjoin(rest)))

    def _key_table_rows(self, keys: list[Expr]) -> float:
        """``key_table_rows`` of keys read from the leaves they come from."""
        leaves = {m for k in keys for m in self._leaves_of(k)}
        if len(leaves) != 1:
            return math.inf
        return key_table_rows(self.leaves[leaves.pop()], keys)

    def _equi_key(self, c: Expr) -> tuple[frozenset[int], frozenset[int], float] | None:
        """For ``x = y``: the leaves each side reads and the key's distinct count."""
        if id(c) in self._keys:
            return self._keys[id(c)]
        key = None
        if isinstance(c, Call) and c.fn == "equal":
            x, y = c.args
            xs, ys = self._leaves_of(x), self._leaves_of(y)
            if xs and ys and not xs & ys:
                key = (xs, ys, self._join_distinct(x, xs, y, ys))
        self._keys[id(c)] = key
        return key

    def _leaves_of(self, e: Expr) -> frozenset[int]:
        return frozenset(self.owner[c] for c in e.column_set if c in self.owner)

    def _join_distinct(self, x: Expr, xs: frozenset[int], y: Expr, ys: frozenset[int]) -> float:
        if len(xs) != 1 or len(ys) != 1:
            return 1.0
        ((a,), (b,)) = (xs, ys)
        return join_distinct(self.leaves[a], x, self.leaves[b], y)


def _score(rows: float, smaller_input: float) -> tuple[int, float]:
    # Estimates within 5% are a tie: then join the smaller input first
    # (a filtered dimension before a large one).
    return (round(math.log(max(rows, 1.0)) / math.log(1.05)), smaller_input)


def _is_inner(plan: LogicalPlan) -> bool:
    return (
        isinstance(plan, Join)
        and plan.kind in ("inner", "cross")
        and not (plan.single_row or plan.null_equal or plan.null_aware)
    )


def _flatten(plan: LogicalPlan, leaves: list[LogicalPlan], predicates: list[Expr]) -> None:
    stack = [plan]
    while stack:
        node = stack.pop()
        if _is_inner(node):
            assert isinstance(node, Join)
            predicates.extend(conjuncts(node.condition))
            stack.append(node.right)
            stack.append(node.left)
        else:
            leaves.append(node)


def _orient(plan: Join) -> LogicalPlan:
    if estimate_rows(plan.right) > estimate_rows(plan.left):
        return Join(plan.right, plan.left, plan.kind, plan.condition)
    return plan
