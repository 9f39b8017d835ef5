"""Distribution as types: what an output *has* (Partitioning) and what an input *needs*.

``satisfies`` is the one place that decides whether a partitioning meets a need.
"""

from __future__ import annotations

from dataclasses import dataclass

# ------------------------------------------------------------- Partitioning


class Partitioning:
    """How an operator's output rows are spread over its ``num_partitions`` tasks."""

    num_partitions: int


@dataclass(frozen=True)
class HashPartitioned(Partitioning):
    """Rows with equal ``keys`` are in the same partition (shoal's row hash mod n)."""

    keys: tuple[str, ...]
    num_partitions: int

    def __str__(self) -> str:
        return f"Hash([{', '.join(self.keys)}], {self.num_partitions})"


@dataclass(frozen=True)
class RoundRobinPartitioned(Partitioning):
    num_partitions: int

    def __str__(self) -> str:
        return f"RoundRobin({self.num_partitions})"


@dataclass(frozen=True)
class SinglePartitioned(Partitioning):
    """All rows in one partition."""

    num_partitions: int = 1

    def __str__(self) -> str:
        return "Single"


@dataclass(frozen=True)
class Replicated(Partitioning):
    """Every one of the ``num_partitions`` partitions holds all rows (after a broadcast)."""

    num_partitions: int

    def __str__(self) -> str:
        return f"Replicated({self.num_partitions})"


@dataclass(frozen=True)
class UnknownPartitioning(Partitioning):
    """Rows spread over ``num_partitions`` with no known rule (e.g. scan splits)."""

    num_partitions: int

    def __str__(self) -> str:
        return f"Unknown({self.num_partitions})"


SINGLE = SinglePartitioned()

# ------------------------------------------------------------- Distribution


class Distribution:
    """What an operator needs from one of its inputs."""


@dataclass(frozen=True)
class AnyDistribution(Distribution):
    def __str__(self) -> str:
        return "Any"


@dataclass(frozen=True)
class HashDistributed(Distribution):
    """Rows with equal ``keys`` must meet in one partition."""

    keys: tuple[str, ...]

    def __str__(self) -> str:
        return f"HashDistributed([{', '.join(self.keys)}])"


@dataclass(frozen=True)
class SinglePartition(Distribution):
    def __str__(self) -> str:
        return "SinglePartition"


@dataclass(frozen=True)
class Broadcast(Distribution):
    """Every task must see all rows of this input."""

    def __str__(self) -> str:
        return "Broadcast"


ANY = AnyDistribution()


def satisfies(p: Partitioning, d: Distribution) -> bool:
    """Does output partitioning ``p`` meet need ``d``?"""
    if isinstance(d, AnyDistribution):
        return True
    if isinstance(d, SinglePartition):
        return p.num_partitions == 1 and not isinstance(p, Replicated)
    if isinstance(d, HashDistributed):
        if p.num_partitions == 1 and not isinstance(p, Replicated):
            return True
        # Partitioned on a subset of the keys: equal full keys imply equal subsets.
        return isinstance(p, HashPartitioned) and bool(p.keys) and set(p.keys) <= set(d.keys)
    if isinstance(d, Broadcast):
        return isinstance(p, Replicated)
    return False
