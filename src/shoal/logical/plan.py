"""Logical plan nodes: what a query computes, with no notion of where or how.

Every node is immutable and knows its output schema. Output column names are
the query's internal names, unique within one query; the user-facing names live
on ``LogicalQuery.output_names``. Nodes compute their schema once
(``cached_property``): the optimizer asks for it thousands of times per query.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
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
    #: Key values of a group that exists even when no row has them: the grand total
    #: of GROUPING SETS with an empty set (one row, as over no rows SUM is NULL).
    always_group: tuple[Any, ...] | None = None
    #: A pre-aggregation (``optimizer/eager_aggregation.py``): its groups may repeat
    #: (each task groups its own rows; planned as a partial aggregate with no exchange)
    #: and an aggregate above merges them. Only sum / count / count(*) / min / max.
    partial: bool = False

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
        kind = "Aggregate[partial]" if self.partial else "Aggregate"
        return f"{kind} keys=[{keys}] aggs=[{aggs}]"


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


# ------------------------------------------------------------------ windows


class FrameUnit(Enum):
    """How a window frame's offsets count: physical rows, distance in the ORDER BY value,
    or peer groups (rows with equal ORDER BY keys)."""

    ROWS = "ROWS"
    RANGE = "RANGE"
    GROUPS = "GROUPS"


class BoundKind(Enum):
    UNBOUNDED_PRECEDING = "UNBOUNDED PRECEDING"
    PRECEDING = "PRECEDING"
    CURRENT_ROW = "CURRENT ROW"
    FOLLOWING = "FOLLOWING"
    UNBOUNDED_FOLLOWING = "UNBOUNDED FOLLOWING"


@dataclass(frozen=True)
class FrameBound:
    """One end of a frame; ``offset`` (a non-negative number) for n PRECEDING / FOLLOWING.
    A RANGE offset over a DATE key counts days."""

    kind: BoundKind
    offset: Any = None

    def __str__(self) -> str:
        if self.kind in (BoundKind.PRECEDING, BoundKind.FOLLOWING):
            return f"{self.offset} {self.kind.value}"
        return self.kind.value


class FrameExclude(Enum):
    """A frame's EXCLUDE clause: which rows around the current one leave its frame."""

    NO_OTHERS = "NO OTHERS"
    CURRENT_ROW = "CURRENT ROW"
    #: The current row and its peers.
    GROUP = "GROUP"
    #: The current row's peers, not the row itself.
    TIES = "TIES"


@dataclass(frozen=True)
class WindowFrame:
    unit: FrameUnit
    start: FrameBound
    end: FrameBound
    exclude: FrameExclude = FrameExclude.NO_OTHERS

    def __str__(self) -> str:
        text = f"{self.unit.value} BETWEEN {self.start} AND {self.end}"
        if self.exclude != FrameExclude.NO_OTHERS:
            text += f" EXCLUDE {self.exclude.value}"
        return text


#: The frame SQL gives a window with ORDER BY and no frame clause.
DEFAULT_ORDERED_FRAME = WindowFrame(
    FrameUnit.RANGE, FrameBound(BoundKind.UNBOUNDED_PRECEDING), FrameBound(BoundKind.CURRENT_ROW)
)
#: The whole partition (a window without ORDER BY and no frame clause).
WHOLE_PARTITION = WindowFrame(
    FrameUnit.ROWS,
    FrameBound(BoundKind.UNBOUNDED_PRECEDING),
    FrameBound(BoundKind.UNBOUNDED_FOLLOWING),
)


class WindowFunction(Enum):
    ROW_NUMBER = "row_number"
    RANK = "rank"
    DENSE_RANK = "dense_rank"
    PERCENT_RANK = "percent_rank"
    CUME_DIST = "cume_dist"
    NTILE = "ntile"
    LAG = "lag"
    LEAD = "lead"
    FIRST_VALUE = "first_value"
    LAST_VALUE = "last_value"
    NTH_VALUE = "nth_value"
    COUNT_STAR = "count_star"
    COUNT = "count"
    SUM = "sum"
    AVG = "avg"
    MIN = "min"
    MAX = "max"
    #: Holistic aggregates over the whole partition, its rows sorted by the argument
    #: (NULLS LAST); how median / quantile_cont / quantile_disc are computed.
    QUANTILE_CONT = "quantile_cont"
    QUANTILE_DISC = "quantile_disc"
    #: The partition's non-NULL strings in window order, joined by ``separator``, on the
    #: partition's first row only (NULL on the others).
    STRING_AGG = "string_agg"
    #: The most frequent non-NULL value, rows sorted by the argument (ties: the smallest).
    MODE = "mode"
    #: The partition's values (NULLs too) in window order as one list, given on the
    #: partition's first row only (NULL on the others: the list is not copied per row).
    ARRAY_AGG = "array_agg"
    #: ``arg`` at the first row of the frame holding the smallest (largest) ``by``,
    #: among rows where neither is NULL (the binder nulls ``arg`` where ``by`` is NULL).
    ARG_MIN = "arg_min"
    ARG_MAX = "arg_max"
    #: ``arg_min(a, b, n)`` / ``arg_max``: the list of ``a`` at the ``n`` rows of the
    #: frame with the smallest (largest) ``b``, in that order (ties in window order),
    #: among rows where neither is NULL; NULL when there are none. ``offset`` is ``n``.
    #: Without ``over_frame`` (the GROUP BY form) given on the partition's first row only.
    ARG_MIN_N = "arg_min_n"
    ARG_MAX_N = "arg_max_n"


