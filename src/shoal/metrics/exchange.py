"""Figures one exchange records: what moved, where it piled up, who waited."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass
class ExchangeMetrics:
    kind: str
    producer_stage: int
    consumer_stage: int | None
    rows_per_partition: list[int] = field(default_factory=list)
    bytes_per_partition: list[int] = field(default_factory=list)
    batches: int = 0
    buffer_high_water_bytes: int = 0
    producer_blocked_seconds: float = 0.0
    consumer_wait_seconds: float = 0.0
    mode: str = "pipelined"  # or "materialized"
    # Materialized: bytes written to the spool by committed attempts (data files + indexes).
    spooled_bytes: int = 0

    @property
    def rows(self) -> int:
        return sum(self.rows_per_partition)

    @property
    def bytes(self) -> int:
        return sum(self.bytes_per_partition)

    @property
    def skew(self) -> float:
        """max / median rows per destination partition (1.0 = perfectly even)."""
        if not self.rows_per_partition:
            return 1.0
        median = statistics.median(self.rows_per_partition)
        peak = max(self.rows_per_partition)
        if median == 0:
            return float(peak > 0) * float("inf") if peak else 1.0
        return peak / median

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "producer_stage": self.producer_stage,
            "consumer_stage": self.consumer_stage,
            "rows": self.rows,
            "bytes": self.bytes,
            "batches": self.batches,
            "rows_per_partition": self.rows_per_partition,
            "buffer_high_water_bytes": self.buffer_high_water_bytes,
            "producer_blocked_seconds": round(self.producer_blocked_seconds, 6),
            "consumer_wait_seconds": round(self.consumer_wait_seconds, 6),
            "skew": self.skew,
            "mode": self.mode,
            "spooled_bytes": self.spooled_bytes,
        }
