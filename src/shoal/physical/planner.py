"""Logical plan to physical plan, operator for operator, with no exchanges yet.

Aggregates, top-k and limits come out in ``single`` mode and sorts as
partition-local; ``rules/enforce_distribution.py`` then splits them and inserts
every exchange. Scans get their splits assigned to tasks here.
"""

from __future__ import annotations

from shoal.errors import UnsupportedError
from shoal.expr.nodes import Call, ColumnRef, Expr, Literal, conjoin, conjuncts
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
    Sort,
    SortKey,
    UnionAll,
    Unnest,
    Values,
    Window,
    WindowFunction,
)
from shoal.optimizer.statistics import equi_pairs, estimate_bytes, estimate_rows, row_width
from shoal.physical.context import Settings
from shoal.physical.operators.aggregate import PARTIAL, SINGLE_MODE, AggSpec, HashAggregateExec
from shoal.physical.operators.exchange import SharedReadExec
from shoal.physical.operators.expand import ExpandExec
from shoal.physical.operators.filter import FilterExec
from shoal.physical.operators.hash_join import HashJoinExec, JoinEstimates
from shoal.physical.operators.limit import LimitExec
from shoal.physical.operators.nested_loop_join import NestedLoopJoinExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.operators.scan import ScanExec, assign_splits, scan_task_count
from shoal.physical.operators.sort import SortExec
from shoal.physical.operators.topk import TopKExec
from shoal.physical.operators.union import UnionExec
from shoal.physical.operators.unnest import UnnestExec
from shoal.physical.operators.values import ValuesExec
from shoal.physical.operators.window import WindowExec
from shoal.physical.operators.window_topk import RANKING_FUNCTIONS, TopKMode, WindowTopKExec
from shoal.physical.plan import PhysicalPlan, SortSpec


