"""Logical plan nodes: what a query computes, with no notion of where or how.

Every node is immutable and knows its output schema. Output column names are
the query's internal names, unique within one query; the user-facing names live
on ``LogicalQuery.output_names``. Nodes compute their schema once
(``cached_property``): the optimizer asks for it thousands of times per query.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import pyarrow as pa

from shoal.catalog.sources import TableSource
from shoal.expr.nodes import Expr
from shoal.types import sql_type_name


class LogicalPlan:
    def children(self) -> tuple[LogicalPlan, ...]:
        return ()

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        assert not children
        return self

    @property
    def schema(self) -> pa.Schema:
        raise NotImplementedError

    def describe(self) -> str:
        return type(self).__name__

    def pretty(self, indent: int = 0) -> str:
        lines = ["  " * indent + self.describe()]
        for c in self.children():
            lines.append(c.pretty(indent + 1))
        return "\n".join(lines)


@dataclass(frozen=True)
class SortKey:
    expr: Expr
    ascending: bool = True
    nulls_first: bool = False

    def __str__(self) -> str:
        direction = "ASC" if self.ascending else "DESC"
        # Only print NULLS when it is not the default (NULLS LAST for both).
        nulls = " NULLS FIRST" if self.nulls_first else ""
        return f"{self.expr} {direction}{nulls}"


AGGREGATE_FUNCTIONS = ("count_star", "count", "sum", "avg", "min", "max")


@dataclass(frozen=True)
class AggCall:
    """An aggregate function call. ``arg`` is None for COUNT(*)."""

    fn: str
    arg: Expr | None
    type: pa.DataType
    distinct: bool = False

    def __str__(self) -> str:
        if self.fn == "count_star":
            return "count(*)"
        return f"{self.fn}({'DISTINCT ' if self.distinct else ''}{self.arg})"


@dataclass(frozen=True)
class Scan(LogicalPlan):
    """Read ``columns`` of a table; ``names`` are their internal names, in order."""

    table: str
    # Compared by identity: a re-registered table is another plan (estimates are cached).
    source: TableSource = field(repr=False)
    columns: tuple[str, ...]
    names: tuple[str, ...]
    filters: tuple[Expr, ...] = ()

    @cached_property
    def schema(self) -> pa.Schema:
        fields = {f.name: f for f in self.source.schema}
        return pa.schema(
            [pa.field(n, fields[c].type) for c, n in zip(self.columns, self.names, strict=True)]
        )

    def describe(self) -> str:
        cols = ", ".join(self.names)
        filt = f" filter=[{' AND '.join(str(f) for f in self.filters)}]" if self.filters else ""
        return f"Scan {self.table} [{cols}]{filt}"


@dataclass(frozen=True)
class Values(LogicalPlan):
    rows: tuple[tuple[Any, ...], ...]
    out_schema: pa.Schema = field(compare=False)

    @cached_property
    def schema(self) -> pa.Schema:
        return self.out_schema

    def describe(self) -> str:
        return f"Values rows={len(self.rows)}"


@dataclass(frozen=True)
class Filter(LogicalPlan):
    input: LogicalPlan
    predicate: Expr

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def describe(self) -> str:
        return f"Filter {self.predicate}"


@dataclass(frozen=True)
class Project(LogicalPlan):
    input: LogicalPlan
    exprs: tuple[tuple[str, Expr], ...]

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, e.type) for n, e in self.exprs])

    def describe(self) -> str:
        return "Project " + ", ".join(n if str(e) == n else f"{e} AS {n}" for n, e in self.exprs)


@dataclass(frozen=True)
class Aggregate(LogicalPlan):
    """Group by ``keys``; output = keys then aggregates, under their names."""

    input: LogicalPlan
    keys: tuple[tuple[str, Expr], ...]
    aggregates: tuple[tuple[str, AggCall], ...]

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        fields = [pa.field(n, e.type) for n, e in self.keys]
        fields += [pa.field(n, a.type) for n, a in self.aggregates]
        return pa.schema(fields)

    def describe(self) -> str:
        keys = ", ".join(n for n, _ in self.keys)
        aggs = ", ".join(f"{a} AS {n}" for n, a in self.aggregates)
        return f"Aggregate keys=[{keys}] aggs=[{aggs}]"


@dataclass(frozen=True)
class Sort(LogicalPlan):
    input: LogicalPlan
    keys: tuple[SortKey, ...]

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def describe(self) -> str:
        return "Sort " + ", ".join(str(k) for k in self.keys)


@dataclass(frozen=True)
class Limit(LogicalPlan):
    input: LogicalPlan
    limit: int | None
    offset: int = 0

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        return self.input.schema

    def describe(self) -> str:
        return f"Limit {self.limit} offset {self.offset}"


@dataclass(frozen=True)
class UnionAll(LogicalPlan):
    """Concatenate inputs; the output takes the first input's names (types already unified)."""

    inputs: tuple[LogicalPlan, ...]

    def children(self) -> tuple[LogicalPlan, ...]:
        return self.inputs

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, inputs=children)

    @cached_property
    def schema(self) -> pa.Schema:
        return self.inputs[0].schema

    def describe(self) -> str:
        return "UnionAll"


@dataclass(frozen=True)
class LogicalQuery:
    """A bound query: the plan and the names the user sees for its columns."""

    plan: LogicalPlan
    output_names: tuple[str, ...]


def describe_schema(schema: pa.Schema) -> str:
    return ", ".join(f"{f.name} {sql_type_name(f.type)}" for f in schema)


JOIN_KINDS = ("inner", "left", "right", "full", "semi", "anti", "cross")


@dataclass(frozen=True)
class Join(LogicalPlan):
    """Join ``left`` and ``right`` on ``condition`` (None: every pair).

    semi / anti keep the left rows with / without a match and output only the
    left columns. ``null_aware`` marks NOT IN: an anti join that returns
    nothing when the right side holds a NULL key, and never returns a left row
    whose key is NULL unless the right side is empty. ``null_equal`` makes
    NULL keys match each other (INTERSECT / EXCEPT).
    """

    left: LogicalPlan
    right: LogicalPlan
    kind: str
    condition: Expr | None = None
    null_aware: bool = False
    null_equal: bool = False
    # A scalar subquery's side: more than one right row is an error.
    single_row: bool = False

    def __post_init__(self) -> None:
        if self.kind not in JOIN_KINDS:
            raise ValueError(f"unknown join kind {self.kind}")

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.left, self.right)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, left=children[0], right=children[1])

    @cached_property
    def schema(self) -> pa.Schema:
        if self.kind in ("semi", "anti"):
            return self.left.schema
        return pa.schema(list(self.left.schema) + list(self.right.schema))

    def describe(self) -> str:
        cond = f" on {self.condition}" if self.condition is not None else ""
        flags = " null_aware" if self.null_aware else ""
        return f"Join[{self.kind}]{cond}{flags}"