#: The frame aggregates computed by listing a frame's rows (DISTINCT count / sum / avg,
#: mode, quantiles, lists, strings) that a frame with EXCLUDE supports as well.
SPAN_FUNCTIONS = frozenset(
    {
        WindowFunction.COUNT,
        WindowFunction.SUM,
        WindowFunction.AVG,
        WindowFunction.MODE,
        WindowFunction.QUANTILE_CONT,
        WindowFunction.QUANTILE_DISC,
        WindowFunction.ARRAY_AGG,
        WindowFunction.STRING_AGG,
    }
)

#: Functions that read a frame (the others read only the partition and the peer groups).
FRAMED_FUNCTIONS = frozenset(
    {
        WindowFunction.FIRST_VALUE,
        WindowFunction.LAST_VALUE,
        WindowFunction.NTH_VALUE,
        WindowFunction.COUNT_STAR,
        WindowFunction.COUNT,
        WindowFunction.SUM,
        WindowFunction.AVG,
        WindowFunction.MIN,
        WindowFunction.MAX,
        WindowFunction.ARG_MIN,
        WindowFunction.ARG_MAX,
        WindowFunction.ARG_MIN_N,
        WindowFunction.ARG_MAX_N,
    }
)


@dataclass(frozen=True)
class WindowCall:
    """One window function over the input's columns.

    ``arg`` is a column of the input (None for row_number, rank, ..., count(*));
    ``default`` (lag/lead) is a column or literal of the result type; ``offset`` is
    lag/lead's distance, ntile's bucket count or nth_value's position.
    """

    fn: WindowFunction
    arg: Expr | None
    type: pa.DataType
    frame: WindowFrame
    offset: int = 1
    default: Expr | None = None
    #: The quantile (0..1) of QUANTILE_CONT / QUANTILE_DISC.
    fraction: float = 0.0
    #: STRING_AGG's separator.
    separator: str = ","
    #: Over the distinct values of ``arg`` only (COUNT / SUM / AVG / ARRAY_AGG /
    #: STRING_AGG).
    distinct: bool = False
    #: ARG_MIN / ARG_MAX's ordering argument (a column of the input).
    by: Expr | None = None
    #: The window form of MODE / QUANTILE_* / STRING_AGG / ARRAY_AGG: each row's value
    #: over its frame, in window order. Without it these read the whole partition sorted
    #: by the argument and give lists and strings on its first row only (the form
    #: ``sql/quantiles.py`` puts under a GROUP BY).
    over_frame: bool = False
    #: ORDER BY inside the aggregate (``string_agg(s, ',' ORDER BY t) OVER …``): the
    #: order of each frame's values for ARRAY_AGG / STRING_AGG, and which row
    #: FIRST_VALUE / LAST_VALUE take (``first(x ORDER BY y)``); keys are input columns.
    within: tuple[SortKey, ...] = ()
    #: IGNORE NULLS (FIRST_VALUE / LAST_VALUE / NTH_VALUE / LAG / LEAD): only the rows
    #: where ``arg`` is not NULL count (any_value is FIRST_VALUE IGNORE NULLS).
    ignore_nulls: bool = False
    #: ARRAY_AGG's FILTER (WHERE …): a BOOLEAN column of the input; only the rows where
    #: it is true are in the lists (array_agg keeps NULLs, so the filter cannot be a
    #: NULLed argument as for the other aggregates).
    keep: Expr | None = None

    def inputs(self) -> tuple[Expr, ...]:
        """The input columns (and literals) the call reads."""
        keys = tuple(k.expr for k in self.within)
        extra = (self.arg, self.default, self.by, self.keep)
        return tuple(e for e in extra if e is not None) + keys

    def __str__(self) -> str:
        args = [] if self.arg is None else [str(self.arg)]
        if self.distinct:
            args = [f"DISTINCT {a}" for a in args]
        if self.by is not None:
            args.append(str(self.by))
        if self.fn in (WindowFunction.LAG, WindowFunction.LEAD, WindowFunction.NTILE):
            args.append(str(self.offset))
        if self.fn in (
            WindowFunction.NTH_VALUE,
            WindowFunction.ARG_MIN_N,
            WindowFunction.ARG_MAX_N,
        ):
            args.append(str(self.offset))
        if self.default is not None:
            args.append(str(self.default))
        if self.fn in (WindowFunction.QUANTILE_CONT, WindowFunction.QUANTILE_DISC):
            args.append(str(self.fraction))
        if self.fn == WindowFunction.STRING_AGG:
            args.append(repr(self.separator))
        if self.within:
            args[-1] += " ORDER BY " + ", ".join(str(k) for k in self.within)
        if self.ignore_nulls:
            args[-1] += " IGNORE NULLS"
        name = "count" if self.fn == WindowFunction.COUNT_STAR else self.fn.value
        text = f"{name}({', '.join(args) or ('*' if self.fn == WindowFunction.COUNT_STAR else '')})"
        if self.keep is not None:
            text += f" FILTER (WHERE {self.keep})"
        if self.fn in FRAMED_FUNCTIONS or self.over_frame:
            text += f" {self.frame}"
        return text