class PhysicalPlanner:
    def __init__(self, settings: Settings):
        self.settings = settings
        # Shared CTE bodies met so far (cte id -> its read), planned apart (shared.py).
        self.shared: dict[int, CteRead] = {}

    def plan(self, node: LogicalPlan) -> PhysicalPlan:
        if isinstance(node, CteRead):
            self.shared.setdefault(node.cte_id, node)
            body = node.body.schema
            read = SharedReadExec(node.cte_id, node.cte_name, body)
            return ProjectExec(
                read,
                tuple(
                    (n, ColumnRef(c, body.field(c).type))
                    for c, n in zip(node.columns, node.names, strict=True)
                ),
            )
        if isinstance(node, Scan):
            if node.source.layout is not None:  # hash-laid-out table: tasks follow shards
                return ScanExec.over_layout(
                    node.table,
                    node.source,
                    node.columns,
                    node.names,
                    conjoin(list(node.filters)),
                    self.settings.partitions,
                )
            splits = node.source.splits()
            n = scan_task_count(splits, self.settings, row_width(node.schema))
            return ScanExec(
                node.table,
                node.source,
                node.columns,
                node.names,
                conjoin(list(node.filters)),
                tuple(splits),
                assign_splits(splits, n),
            )
        if isinstance(node, Values):
            return ValuesExec(node.rows, node.schema)
        if isinstance(node, Filter):
            if isinstance(node.input, Window):
                topk = _rank_limit(node)
                if topk is not None:
                    return FilterExec(self._window(node.input, topk), node.predicate)
            return FilterExec(self.plan(node.input), node.predicate)
        if isinstance(node, Project):
            return ProjectExec(self.plan(node.input), node.exprs)
        if isinstance(node, Aggregate):
            for _, a in node.aggregates:
                if a.distinct:
                    raise UnsupportedError(f"{a.fn.upper()}(DISTINCT ...)")
            aggs = tuple(AggSpec(n, a.fn, a.arg, a.type) for n, a in node.aggregates)
            if node.partial:
                return self._pre_aggregate(node, aggs)
            return HashAggregateExec(
                self.plan(node.input), SINGLE_MODE, node.keys, aggs, node.always_group
            )
        if isinstance(node, Limit):
            if isinstance(node.input, Sort) and node.limit is not None:
                sort = node.input
                return TopKExec(
                    self.plan(sort.input), "single", sort_specs(sort.keys), node.limit, node.offset
                )
            return LimitExec(self.plan(node.input), "single", node.limit, node.offset)
        if isinstance(node, Sort):
            return SortExec(self.plan(node.input), sort_specs(node.keys))
        if isinstance(node, Expand):
            return ExpandExec(self.plan(node.input), node.projections)
        if isinstance(node, Unnest):
            return UnnestExec(self.plan(node.input), node.column)
        if isinstance(node, Window):
            return self._window(node, None)
        if isinstance(node, UnionAll):
            return UnionExec(tuple(self.plan(c) for c in node.inputs))
        if isinstance(node, Join):
            return self._join(node)
        raise UnsupportedError(f"plan node {type(node).__name__}")

    def _window(self, node: Window, topk: tuple[WindowFunction, int] | None) -> PhysicalPlan:
        """A window; under a ranking filter, over a ``WindowTopK`` keeping its candidates."""
        child = self.plan(node.input)
        order = sort_specs(node.order_by)
        if topk is not None:
            fn, k = topk
            child = WindowTopKExec(child, TopKMode.SINGLE, node.partition_by, order, fn, k)
        return WindowExec(child, node.partition_by, order, node.calls)

    def _pre_aggregate(self, node: Aggregate, aggs: tuple[AggSpec, ...]) -> PhysicalPlan:
        """A pre-aggregation: a partial aggregate (no exchange; its groups may repeat
        across tasks) whose one state per aggregate is renamed to the aggregate's name."""
        partial = HashAggregateExec(self.plan(node.input), PARTIAL, node.keys, aggs)
        exprs: list[tuple[str, Expr]] = [(n, ColumnRef(n, e.type)) for n, e in node.keys]
        for a in aggs:
            ((state, _, state_type),) = a.states()
            exprs.append((a.name, ColumnRef(state, state_type)))
        return ProjectExec(partial, tuple(exprs))

    def _preserve_by_building(self, node: Join, est: JoinEstimates) -> bool:
        """A left join whose preserved (left) side is far smaller than a right side too
        big to broadcast cheaply: build on the left side instead (see ``HashJoinExec``)."""
        return (
            est.probe_rows * 4 < est.build_rows
            and est.build_bytes > self.settings.broadcast_threshold_bytes / 8
        )

    def _join(self, node: Join) -> PhysicalPlan:
        if node.kind == "right":
            # A right join is a left join with the inputs swapped (build = the old left).
            swapped = Join(node.right, node.left, "left", node.condition)
            plan = self._join(swapped)
            names = [f.name for f in node.schema]
            return ProjectExec(
                plan, tuple((n, ColumnRef(n, plan.schema.field(n).type)) for n in names)
            )
        left, right = self.plan(node.left), self.plan(node.right)
        pairs, residual = _split_condition(node)
        if not pairs or node.kind == "cross" or node.single_row:
            kind = "inner" if node.kind == "cross" else node.kind
            return NestedLoopJoinExec(left, right, kind, node.condition, node.single_row)
        left, left_keys = _key_columns(left, [p[0] for p in pairs], "lkey")
        right, right_keys = _key_columns(right, [p[1] for p in pairs], "rkey")
        estimates = JoinEstimates(
            estimate_rows(node.left), estimate_rows(node.right), estimate_bytes(node.right)
        )
        join: PhysicalPlan
        if node.kind == "left" and self._preserve_by_building(node, estimates):
            # A small preserved side beside a large one: hold the small side (build)
            # and stream the large one through it, as a right join with sides swapped.
            join = HashJoinExec(
                right,
                left,
                "right",
                right_keys,
                left_keys,
                conjoin(residual),
                JoinEstimates(
                    estimates.build_rows, estimates.probe_rows, estimate_bytes(node.left)
                ),
                None,
                reason=f"left ~{estimates.probe_rows:,.0f} rows << right "
                f"~{estimates.build_rows:,.0f} rows: build on the preserved side",
            )
        else:
            join = HashJoinExec(
                left,
                right,
                node.kind,
                left_keys,
                right_keys,
                conjoin(residual),
                estimates,
                None,
                node.null_aware,
                node.null_equal,
            )
        if join.schema.names != node.schema.names:
            # Drop key columns computed for the join.
            join = ProjectExec(
                join, tuple((f.name, ColumnRef(f.name, f.type)) for f in node.schema)
            )
        return join


