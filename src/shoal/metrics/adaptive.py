"""Adaptive decisions a materialized query took while it ran, with the figures behind them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class DecisionKind(StrEnum):
    """What the scheduler changed after a stage committed (scheduler/adaptive.py)."""

    BROADCAST = "broadcast"  # a repartition join became a broadcast join
    COALESCE = "coalesce"  # a stage ran fewer tasks than partitions
    SKEW_SPLIT = "skew_split"  # one join partition ran as several sub-tasks


@dataclass(frozen=True)
class AdaptiveDecision:
    """One decision: its kind, the stage it changed, a line for EXPLAIN ANALYZE and the
    measured and estimated figures that triggered it."""

    kind: DecisionKind
    stage: int
    text: str
    figures: dict[str, float | int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "stage": self.stage,
            "text": self.text,
            "figures": dict(self.figures),
        }


__all__ = ["AdaptiveDecision", "DecisionKind"]
