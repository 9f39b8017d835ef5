"""The stage graph: the physical plan cut at every exchange.

A ``Stage`` is a fragment (a physical subtree whose leaves are scans, values or
``ExchangeRead``s) run by ``num_partitions`` tasks, plus where its output goes.
Stages are numbered leaves-first; the last is the root, whose output is the
query result. Stages are plain data and pickle (a task description carries one: runtime/protocol.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.exchange_spec import ExchangeSpec
from shoal.physical.operators.exchange import ExchangeExec, ExchangeReadExec
from shoal.physical.plan import PhysicalPlan


@dataclass(frozen=True)
class Stage:
    id: int
    fragment: PhysicalPlan
    num_partitions: int
    inputs: tuple[int, ...]  # producer stage ids read by this fragment
    output: ExchangeSpec | None  # None for the root stage
    consumer: int | None = None
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


def build_stage_graph(plan: PhysicalPlan) -> StageGraph:
    graph = StageGraph()

    def cut(node: PhysicalPlan, inputs: list[int]) -> PhysicalPlan:
        if isinstance(node, ExchangeExec):
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
                )
            )
            inputs.append(stage_id)
            return ExchangeReadExec(stage_id, node.spec, node.input.schema)
        children = node.children()
        if not children:
            return node
        return node.with_children(tuple(cut(c, inputs) for c in children))

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
    # Fill in each producer's consumer now that every stage has an id.
    for stage in list(graph.stages):
        for producer in stage.inputs:
            p = graph.stages[producer]
            graph.stages[producer] = Stage(
                p.id, p.fragment, p.num_partitions, p.inputs, p.output, stage.id
            )
    return graph