def _split_condition(node: Join) -> tuple[list[tuple[Expr, Expr]], list[Expr]]:
    """Equi-join key pairs (left expr, right expr) and the residual conjuncts."""
    pairs: list[tuple[Expr, Expr]] = []
    residual: list[Expr] = []
    for c in conjuncts(node.condition):
        found = equi_pairs(c, node.left.schema, node.right.schema)
        if found and found[0][0].type == found[0][1].type:
            pairs.append(found[0])
        else:
            residual.append(c)
    return pairs, residual


def _key_columns(
    plan: PhysicalPlan, keys: list[Expr], prefix: str
) -> tuple[PhysicalPlan, tuple[str, ...]]:
    """Key column names, projecting computed keys (``a.x + 1``, casts) as new columns."""
    names: list[str] = []
    extra: list[tuple[str, Expr]] = []
    for i, k in enumerate(keys):
        if isinstance(k, ColumnRef):
            names.append(k.name)
        else:
            name = f"{prefix}${i}"
            extra.append((name, k))
            names.append(name)
    if extra:
        passthrough = tuple((f.name, ColumnRef(f.name, f.type)) for f in plan.schema)
        plan = ProjectExec(plan, passthrough + tuple(extra))
    return plan, tuple(names)


def _rank_limit(node: Filter) -> tuple[WindowFunction, int] | None:
    """(function, k) when ``node`` keeps only rows a ranking window call ranks ``<= k``.

    The window below must compute only row_number / rank / dense_rank (any other call,
    such as a count over the partition, needs rows the top-k would drop), and one
    conjunct must be ``call <= k``, ``call < k`` or ``call = 1`` (or the mirrored
    comparison with the literal on the left).
    """
    window = node.input
    assert isinstance(window, Window)
    fns = {name: call.fn for name, call in window.calls}
    if not all(fn in RANKING_FUNCTIONS for fn in fns.values()):
        return None
    best: tuple[WindowFunction, int] | None = None
    for c in conjuncts(node.predicate):
        if not isinstance(c, Call) or len(c.args) != 2:
            continue
        op, (left, right) = c.fn, c.args
        if isinstance(left, Literal) and isinstance(right, ColumnRef):
            op, left, right = _MIRRORED.get(op, ""), right, left
        if not (isinstance(left, ColumnRef) and left.name in fns and isinstance(right, Literal)):
            continue
        value = right.value
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        k = {"less_equal": value, "less": value - 1, "equal": value if value == 1 else None}.get(op)
        if k is None or k < 1:
            continue  # (k < 1 keeps nothing: rare, and the filter alone handles it)
        if best is None or k < best[1]:
            best = (fns[left.name], k)
    return best


_MIRRORED = {"greater_equal": "less_equal", "greater": "less", "equal": "equal"}


def sort_specs(keys: tuple[SortKey, ...]) -> tuple[SortSpec, ...]:
    specs = []
    for k in keys:
        assert isinstance(k.expr, ColumnRef), "the binder projects sort keys to columns"
        specs.append(SortSpec(k.expr.name, k.ascending, k.nulls_first))
    return tuple(specs)
