"""SanityCheck: runs last, changes nothing, rejects a plan whose needs are unmet."""

from __future__ import annotations

from shoal.errors import PlanError
from shoal.physical.operators.exchange import MERGE, ExchangeExec
from shoal.physical.operators.sort import SortExec
from shoal.physical.partitioning import Replicated, satisfies
from shoal.physical.plan import PhysicalPlan, ordering_satisfies, sort_specs_str


def sanity_check(plan: PhysicalPlan) -> PhysicalPlan:
    for node in plan.walk():
        children = node.children()
        for child, need in zip(children, node.required_input_distributions(), strict=True):
            have = child.output_partitioning()
            if not satisfies(have, need):
                raise PlanError(
                    f"{node.explain_line()} needs {need} from its input, which has {have}"
                )
        for child, order in zip(children, node.required_input_orderings(), strict=True):
            if not ordering_satisfies(child.output_ordering(), order):
                raise PlanError(
                    f"{node.explain_line()} needs its input sorted by {sort_specs_str(order)}, "
                    f"which is sorted by {sort_specs_str(child.output_ordering())}"
                )
        counts = {
            c.output_partitioning().num_partitions
            for c in children
            if not isinstance(c.output_partitioning(), Replicated)
        }
        if len(children) > 1 and len(counts) > 1:
            raise PlanError(
                f"{node.explain_line()} has inputs with partition counts {sorted(counts)}"
            )
        replicated = [
            c.output_partitioning()
            for c in children
            if isinstance(c.output_partitioning(), Replicated)
        ]
        if replicated and counts and any(r.num_partitions not in counts for r in replicated):
            raise PlanError(f"{node.explain_line()} has a broadcast input of the wrong width")
        if isinstance(node, ExchangeExec) and node.spec.kind == MERGE:
            if not isinstance(node.input, SortExec):
                raise PlanError("an ordered merge exchange needs sorted input")
    return plan
