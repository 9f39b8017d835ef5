"""KeepGroupKeysEncoded: low-cardinality string group keys stay dictionary-encoded
from the scan to the aggregate that groups on them.

A scan reads low-cardinality string columns as dictionaries (``ScanExec``) and makes
them plain strings before they leave it. When such a column's only reader is a
partial or single aggregate in the same pipeline, as a group key, reached through
projections that merely pass it on, the scan may leave it encoded: the aggregate
groups on the dictionary's indices (Arrow's grouper handles dictionary keys; ~2.5x
cheaper than hashing the strings) and turns only the group rows back into strings.
Q1's ``GROUP BY l_returnflag, l_linestatus`` is the case in point.

The rule is conservative: any other use of the column on the way (an expression
over it, an aggregate argument, a filter or join in between) leaves it plain.
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa

from shoal.expr.nodes import ColumnRef
from shoal.physical.operators.aggregate import FINAL, HashAggregateExec
from shoal.physical.operators.project import ProjectExec
from shoal.physical.operators.scan import ScanExec
from shoal.physical.plan import PhysicalPlan, replace_nodes


def keep_group_keys_encoded(plan: PhysicalPlan) -> PhysicalPlan:
    encoded: dict[int, frozenset[str]] = {}
    scans: dict[int, ScanExec] = {}
    for node in plan.walk():
        if isinstance(node, HashAggregateExec) and node.mode != FINAL:
            found = _encodable_keys(node)
            if found is not None:
                scan, names = found
                scans[id(scan)] = scan
                encoded[id(scan)] = encoded.get(id(scan), frozenset()) | names
    marked = {key: replace(scans[key], encoded=names) for key, names in encoded.items()}
    return replace_nodes(plan, marked) if marked else plan


def _encodable_keys(agg: HashAggregateExec) -> tuple[ScanExec, frozenset[str]] | None:
    """The scan below ``agg`` and its output columns that only feed ``agg``'s keys."""
    keys = {e.name for _, e in agg.keys if isinstance(e, ColumnRef)}
    for _, e in agg.keys:
        if not isinstance(e, ColumnRef):
            keys -= e.columns()
    for a in agg.aggs:
        if a.arg is not None:
            keys -= a.arg.columns()
    node = agg.input
    while keys and isinstance(node, ProjectExec):
        below: set[str] = set()
        for name, e in node.exprs:
            if isinstance(e, ColumnRef):
                if name in keys:
                    below.add(e.name)
        for name, e in node.exprs:
            # A source column passed on to anything but a key, or used in an
            # expression, must arrive plain.
            if not (isinstance(e, ColumnRef) and name in keys):
                below -= e.columns()
        keys = below
        node = node.input
    if not keys or not isinstance(node, ScanExec):
        return None
    strings = {f.name for f in node.schema if pa.types.is_string(f.type)}
    keys &= strings
    return (node, frozenset(keys)) if keys else None
