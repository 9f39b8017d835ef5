"""The physical operator base: a contract every operator states.

An operator says what distribution it needs from each input, what partitioning
its output has, whether it keeps its input's order, and how it runs one task's
partition as a pull-based iterator of record batches. Operators are frozen
dataclasses: plain data that pickles, so a stage fragment can travel to another
process.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from shoal.exchange_spec import SortSpec, sort_specs_str
from shoal.physical.partitioning import ANY, Distribution, Partitioning

if TYPE_CHECKING:
    from shoal.physical.context import TaskContext


class PhysicalPlan:
    #: Name shown in EXPLAIN.
    label: str = "?"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return ()

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        assert not children, f"{type(self).__name__} has no children"
        return self

    @property
    def schema(self) -> pa.Schema:
        raise NotImplementedError

    def output_partitioning(self) -> Partitioning:
        """The partitioning of this operator's output (default: its first input's)."""
        return self.children()[0].output_partitioning()

    def required_input_distributions(self) -> tuple[Distribution, ...]:
        return tuple(ANY for _ in self.children())

    def maintains_input_order(self) -> bool:
        """Whether each output partition keeps its (first) input partition's row order.
        False unless an operator says so: order is only relied on where it is declared."""
        return False

    def required_input_orderings(self) -> tuple[tuple[SortSpec, ...], ...]:
        """The order each input's partitions must be in (empty: any order)."""
        return tuple(() for _ in self.children())

    def output_ordering(self) -> tuple[SortSpec, ...]:
        """The order every output partition's rows are in (empty: none known)."""
        children = self.children()
        if children and self.maintains_input_order():
            return children[0].output_ordering()
        return ()

    def explain_params(self) -> dict[str, str]:
        return {}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        """Run this operator for task ``ctx.partition``; pulls from its children."""
        raise NotImplementedError

    def explain_line(self) -> str:
        params = self.explain_params()
        body = " ".join(f"{k}={v}" if k else v for k, v in params.items())
        return f"{self.label} {body}".rstrip()

    def walk(self) -> Iterator[PhysicalPlan]:
        yield self
        for c in self.children():
            yield from c.walk()


def replace_nodes(plan: PhysicalPlan, replacements: Mapping[int, PhysicalPlan]) -> PhysicalPlan:
    """``plan`` with each node whose ``id`` is a key of ``replacements`` replaced by its
    value (which is taken as it is: its own children are not visited)."""
    replacement = replacements.get(id(plan))
    if replacement is not None:
        return replacement
    children = plan.children()
    if not children:
        return plan
    return plan.with_children(tuple(replace_nodes(c, replacements) for c in children))


def ordering_satisfies(have: tuple[SortSpec, ...], need: tuple[SortSpec, ...]) -> bool:
    """Rows sorted by ``have`` are sorted by ``need`` when ``need`` is a prefix of it."""
    return len(need) <= len(have) and have[: len(need)] == need


__all__ = ["PhysicalPlan", "SortSpec", "ordering_satisfies", "replace_nodes", "sort_specs_str"]
