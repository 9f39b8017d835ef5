"""EnforceSorting: the one rule that places sorts an operator's input order needs.

Runs after EnforceDistribution (exchanges other than an ordered merge destroy order, so
a sort must sit above the exchange that feeds its consumer). Bottom-up, for every input
whose ``output_ordering`` does not start with the operator's
``required_input_orderings`` entry, it inserts a partition-preserving ``SortExec`` on
exactly the needed keys; a partition-preserving sort whose input is already in its
order is removed. ORDER BY sorts (which EnforceDistribution turned into sort + merge)
are left alone. Running it twice changes nothing more.
"""

from __future__ import annotations

from shoal.physical.operators.sort import SortExec
from shoal.physical.plan import PhysicalPlan, ordering_satisfies


def enforce_sorting(plan: PhysicalPlan) -> PhysicalPlan:
    children = tuple(enforce_sorting(c) for c in plan.children())
    if (
        isinstance(plan, SortExec)
        and plan.preserve_partitioning
        and ordering_satisfies(children[0].output_ordering(), plan.keys)
    ):
        return children[0]
    needs = plan.required_input_orderings()
    placed = []
    for child, need in zip(children, needs, strict=True):
        if need and not ordering_satisfies(child.output_ordering(), need):
            child = SortExec(child, need, preserve_partitioning=True)
        placed.append(child)
    if not children:
        return plan
    new = tuple(placed)
    if all(a is b for a, b in zip(new, plan.children(), strict=True)):
        return plan
    return plan.with_children(new)
