"""Logical plan to physical plan, operator for operator, with no exchanges yet.

Aggregates, top-k and limits come out in ``single`` mode and sorts as
partition-local; ``rules/enforce_distribution.py`` then splits them and inserts
every exchange. Scans get their splits assigned to tasks here.
"""

from __future__ import annotations

from shoal.errors import UnsupportedError
from shoal.expr.nodes import ColumnRef, conjoin
from shoal.logical.plan import (
    Aggregate,
    Filter,
    Limit,
    LogicalPlan,
    Project,
    Scan,
    Sort,
    SortKey,
    UnionAll,
    Values,
)
from shoal.physical.context import Settings
from shoal.physical.operators.aggregate import SINGLE_MODE, AggSpec, HashAggregateExec
from shoal.physical.operators.filter import FilterExec
from shoal.physical.operators.limit import LimitExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.operators.scan import ScanExec, assign_splits
from shoal.physical.operators.sort import SortExec
from shoal.physical.operators.topk import TopKExec
from shoal.physical.operators.union import UnionExec
from shoal.physical.operators.values import ValuesExec
from shoal.physical.plan import PhysicalPlan, SortSpec


class PhysicalPlanner:
    def __init__(self, settings: Settings):
        self.settings = settings

    def plan(self, node: LogicalPlan) -> PhysicalPlan:
        if isinstance(node, Scan):
            splits = node.source.splits()
            n = max(1, min(self.settings.partitions, len(splits)))
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
            return FilterExec(self.plan(node.input), node.predicate)
        if isinstance(node, Project):
            return ProjectExec(self.plan(node.input), node.exprs)
        if isinstance(node, Aggregate):
            for _, a in node.aggregates:
                if a.distinct:
                    raise UnsupportedError(f"{a.fn.upper()}(DISTINCT ...)")
            aggs = tuple(AggSpec(n, a.fn, a.arg, a.type) for n, a in node.aggregates)
            return HashAggregateExec(self.plan(node.input), SINGLE_MODE, node.keys, aggs)
        if isinstance(node, Limit):
            if isinstance(node.input, Sort) and node.limit is not None:
                sort = node.input
                return TopKExec(
                    self.plan(sort.input), "single", sort_specs(sort.keys), node.limit, node.offset
                )
            return LimitExec(self.plan(node.input), "single", node.limit, node.offset)
        if isinstance(node, Sort):
            return SortExec(self.plan(node.input), sort_specs(node.keys))
        if isinstance(node, UnionAll):
            return UnionExec(tuple(self.plan(c) for c in node.inputs))
        raise UnsupportedError(f"plan node {type(node).__name__}")


def sort_specs(keys: tuple[SortKey, ...]) -> tuple[SortSpec, ...]:
    specs = []
    for k in keys:
        assert isinstance(k.expr, ColumnRef), "the binder projects sort keys to columns"
        specs.append(SortSpec(k.expr.name, k.ascending, k.nulls_first))
    return tuple(specs)
