"""The stage graph: the physical plan cut at every exchange.

A ``Stage`` is a fragment (a physical subtree whose leaves are scans, values or
``ExchangeRead``s) run by ``num_partitions`` tasks, plus where its output goes.
Stages are numbered leaves-first; the last is the root, whose output is the
query result. Stages are plain data and pickle (a task description carries one: runtime/protocol.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from shoal.exchange_spec import ExchangeSpec
from shoal.physical.operators.exchange import ExchangeExec, ExchangeReadExec, SharedReadExec
from shoal.physical.plan import PhysicalPlan

if TYPE_CHECKING:
    from shoal.physical.shared import SharedBody


@dataclass(frozen=True)
class Stage:
    id: int
    fragment: PhysicalPlan
    num_partitions: int
    inputs: tuple[int, ...]  # producer stage ids read by this fragment (each once)
    output: ExchangeSpec | None  # None for the root stage
    consumer: int | None = None  # the first (lowest-numbered) stage reading the output
    # Every stage reading the output, and how many ExchangeRead leaves read it in all:
    # more than one only for a shared CTE body (physical/shared.py).
    consumers: tuple[int, ...] = ()
    readers: int = 1
    # The shared CTE whose body this stage is, for EXPLAIN.
    shared_cte: str | None = None
    # Set on a producer stage the scheduler merged into its consumer's tasks at run
    # time (an adaptive broadcast switch): it never runs on its own.
    fused_into: int | None = None


@dataclass
class StageGraph:
    stages: list[Stage] = field(default_factory=list)
    # Lines EXPLAIN prints above the stages (how the query will run, what is off and why).
    notes: tuple[str, ...] = ()

    @property
    def root(self) -> Stage:
        return self.stages[-1]

    def stage(self, stage_id: int) -> Stage:
        return self.stages[stage_id]


def build_stage_graph(plan: PhysicalPlan, shared: tuple[SharedBody, ...] = ()) -> StageGraph:
    """Cut ``plan`` (and the shared CTE bodies it reads, first) at every exchange."""
    graph = StageGraph()
    shared_stage: dict[int, int] = {}  # cte id -> the stage of its body
    shared_name: dict[int, str] = {}

    def cut(node: PhysicalPlan, inputs: list[int]) -> PhysicalPlan:
        if isinstance(node, ExchangeExec):
            stage_id = stage_of(node)
            if stage_id not in inputs:
                inputs.append(stage_id)
            return ExchangeReadExec(stage_id, node.spec, node.input.schema)
        if isinstance(node, SharedReadExec):
            assert node.spec is not None
            stage_id = shared_stage[node.cte_id]
            if stage_id not in inputs:
                inputs.append(stage_id)
            return ExchangeReadExec(stage_id, node.spec, node.schema)
        children = node.children()
        if not children:
            return node
        return node.with_children(tuple(cut(c, inputs) for c in children))

    def stage_of(node: ExchangeExec, cte: str | None = None) -> int:
        child_inputs: list[int] = []
        fragment = cut(node.input, child_inputs)
        stage_id = len(graph.stages)
        graph.stages.append(
            Stage(
                stage_id,
                fragment,
                fragment.output_partitioning().num_partitions,
                tuple(child_inputs),
                node.spec,
                shared_cte=cte,
            )
        )
        return stage_id

    for body in shared:
        shared_name[body.cte_id] = body.cte_name
        shared_stage[body.cte_id] = stage_of(body.output, body.cte_name)
    root_inputs: list[int] = []
    root_fragment = cut(plan, root_inputs)
    root_id = len(graph.stages)
    graph.stages.append(
        Stage(
            root_id,
            root_fragment,
            root_fragment.output_partitioning().num_partitions,
            tuple(root_inputs),
            None,
        )
    )
    # Fill in each producer's consumers now that every stage has an id.
    consumers: dict[int, list[int]] = {}
    readers: dict[int, int] = {}
    for stage in graph.stages:
        for producer in stage.inputs:
            consumers.setdefault(producer, []).append(stage.id)
        for op in stage.fragment.walk():
            if isinstance(op, ExchangeReadExec):
                readers[op.stage_id] = readers.get(op.stage_id, 0) + 1
    for stage in list(graph.stages):
        if stage.id in consumers:
            who = tuple(sorted(consumers[stage.id]))
            graph.stages[stage.id] = replace(
                stage, consumer=who[0], consumers=who, readers=readers.get(stage.id, 1)
            )
    return graph
