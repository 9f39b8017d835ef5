"""Bound, typed scalar expressions: immutable plain data shared by every plan layer.

Columns are referred to by the engine's internal (unique per query) names, so
plans can be rewritten — pushed down, pruned, cut into stages — without
renumbering. Every node knows its Arrow result type.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pyarrow as pa

from shoal.types import sql_type_name


class Expr:
    """Base of bound expressions."""

    type: pa.DataType

    def children(self) -> tuple[Expr, ...]:
        return ()

    def walk(self) -> Iterator[Expr]:
        """Every node, pre-order. Iterative: a nested generator per level would make
        walking a 5,000-term AND chain quadratic (and recurse 5,000 deep)."""
        stack: list[Expr] = [self]
        while stack:
            e = stack.pop()
            yield e
            stack.extend(reversed(e.children()))

    def columns(self) -> set[str]:
        return set(self.column_set)

    @cached_property
    def column_set(self) -> frozenset[str]:
        """The columns this expression reads; computed once per node from its children's."""
        if isinstance(self, ColumnRef):
            return frozenset((self.name,))
        children = self.children()
        if not children:
            return frozenset()
        return frozenset().union(*(c.column_set for c in children))


@dataclass(frozen=True)
class ColumnRef(Expr):
    name: str
    type: pa.DataType

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Literal(Expr):
    value: Any
    type: pa.DataType

    def __post_init__(self) -> None:
        # A list value is held as a tuple: expressions are hashed (memo and plan keys).
        if isinstance(self.value, list):
            object.__setattr__(self, "value", _frozen(self.value))

    @cached_property
    def scalar(self) -> pa.Scalar:
        """The value as an Arrow scalar, converted once per plan, not once per batch."""
        return pa.scalar(self.value, self.type)

    def __str__(self) -> str:
        if self.value is None:
            return "NULL"
        if pa.types.is_string(self.type):
            return "'" + str(self.value).replace("'", "''") + "'"
        if pa.types.is_date(self.type):
            return f"DATE '{self.value}'"
        return str(self.value)


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


@dataclass(frozen=True)
class Call(Expr):
    """A scalar function or operator; ``fn`` is the engine's function name."""

    fn: str
    args: tuple[Expr, ...]
    type: pa.DataType
    # Options that are not expressions (a LIKE pattern's flags, a slice's bounds...).
    options: tuple[Any, ...] = field(default=())

    def children(self) -> tuple[Expr, ...]:
        return self.args

    def __str__(self) -> str:
        if self.fn in _INFIX and len(self.args) == 2:
            return f"({self.args[0]} {_INFIX[self.fn]} {self.args[1]})"
        opts = "".join(f", {o!r}" for o in self.options)
        return f"{self.fn}({', '.join(str(a) for a in self.args)}{opts})"


@dataclass(frozen=True)
class Cast(Expr):
    arg: Expr
    type: pa.DataType

    def children(self) -> tuple[Expr, ...]:
        return (self.arg,)

    def __str__(self) -> str:
        return f"CAST({self.arg} AS {sql_type_name(self.type)})"


@dataclass(frozen=True)
class Case(Expr):
    """Searched CASE: the first true condition's value, else ``default``."""

    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr
    type: pa.DataType

    def children(self) -> tuple[Expr, ...]:
        out: list[Expr] = []
        for cond, value in self.whens:
            out += [cond, value]
        return (*out, self.default)

    def __str__(self) -> str:
        parts = " ".join(f"WHEN {c} THEN {v}" for c, v in self.whens)
        return f"CASE {parts} ELSE {self.default} END"


@dataclass(frozen=True)
class InList(Expr):
    """``arg [NOT] IN (values)`` with SQL NULL semantics; values are literals."""

    arg: Expr
    values: tuple[Literal, ...]
    negated: bool
    type: pa.DataType = field(default_factory=pa.bool_)

    def children(self) -> tuple[Expr, ...]:
        return (self.arg, *self.values)

    def __str__(self) -> str:
        neg = "NOT " if self.negated else ""
        return f"{self.arg} {neg}IN ({', '.join(str(v) for v in self.values)})"


_INFIX = {
    "add": "+",
    "subtract": "-",
    "multiply": "*",
    "divide": "/",
    "modulo": "%",
    "equal": "=",
    "not_equal": "<>",
    "less": "<",
    "less_equal": "<=",
    "greater": ">",
    "greater_equal": ">=",
    "and": "AND",
    "or": "OR",
    "concat": "||",
}

COMPARISONS = {"equal", "not_equal", "less", "less_equal", "greater", "greater_equal"}


def conjuncts(e: Expr | None) -> list[Expr]:
    """Split a predicate on AND."""
    if e is None:
        return []
    if isinstance(e, Call) and e.fn == "and":
        return conjuncts(e.args[0]) + conjuncts(e.args[1])
    return [e]


def conjoin(parts: list[Expr]) -> Expr | None:
    """AND the parts together (None for no parts)."""
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = Call("and", (out, p), pa.bool_())
    return out


def rename_columns(e: Expr, mapping: dict[str, Expr]) -> Expr:
    """``e`` with column references replaced by ``mapping[name]`` where present."""
    if isinstance(e, ColumnRef):
        return mapping.get(e.name, e)
    if isinstance(e, Call):
        return Call(e.fn, tuple(rename_columns(a, mapping) for a in e.args), e.type, e.options)
    if isinstance(e, Cast):
        return Cast(rename_columns(e.arg, mapping), e.type)
    if isinstance(e, Case):
        whens = tuple((rename_columns(c, mapping), rename_columns(v, mapping)) for c, v in e.whens)
        return Case(whens, rename_columns(e.default, mapping), e.type)
    if isinstance(e, InList):
        return InList(rename_columns(e.arg, mapping), e.values, e.negated)
    return e
