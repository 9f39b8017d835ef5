"""ShareScans: scans of one Parquet source in one query decode each row group once.

Finds the Parquet scans of each source (by identity) in the final physical plan; when
there are two or more, makes them a share group (``operators/scan_share.py``): every
member reads the union of the group's columns, and counts, per row group, how many
members will read it (after each member's own min/max pruning), so the cache knows
when a decoded row group has been handed to everyone. Changes nothing else: the
members keep their filters, splits and task assignments.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from shoal.catalog.sources import ParquetSource
from shoal.expr.nodes import ColumnRef, Expr, rename_columns
from shoal.physical.context import Settings
from shoal.physical.operators.scan import ScanExec
from shoal.physical.operators.scan_share import ScanShare, SplitKey
from shoal.physical.plan import PhysicalPlan, replace_nodes


def share_scans(plan: PhysicalPlan, settings: Settings) -> PhysicalPlan:
    if settings.scan_share_bytes <= 0:
        return plan
    groups: dict[int, list[ScanExec]] = defaultdict(list)
    for node in plan.walk():
        if isinstance(node, ScanExec) and isinstance(node.source, ParquetSource):
            groups[id(node.source)].append(node)
    shared: dict[int, PhysicalPlan] = {}
    for number, members in enumerate(m for m in groups.values() if len(m) > 1):
        columns = tuple(dict.fromkeys(c for scan in members for c in scan.columns))
        readers: dict[SplitKey, int] = defaultdict(int)
        for scan in members:
            for key in _row_groups_read(scan):
                readers[key] += 1
        filters = {_source_filter(scan) for scan in members}
        common = filters.pop() if len(filters) == 1 else None
        share = ScanShare(
            group=f"{members[0].table}#{number}",
            columns=columns,
            readers=tuple(sorted(readers.items())),
            budget_bytes=settings.scan_share_bytes,
            filter=common,
        )
        for scan in members:
            shared[id(scan)] = replace(scan, share=share)
    return replace_nodes(plan, shared) if shared else plan


def _source_filter(scan: ScanExec) -> Expr | None:
    """The scan's pushed filter over source column names (members name columns apart)."""
    if scan.filter is None:
        return None
    schema = scan.schema
    return rename_columns(
        scan.filter,
        {
            name: ColumnRef(column, schema.field(name).type)
            for name, column in zip(scan.names, scan.columns, strict=True)
        },
    )


def _row_groups_read(scan: ScanExec) -> list[SplitKey]:
    """The (file, row group) keys this scan's tasks will decode, after pruning."""
    keys = []
    source = scan.source
    assert isinstance(source, ParquetSource)
    for index in sorted({i for share in scan.assignment for i in share}):
        split = scan.splits[index]
        if split.row_groups is None:
            continue
        try:
            footer = source.footer(split.path)
        except OSError:
            continue  # the scan itself reports the missing file
        kept = tuple(rg for rg in split.row_groups if scan.row_group_may_match(footer, rg))
        if kept:
            keys.append((split.path, kept))
    return keys
