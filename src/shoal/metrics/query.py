"""Figures of one query run: per stage (tasks, attempts, operators) and per exchange."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.exchange_spec import ExchangeMode
from shoal.metrics.adaptive import AdaptiveDecision
from shoal.metrics.exchange import ExchangeMetrics
from shoal.metrics.operator import OperatorMetrics
from shoal.metrics.task import TaskFigures, TaskRun


@dataclass
class StageMetrics:
    stage_id: int
    tasks: int
    attempts: int = 0
    failed_attempts: int = 0
    # Attempts started because an earlier attempt of the same task failed.
    retries: int = 0
    # Attempts whose output was ignored: their task had already committed (zombies).
    ignored_attempts: int = 0
    # partition -> attempts it took (materialized queries; pipelined: 1 each)
    attempts_per_task: dict[int, int] = field(default_factory=dict)
    # partition -> where its committed (or only) attempt ran
    workers: dict[int, str] = field(default_factory=dict)
    elapsed: float = 0.0
    operators: dict[int, OperatorMetrics] = field(default_factory=dict)
    # Every attempt, where it ran and how it ended (the Ray runtime fills it).
    task_runs: list[TaskRun] = field(default_factory=list)
    # partition -> what its committed (or only) attempt did: CPU time, rows in and out.
    task_figures: dict[int, TaskFigures] = field(default_factory=dict)

    def task_summary(self) -> dict[str, float]:
        """Per stage max and median over its tasks of CPU seconds, rows in and rows out."""
        figures = list(self.task_figures.values())
        out: dict[str, float] = {}
        for name in ("cpu_seconds", "rows_in", "rows_out"):
            values = [getattr(f, name) for f in figures] or [0]
            out[f"max_{name}"] = max(values)
            out[f"median_{name}"] = statistics.median(values)
        return out

    @property
    def slowest_task_seconds(self) -> float:
        return max((f.cpu_seconds for f in self.task_figures.values()), default=0.0)


@dataclass
class QueryMetrics:
    elapsed: float = 0.0
    # How its exchanges moved data (the query's retry policy decides).
    exchange_mode: ExchangeMode = ExchangeMode.PIPELINED
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
    # Adaptive decisions taken while the query ran (materialized only), in order, and
    # the stage graph as it ran when a decision changed its shape (a StageGraph; None:
    # it ran as planned, task counts aside).
    decisions: list[AdaptiveDecision] = field(default_factory=list)
    ran_graph: Any = None


def critical_path(
    metrics: QueryMetrics, inputs: Mapping[int, Sequence[int]], root: int
) -> tuple[float, list[int]]:
    """The stage graph's longest path weighted by each stage's slowest task (CPU seconds):
    what the query would take with one worker per task. Returns (seconds, stage ids
    from a leaf to ``root``). ``inputs`` maps each stage to the stages it reads."""
    best: dict[int, tuple[float, list[int]]] = {}

    def visit(stage: int) -> tuple[float, list[int]]:
        if stage not in best:
            sm = metrics.stages.get(stage)
            own = sm.slowest_task_seconds if sm is not None else 0.0
            below = max((visit(i) for i in inputs.get(stage, ())), default=(0.0, []))
            best[stage] = (below[0] + own, [*below[1], stage])
        return best[stage]

    return visit(root)
