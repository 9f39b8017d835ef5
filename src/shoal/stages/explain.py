"""EXPLAIN and EXPLAIN ANALYZE text for a stage graph.

Stages print root first; each shows its task count, where its output goes, and
its fragment as an indented operator tree. With metrics, each operator line gets
rows and time (and, where it held memory, its peak reservation and what it
spilled), each exchange its bytes, buffer high-water mark, blocked/wait time and
skew; each stage its tasks' busy CPU time and rows in and out (max / median), and
a line the query's critical path (its longest stage path, each stage weighted by
its slowest task); a last line gives the query's peak reservation against its budget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shoal.metrics.query import critical_path
from shoal.physical.plan import PhysicalPlan
from shoal.stages.graph import Stage, StageGraph
from shoal.units import human_bytes

if TYPE_CHECKING:
    from shoal.metrics.query import QueryMetrics
    from shoal.metrics.task import TaskRun


def explain_graph(graph: StageGraph, metrics: QueryMetrics | None = None) -> str:
    lines: list[str] = list(graph.notes)
    ran = _ran_graph(graph, metrics)
    if metrics is not None and metrics.decisions:
        # What the scheduler changed at run time, with the figures behind each change;
        # the stages below are as they ran, the plan as planned follows them.
        lines.append("Adaptive decisions:")
        lines.extend(f"  {d.text}" for d in metrics.decisions)
    for stage in reversed(ran.stages):
        if stage.fused_into is not None:
            lines.append(
                f"Stage {stage.id}: fused into stage {stage.fused_into} at run time"
                " (not run on its own)"
            )
            continue
        lines.append(_stage_header(stage, metrics))
        _fragment(stage, stage.fragment, 1, lines, metrics, [0])
        if metrics is not None and stage.id in metrics.stages:
            lines.extend(_task_lines(metrics.stages[stage.id].task_runs))
    if metrics is not None:
        seconds, path = _critical_path(ran, metrics)
        lines.append(
            f"Critical path: {seconds * 1000:.1f}ms busy over stages "
            + " -> ".join(str(s) for s in path)
            + f" (query wall time {metrics.elapsed * 1000:.1f}ms)"
        )
    if metrics is not None and metrics.memory_limit_bytes:
        lines.append(
            f"Memory: peak_reserved={human_bytes(metrics.peak_reserved_bytes)}"
            f" of memory_limit={human_bytes(metrics.memory_limit_bytes)}"
            f" spilled={human_bytes(metrics.spilled_bytes)} spill_files={metrics.spill_files}"
            f" process_peak_rss={human_bytes(metrics.peak_rss_bytes)}"
        )
    if ran is not graph:
        lines.append("As planned:")
        lines.extend("  " + line for line in explain_graph(graph).splitlines())
    return "\n".join(lines)


def _ran_graph(graph: StageGraph, metrics: QueryMetrics | None) -> StageGraph:
    """The graph as it ran: the planned one unless an adaptive decision changed it."""
    if metrics is not None and isinstance(metrics.ran_graph, StageGraph):
        return metrics.ran_graph
    return graph


def _critical_path(graph: StageGraph, metrics: QueryMetrics) -> tuple[float, list[int]]:
    return critical_path(metrics, {s.id: s.inputs for s in graph.stages}, graph.root.id)


def _task_lines(runs: list[TaskRun]) -> list[str]:
    """One line per attempt, for runtimes that say where each ran (Ray)."""
    if not any(r.node for r in runs):
        return []
    out = []
    for r in sorted(runs, key=lambda r: (r.partition, r.attempt)):
        where = f" node={r.node[:12]} worker={r.worker[:12]} pid={r.pid}" if r.node else ""
        line = f"  task {r.partition} attempt {r.attempt}: {r.outcome}{where} time={r.seconds * 1000:.1f}ms"
        if r.error:
            line += f" error={r.error[:120]}"
        out.append(line)
    return out


def _stage_header(stage: Stage, metrics: QueryMetrics | None) -> str:
    head = f"Stage {stage.id} (partitions={stage.num_partitions})"
    if stage.output is not None:
        if len(stage.consumers) > 1:
            to = ", ".join(str(c) for c in stage.consumers)
            head += f" -> {stage.output.describe()} to stages {to}"
        else:
            head += f" -> {stage.output.describe()} to stage {stage.consumer}"
        if stage.shared_cte is not None:
            head += f" (shared CTE {stage.shared_cte}: {stage.readers} readers)"
    else:
        head += " -> result"
    if metrics is not None:
        sm = metrics.stages.get(stage.id)
        if sm is not None:
            head += f"  [tasks={sm.tasks} attempts={sm.attempts} retries={sm.retries}"
            if sm.failed_attempts:
                head += f" failed={sm.failed_attempts}"
            if sm.ignored_attempts:
                head += f" ignored={sm.ignored_attempts}"
            head += f" time={sm.elapsed * 1000:.1f}ms]"
            if sm.task_figures:
                t = sm.task_summary()
                head += (
                    f"\n  task cpu: max={t['max_cpu_seconds'] * 1000:.1f}ms"
                    f" median={t['median_cpu_seconds'] * 1000:.1f}ms"
                    f"  rows_in: max={t['max_rows_in']:.0f} median={t['median_rows_in']:.0f}"
                    f"  rows_out: max={t['max_rows_out']:.0f} median={t['median_rows_out']:.0f}"
                )
        ex = metrics.exchanges.get(stage.id)
        if ex is not None:
            head += f"\n  exchange: mode={ex.mode} rows={ex.rows} bytes={human_bytes(ex.bytes)}"
            head += f" batches={ex.batches}"
            if ex.mode == "materialized":
                head += f" spooled={human_bytes(ex.spooled_bytes)}"
            else:
                head += (
                    f" buffer_peak={human_bytes(ex.buffer_high_water_bytes)}"
                    f" producer_blocked={ex.producer_blocked_seconds * 1000:.1f}ms"
                    f" consumer_wait={ex.consumer_wait_seconds * 1000:.1f}ms"
                )
            head += f" skew={ex.skew:.2f} rows_per_partition={ex.rows_per_partition}"
    return head


def _fragment(
    stage: Stage,
    node: PhysicalPlan,
    depth: int,
    lines: list[str],
    metrics: QueryMetrics | None,
    counter: list[int],
) -> None:
    index = counter[0]
    counter[0] += 1
    line = "  " * depth + node.explain_line()
    if metrics is not None:
        om = metrics.stages[stage.id].operators.get(index)
        if om is not None:
            line += f"  (rows={om.rows_out} time={om.elapsed * 1000:.1f}ms"
            if getattr(node, "shows_rows_in", False):
                line += f" rows_in={om.rows_in}"
            if om.row_groups_read or om.row_groups_skipped:
                line += f" row_groups={om.row_groups_read} skipped={om.row_groups_skipped}"
            if om.row_groups_shared:
                line += f" shared={om.row_groups_shared}"
            if om.decode_seconds:
                line += f" decode={om.decode_seconds * 1000:.1f}ms"
            if om.peak_state_rows:
                line += f" peak_state_rows={om.peak_state_rows}"
            if om.passthrough_rows or om.hot_keys:
                line += (
                    f" passed_through={om.passthrough_rows} hot_keys={om.hot_keys}"
                    f" hot_rows_absorbed={om.hot_rows_absorbed}"
                )
            if om.peak_reserved_bytes:
                line += f" peak_reserved={human_bytes(om.peak_reserved_bytes)}"
            if om.spill_files:
                line += (
                    f" spilled={human_bytes(om.spilled_bytes)} spill_files={om.spill_files}"
                    f" spill_passes={om.spill_passes}"
                )
            line += ")"
    lines.append(line)
    for child in node.children():
        _fragment(stage, child, depth + 1, lines, metrics, counter)


def analyze_dict(graph: StageGraph, metrics: QueryMetrics) -> dict[str, object]:
    """EXPLAIN ANALYZE as plain data (JSON-ready): stages, operators, exchanges."""
    return graph_dict(graph, metrics)


def graph_dict(graph: StageGraph, metrics: QueryMetrics | None = None) -> dict[str, object]:
    """The stage graph as plain data, with what ran when ``metrics`` are given.

    Each stage lists its operators in pre-order with their ``depth`` in the fragment
    tree, and ``output_spec`` (kind, keys, partitions) of the exchange it feeds;
    ``analyzed`` says whether the figures are real or only the plan.
    """
    stages = []
    ran = _ran_graph(graph, metrics)
    for stage in reversed(ran.stages):
        sm = metrics.stages.get(stage.id) if metrics is not None else None
        operators = []
        for index, (node, depth) in enumerate(_walk_depth(stage.fragment, 0)):
            om = sm.operators.get(index) if sm is not None else None
            operators.append(
                {
                    "operator": node.explain_line(),
                    "depth": depth,
                    "rows": om.rows_out if om else 0,
                    "batches": om.batches_out if om else 0,
                    "seconds_inclusive": round(om.elapsed, 6) if om else 0.0,
                    "rows_in": om.rows_in if om else 0,
                    "row_groups_read": om.row_groups_read if om else 0,
                    "row_groups_skipped": om.row_groups_skipped if om else 0,
                    "peak_state_rows": om.peak_state_rows if om else 0,
                    "decode_seconds": round(om.decode_seconds, 6) if om else 0.0,
                    "row_groups_shared": om.row_groups_shared if om else 0,
                    "peak_reserved_bytes": om.peak_reserved_bytes if om else 0,
                    "spilled_bytes": om.spilled_bytes if om else 0,
                    "spill_files": om.spill_files if om else 0,
                    "spill_passes": om.spill_passes if om else 0,
                    "passthrough_rows": om.passthrough_rows if om else 0,
                    "hot_keys": om.hot_keys if om else 0,
                    "hot_rows_absorbed": om.hot_rows_absorbed if om else 0,
                }
            )
        exchange = metrics.exchanges.get(stage.id) if metrics is not None else None
        spec = stage.output
        stages.append(
            {
                "stage": stage.id,
                "partitions": stage.num_partitions,
                "output": spec.describe() if spec is not None else "result",
                "output_spec": (
                    {"kind": spec.kind, "keys": list(spec.keys), "partitions": spec.num_partitions}
                    if spec is not None
                    else None
                ),
                "consumer": stage.consumer,
                "fused_into": stage.fused_into,
                "consumers": list(stage.consumers),
                "readers": stage.readers,
                "shared_cte": stage.shared_cte,
                "inputs": list(stage.inputs),
                "tasks": sm.tasks if sm else stage.num_partitions,
                "attempts": sm.attempts if sm else 0,
                "retries": sm.retries if sm else 0,
                "failed_attempts": sm.failed_attempts if sm else 0,
                "ignored_attempts": sm.ignored_attempts if sm else 0,
                "attempts_per_task": dict(sm.attempts_per_task) if sm else {},
                "workers": dict(sm.workers) if sm else {},
                "task_runs": [r.to_dict() for r in sm.task_runs] if sm else [],
                "task_figures": (
                    [sm.task_figures[p].to_dict() for p in sorted(sm.task_figures)] if sm else []
                ),
                "task_summary": _rounded(sm.task_summary()) if sm else None,
                "seconds": round(sm.elapsed, 6) if sm else 0.0,
                "operators": operators,
                "exchange": exchange.to_dict() if exchange is not None else None,
            }
        )
    memory = (
        {
            "memory_limit_bytes": metrics.memory_limit_bytes,
            "peak_reserved_bytes": metrics.peak_reserved_bytes,
            "spilled_bytes": metrics.spilled_bytes,
            "spill_files": metrics.spill_files,
            "process_peak_rss_bytes": metrics.peak_rss_bytes,
        }
        if metrics is not None
        else None
    )
    path = _critical_path(ran, metrics) if metrics is not None else (0.0, [])
    return {
        "analyzed": metrics is not None,
        "critical_path": {"seconds": round(path[0], 6), "stages": path[1]},
        "memory": memory,
        "seconds": round(metrics.elapsed, 6) if metrics is not None else 0.0,
        "exchange_mode": str(metrics.exchange_mode) if metrics is not None else None,
        "notes": list(graph.notes),
        "stages": stages,
        "adaptive_decisions": [d.to_dict() for d in metrics.decisions] if metrics else [],
        "planned": graph_dict(graph) if ran is not graph else None,
    }


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) if k.endswith("seconds") else v for k, v in values.items()}


def _walk_depth(node: PhysicalPlan, depth: int) -> list[tuple[PhysicalPlan, int]]:
    """Pre-order with depths: the same order as ``PhysicalPlan.walk`` (operator ids)."""
    out = [(node, depth)]
    for child in node.children():
        out.extend(_walk_depth(child, depth + 1))
    return out
