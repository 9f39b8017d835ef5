"""Exchange operators: the only places rows cross a stage boundary.

``ExchangeExec`` sits in the physical plan between a producer subtree and its
consumer; the stage cutter replaces it with an ``ExchangeReadExec`` leaf in the
consumer's fragment and an output spec on the producer stage::

    producer tasks (n_in)                     consumer tasks (n_out)
    ┌──────────┐  partition each batch  ┌───────────────────────────┐
    │ fragment │ ──────────────────────▶│ buffer[dest] (byte budget)│──▶ ExchangeRead
    └──────────┘   hash / broadcast /   └───────────────────────────┘
                   gather / round-robin / ordered merge

Kinds and what the consumer side has afterwards:
  hash         rows with equal keys in the same partition   -> Hash(keys, n)
  broadcast    every consumer gets every row                -> Replicated(n)
  gather       all rows into one partition, any order       -> Single
  merge        k-way merge of sorted inputs into one        -> Single, sorted
  round_robin  whole batches dealt in turn                  -> RoundRobin(n)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa

from shoal.errors import PlanError
from shoal.exchange_spec import ExchangeKind, ExchangeSpec, SortSpec, sort_specs_str
from shoal.physical.context import TaskContext
from shoal.physical.partitioning import (
    SINGLE,
    HashPartitioned,
    Partitioning,
    Replicated,
    RoundRobinPartitioned,
)
from shoal.physical.plan import PhysicalPlan

# The kinds by their short names (the plan's rules and tests use these).
HASH = ExchangeKind.HASH
BROADCAST = ExchangeKind.BROADCAST
GATHER = ExchangeKind.GATHER
MERGE = ExchangeKind.MERGE
ROUND_ROBIN = ExchangeKind.ROUND_ROBIN


def exchange_partitioning(spec: ExchangeSpec) -> Partitioning:
    """The partitioning the consumer side of an exchange has."""
    if spec.kind == HASH:
        return HashPartitioned(spec.keys, spec.num_partitions)
    if spec.kind == BROADCAST:
        return Replicated(spec.num_partitions)
    if spec.kind in (GATHER, MERGE):
        return SINGLE
    return RoundRobinPartitioned(spec.num_partitions)


@dataclass(frozen=True)
class ExchangeExec(PhysicalPlan):
    """A stage boundary in the plan (never executed itself: the stage cutter removes it)."""

    input: PhysicalPlan
    spec: ExchangeSpec

    @property
    def label(self) -> str:  # type: ignore[override]
        return "Exchange"

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return ExchangeExec(children[0], self.spec)

    @property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def output_partitioning(self) -> Partitioning:
        return exchange_partitioning(self.spec)

    def maintains_input_order(self) -> bool:
        return self.spec.kind == MERGE

    def output_ordering(self) -> tuple[SortSpec, ...]:
        # Only an ordered merge delivers sorted rows; every other kind interleaves.
        return self.spec.sort_keys if self.spec.kind == MERGE else ()

    def explain_params(self) -> dict[str, str]:
        return {"": self.spec.describe()}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        raise PlanError("an Exchange was left inside a stage fragment")


@dataclass(frozen=True)
class SharedReadExec(PhysicalPlan):
    """A read of a shared CTE body's output (``physical/shared.py``), before stages exist.

    A leaf: the body is planned apart from its readers and becomes one stage whose
    output every reader reads whole (its own copy of each destination's batches);
    ``build_stage_graph`` turns this into an ``ExchangeReadExec`` of that stage. Gives
    the partitioning of the body's output exchange (``spec``, set once the body is
    planned); never executed itself.
    """

    cte_id: int
    cte_name: str
    input_schema: pa.Schema
    spec: ExchangeSpec | None = None

    label = "SharedRead"

    @property
    def schema(self) -> pa.Schema:
        return self.input_schema

    def output_partitioning(self) -> Partitioning:
        if self.spec is None:
            raise PlanError(f"the shared CTE {self.cte_name!r} was read before it was planned")
        return exchange_partitioning(self.spec)

    def explain_params(self) -> dict[str, str]:
        return {"cte": self.cte_name}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        raise PlanError("a SharedRead was left inside a stage fragment")


@dataclass(frozen=True)
class ExchangeReadExec(PhysicalPlan):
    """Leaf of a consumer fragment: the batches the producer stage sent to this task."""

    stage_id: int
    spec: ExchangeSpec
    input_schema: pa.Schema

    label = "ExchangeRead"

    @property
    def schema(self) -> pa.Schema:
        return self.input_schema

    def output_partitioning(self) -> Partitioning:
        return exchange_partitioning(self.spec)

    def explain_params(self) -> dict[str, str]:
        return {"from": f"stage {self.stage_id}"}

    def execute(self, ctx: TaskContext) -> Iterator[pa.RecordBatch]:
        reader = ctx.exchange_inputs.get(self.stage_id)
        if reader is None:
            raise PlanError(f"task has no input from stage {self.stage_id}")
        yield from reader()


__all__ = [
    "BROADCAST",
    "GATHER",
    "HASH",
    "MERGE",
    "ROUND_ROBIN",
    "ExchangeExec",
    "ExchangeKind",
    "ExchangeReadExec",
    "ExchangeSpec",
    "SharedReadExec",
    "SortSpec",
    "exchange_partitioning",
    "sort_specs_str",
]
