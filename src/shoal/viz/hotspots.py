"""Where an analyzed query spent itself: the slowest stage, the most skewed exchange, spill.

Stages stream into each other, so a stage's wall time includes the time its tasks
waited for their inputs. A stage's *busy* time is its wall time less the mean
time one of its tasks waited on each input exchange (the exchange's consumer wait,
summed over consumer tasks, divided by their number): the stage with the most busy
time is the slowest. The most skewed exchange is the one whose busiest destination
partition holds the most rows relative to the median (only exchanges with more than
one destination can be skewed). An operator whose figures report spilled bytes is a
spill hot spot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

#: Skew above this factor is drawn as a problem, not only as the maximum.
SKEW_ALARM = 1.5


@dataclass(frozen=True)
class HotSpots:
    slowest_stage: int | None
    slowest_busy_seconds: float
    most_skewed_exchange: int | None  # the producer stage of that exchange
    max_skew: float
    spills: tuple[tuple[int, int], ...]  # (stage, operator index)

    @property
    def skew_alarming(self) -> bool:
        return self.most_skewed_exchange is not None and self.max_skew >= SKEW_ALARM


def busy_seconds(data: Mapping[str, Any]) -> dict[int, float]:
    """Each stage's wall time less the mean per-task wait on its input exchanges."""
    by_id = {int(s["stage"]): s for s in data["stages"]}
    out: dict[int, float] = {}
    for sid, stage in by_id.items():
        tasks = max(int(stage.get("tasks") or stage.get("partitions") or 1), 1)
        waited = 0.0
        for producer in stage.get("inputs", []):
            ex = by_id.get(int(producer), {}).get("exchange")
            if ex:
                waited += float(ex.get("consumer_wait_seconds", 0.0)) / tasks
        out[sid] = max(float(stage.get("seconds", 0.0)) - waited, 0.0)
    return out


def find_hot_spots(data: Mapping[str, Any]) -> HotSpots:
    if not data.get("analyzed", True):
        return HotSpots(None, 0.0, None, 1.0, ())
    busy = busy_seconds(data)
    slowest = max(busy, key=lambda s: (busy[s], -s)) if busy else None
    skewed, max_skew = None, 1.0
    spills = []
    for stage in data["stages"]:
        sid = int(stage["stage"])
        ex = stage.get("exchange")
        if ex and len(ex.get("rows_per_partition", [])) > 1:
            skew = float(ex.get("skew", 1.0))
            if skewed is None or skew > max_skew:
                skewed, max_skew = sid, skew
        for i, op in enumerate(stage["operators"]):
            if int(op.get("spilled_bytes", 0) or 0) > 0:
                spills.append((sid, i))
    return HotSpots(
        slowest,
        busy.get(slowest, 0.0) if slowest is not None else 0.0,
        skewed,
        max_skew if math.isfinite(max_skew) or skewed is not None else 1.0,
        tuple(spills),
    )
