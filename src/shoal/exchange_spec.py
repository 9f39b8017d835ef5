"""What an exchange is: its kind, keys, consumer partition count and order.

Plain data below both the plan (``physical/``) and the transports (``exchange/``:
in-memory channels, the spool), so a transport plugs in without importing operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ExchangeKind(StrEnum):
    """How a producer's rows are dealt to the consumer's tasks."""

    HASH = "hash"  # rows with equal keys go to the same partition -> Hash(keys, n)
    BROADCAST = "broadcast"  # every consumer gets every row -> Replicated(n)
    GATHER = "gather"  # all rows into one partition, any order -> Single
    MERGE = "merge"  # k-way merge of sorted producer streams into one -> Single, sorted
    ROUND_ROBIN = "round_robin"  # whole batches dealt in turn -> RoundRobin(n)


class ExchangeMode(StrEnum):
    """How an exchange's data moves between stages (chosen per query by its retry policy)."""

    PIPELINED = "pipelined"  # in memory, streaming, bounded buffers
    MATERIALIZED = "materialized"  # written once per producer task to the spool, then read


class RetryPolicy(StrEnum):
    """What a query does when a task fails (per connection, or per query)."""

    NONE = "none"  # pipelined exchanges; any task failure fails the query
    TASK = "task"  # materialized exchanges; a transient failure re-runs the task alone

    @property
    def exchange_mode(self) -> ExchangeMode:
        return ExchangeMode.PIPELINED if self is RetryPolicy.NONE else ExchangeMode.MATERIALIZED


_LABELS = {
    ExchangeKind.HASH: "HashRepartition",
    ExchangeKind.BROADCAST: "Broadcast",
    ExchangeKind.GATHER: "Gather",
    ExchangeKind.MERGE: "OrderedMerge",
    ExchangeKind.ROUND_ROBIN: "RoundRobin",
}


@dataclass(frozen=True)
class SortSpec:
    """One ORDER BY key over a column of the operator's input."""

    column: str
    ascending: bool = True
    nulls_first: bool = False

    def arrow(self) -> tuple[str, str, str]:
        return (
            self.column,
            "ascending" if self.ascending else "descending",
            "at_start" if self.nulls_first else "at_end",
        )

    def __str__(self) -> str:
        s = f"{self.column} {'ASC' if self.ascending else 'DESC'}"
        return s + (" NULLS FIRST" if self.nulls_first else "")


def sort_specs_str(keys: tuple[SortSpec, ...]) -> str:
    return "[" + ", ".join(str(k) for k in keys) + "]"


@dataclass(frozen=True)
class ExchangeSpec:
    """How a producer stage's output is distributed to its consumer's tasks."""

    kind: ExchangeKind
    num_partitions: int  # consumer tasks
    keys: tuple[str, ...] = ()
    sort_keys: tuple[SortSpec, ...] = ()

    def __post_init__(self) -> None:
        # Accept the kind's value ("hash") too; store the enum member.
        object.__setattr__(self, "kind", ExchangeKind(self.kind))

    def describe(self) -> str:
        label = _LABELS[self.kind]
        if self.kind == ExchangeKind.HASH:
            return f"{label}[{', '.join(self.keys)}] x{self.num_partitions}"
        if self.kind == ExchangeKind.MERGE:
            return f"{label}{sort_specs_str(self.sort_keys)}"
        if self.kind in (ExchangeKind.BROADCAST, ExchangeKind.ROUND_ROBIN):
            return f"{label} x{self.num_partitions}"
        return label


@dataclass(frozen=True)
class InputSlice:
    """Which part of a committed producer stage one consumer task reads.

    ``destinations``: the producer's destination partitions it reads (one, or a
    contiguous group when the scheduler coalesced small partitions; a broadcast's
    batches reach every destination). ``segments``, when set, narrows the read of the
    single destination to row ranges of single producers' slices: ``(producer
    partition, first row, end row)`` — a sub-task of a split skewed partition.
    ``everything`` reads every destination (a build side switched to broadcast).
    """

    destinations: tuple[int, ...]
    segments: tuple[tuple[int, int, int], ...] | None = None
    everything: bool = False

    @staticmethod
    def of(partition: int) -> InputSlice:
        return InputSlice((partition,))


__all__ = [
    "ExchangeKind",
    "InputSlice",
    "ExchangeMode",
    "ExchangeSpec",
    "RetryPolicy",
    "SortSpec",
    "sort_specs_str",
]
