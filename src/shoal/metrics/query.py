"""Figures of one query run: per stage (tasks, attempts, operators) and per exchange."""

from __future__ import annotations

from dataclasses import dataclass, field

from shoal.metrics.exchange import ExchangeMetrics
from shoal.metrics.operator import OperatorMetrics


@dataclass
class StageMetrics:
    stage_id: int
    tasks: int
    attempts: int = 0
    failed_attempts: int = 0
    elapsed: float = 0.0
    operators: dict[int, OperatorMetrics] = field(default_factory=dict)


@dataclass
class QueryMetrics:
    elapsed: float = 0.0
    stages: dict[int, StageMetrics] = field(default_factory=dict)
    exchanges: dict[int, ExchangeMetrics] = field(default_factory=dict)  # by producer stage
    # Rows handed to the caller, and the peak bytes of result batches waiting for it.
    result_rows: int = 0
    result_buffer_high_water_bytes: int = 0
    # Memory: the query's budget, the most its pool had reserved at once, what it
    # spilled, and the process's peak RSS so far (the OS's figure, not the query's).
    memory_limit_bytes: int = 0
    peak_reserved_bytes: int = 0
    spilled_bytes: int = 0
    spill_files: int = 0
    peak_rss_bytes: int = 0