@dataclass(frozen=True)
class Window(LogicalPlan):
    """Window functions sharing one PARTITION BY / ORDER BY; output = input columns then
    one column per call. Partition and order keys are columns of the input."""

    input: LogicalPlan
    partition_by: tuple[str, ...]
    order_by: tuple[SortKey, ...]
    calls: tuple[tuple[str, WindowCall], ...]

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        fields = list(self.input.schema)
        fields += [pa.field(n, c.type) for n, c in self.calls]
        return pa.schema(fields)

    def describe(self) -> str:
        part = ", ".join(self.partition_by)
        order = ", ".join(str(k) for k in self.order_by)
        calls = ", ".join(f"{c} AS {n}" for n, c in self.calls)
        return f"Window partition=[{part}] order=[{order}] [{calls}]"


@dataclass(frozen=True)
class Expand(LogicalPlan):
    """Each input row comes out once per projection list (all lists have the same names
    and types): GROUPING SETS read their input once and aggregate every set at once."""

    input: LogicalPlan
    projections: tuple[tuple[tuple[str, Expr], ...], ...]

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        return pa.schema([pa.field(n, e.type) for n, e in self.projections[0]])

    def describe(self) -> str:
        return f"Expand x{len(self.projections)} [{', '.join(self.schema.names)}]"


@dataclass(frozen=True)
class Unnest(LogicalPlan):
    """``unnest(list)`` in a SELECT list: each input row comes out once per element of
    its list column ``column``, which then holds the element (an empty or NULL list
    gives no row); the other columns repeat."""

    input: LogicalPlan
    column: str

    def children(self) -> tuple[LogicalPlan, ...]:
        return (self.input,)

    def with_children(self, children: tuple[LogicalPlan, ...]) -> LogicalPlan:
        return replace(self, input=children[0])

    @cached_property
    def schema(self) -> pa.Schema:
        fields = []
        for f in self.input.schema:
            if f.name == self.column:
                fields.append(pa.field(f.name, f.type.value_type))
            else:
                fields.append(f)
        return pa.schema(fields)

    def describe(self) -> str:
        return f"Unnest {self.column}"


@dataclass(frozen=True)
class CteRead(LogicalPlan):
    """One reference to a common table expression that is computed once for all of its
    references (a WITH query read more than once whose body joins or aggregates).

    ``body`` is the CTE's plan, the same for every reference with this ``cte_id``; the
    optimizer treats the read as a leaf (nothing moves into the body through it) and
    optimizes the body on its own, for the union of the columns its references read.
    ``columns`` are the body's output columns this reference reads, ``names`` its own
    names for them (two references in one query need different names: a self-join).
    """

    cte_id: int
    cte_name: str
    # Compared by id: every reference holds the same body; hashing it would walk it.
    body: LogicalPlan = field(compare=False, repr=False)
    columns: tuple[str, ...]
    names: tuple[str, ...]

    @cached_property
    def schema(self) -> pa.Schema:
        fields = {f.name: f for f in self.body.schema}
        return pa.schema(
            [pa.field(n, fields[c].type) for c, n in zip(self.columns, self.names, strict=True)]
        )

    def body_name(self, name: str) -> str:
        """The body's column behind this reference's column ``name``."""
        return self.columns[self.names.index(name)]

    def describe(self) -> str:
        cols = ", ".join(
            n if c == n else f"{c} AS {n}" for c, n in zip(self.columns, self.names, strict=True)
        )
        return f"CteRead {self.cte_name} #{self.cte_id} [{cols}]"


def worth_sharing(plan: LogicalPlan) -> bool:
    """Whether ``plan`` joins, aggregates or has windows: worth computing once for many
    readers rather than once per reader (a scan and its filters are cheaper to repeat)."""
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, Join | Aggregate | Window | CteRead):
            return True
        stack.extend(node.children())
    return False


def cte_reads(plan: LogicalPlan) -> list[CteRead]:
    """Every ``CteRead`` under ``plan``, not looking into their bodies."""
    found: list[CteRead] = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, CteRead):
            found.append(node)
        stack.extend(node.children())
    return found
