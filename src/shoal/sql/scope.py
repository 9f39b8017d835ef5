"""Name resolution: which columns a FROM clause makes visible, under which qualifiers."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from shoal.errors import AmbiguousColumnError, UnknownColumnError
from shoal.expr.nodes import ColumnRef


@dataclass(frozen=True)
class ScopeColumn:
    qualifier: str | None  # table alias (lower case) or None
    name: str  # the name the user writes
    internal: str  # the plan's unique column name
    type: pa.DataType
    # The second copy of a JOIN ... USING key: reachable only qualified, not by * or bare name.
    merged_away: bool = False


class Scope:
    """The columns visible to an expression, in FROM order."""

    def __init__(self, columns: list[ScopeColumn], outer: Scope | None = None):
        self.columns = columns
        self.outer = outer

    def resolve(self, name: str, qualifier: str | None = None) -> ColumnRef:
        lname = name.lower()
        lqual = qualifier.lower() if qualifier else None
        hits = [
            c
            for c in self.columns
            if c.name.lower() == lname
            and (c.qualifier == lqual if lqual is not None else not c.merged_away)
        ]
        if len(hits) > 1:
            raise AmbiguousColumnError(
                f"column reference '{name}' is ambiguous: it is in "
                + ", ".join(sorted({h.qualifier or "?" for h in hits}))
            )
        if not hits:
            if self.outer is not None:
                return self.outer.resolve(name, qualifier)
            known = [c.name for c in self.columns]
            shown = f"{qualifier}.{name}" if qualifier else name
            raise UnknownColumnError(shown, known)
        return ColumnRef(hits[0].internal, hits[0].type)

    def qualified(self, qualifier: str) -> list[ScopeColumn]:
        q = qualifier.lower()
        cols = [c for c in self.columns if c.qualifier == q]
        if not cols:
            known = sorted({c.qualifier for c in self.columns if c.qualifier})
            raise UnknownColumnError(f"{qualifier}.*", known)
        return cols


class NameGenerator:
    """Unique internal column names for one query: ``x``, ``x_2``, ``x_3``..."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def fresh(self, base: str) -> str:
        base = _clean(base) or "col"
        name = base
        n = 1
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._used.add(name)
        return name


def _clean(base: str) -> str:
    out = "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in base.lower())
    while "__" in out:
        out = out.replace("__", "_")
    return out.strip("_")[:40]
