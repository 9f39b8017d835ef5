"""Common table expressions read more than once: bound once, shared by every reference.

A WITH query referenced once is bound where it is used, as a subquery. One referenced
two or more times whose body joins, aggregates or has windows (where recomputing it
costs) is bound once; each reference becomes a ``CteRead`` of that one body under
fresh column names, so the body is optimized once and runs as one stage whose output
every reading stage reads (``physical/shared.py``). A body that is a scan with a
filter is not shared: each reference's own filters are pushed into its scan instead,
and scans of one table already decode each row group once (ShareScans).

References are counted on the syntax tree of the query that holds the WITH (its
body, and the bodies of the other CTEs of that WITH); a name shadowed by a nested
WITH is counted too, which only makes sharing more likely, never wrong: a shared body
gives the same rows as one bound per reference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlglot import exp

from shoal.logical.plan import CteRead, LogicalPlan, worth_sharing
from shoal.sql.scope import NameGenerator


@dataclass
class _Shared:
    cte_id: int
    body: LogicalPlan
    out_names: list[str]


class SharedCtes:
    def __init__(self, names: NameGenerator):
        self._names = names
        self._references: dict[int, int] = {}  # id(exp.CTE) -> references in its query
        self._bound: dict[int, _Shared | None] = {}  # id(exp.CTE) -> its shared body
        self._next_id = 0

    def count(self, query: exp.Expr, ctes: list[exp.CTE]) -> None:
        """Count the references to each CTE of ``query``'s WITH."""
        by_name = {cte.alias.lower(): cte for cte in ctes}
        counts = dict.fromkeys(by_name, 0)
        for table in query.find_all(exp.Table):
            name = table.name.lower()
            if (
                name in counts
                and not table.args.get("db")
                and isinstance(table.this, exp.Identifier)
            ):
                counts[name] += 1
        for name, cte in by_name.items():
            self._references[id(cte)] = counts[name]

    def read(
        self,
        cte: exp.CTE,
        bind_body: Callable[[], tuple[LogicalPlan, list[str]]],
    ) -> tuple[LogicalPlan, list[str]] | None:
        """A ``CteRead`` of ``cte``'s shared body and its output names, or None when
        the CTE is bound per reference (read once, or cheap to recompute)."""
        if self._references.get(id(cte), 0) < 2:
            return None
        key = id(cte)
        if key not in self._bound:
            body, out_names = bind_body()
            if not worth_sharing(body):
                self._bound[key] = None
                return body, out_names  # this reference uses the body it just bound
            # Ids follow binding order, so a body only reads CTEs with smaller ids.
            self._bound[key] = _Shared(self._next_id, body, out_names)
            self._next_id += 1
        shared = self._bound[key]
        if shared is None:
            return None
        columns = tuple(shared.body.schema.names)
        names = tuple(self._names.fresh(c) for c in columns)
        read = CteRead(shared.cte_id, cte.alias.lower(), shared.body, columns, names)
        return read, list(shared.out_names)
