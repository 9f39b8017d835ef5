"""Task-level retry: injected failures in TPC-H queries, under both retry policies.

With ``retry_policy="task"`` a transient failure in a leaf, an intermediate and the
final stage in turn must give the reference answer with exactly one extra attempt,
for exactly the failed task. With ``"none"`` the same failure fails the query with
an error naming stage and task. User and deterministic errors are never retried; a
persistent fault gives up after the configured attempts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pytest
from support.tpch import assert_matches_answer, query_text, tpch_connection

import shoal
from shoal.errors import ExecutionError, TransientError, UserError, WorkerLostError
from shoal.metrics.query import QueryMetrics
from shoal.runtime.faults import Fault, FaultKind
from shoal.stages.graph import StageGraph

PARTITIONS = 2


def _targets(graph: StageGraph) -> dict[str, int]:
    """A leaf stage (reads no exchange), an intermediate one (reads and writes one) and
    the final stage of the graph; a graph of two stages has no intermediate one."""
    leaves = [s.id for s in graph.stages if not s.inputs]
    middle = [s.id for s in graph.stages if s.inputs and s.output is not None]
    targets = {"leaf": leaves[0], "final": graph.root.id}
    if middle:
        targets["intermediate"] = middle[len(middle) // 2]
    return targets


def _extra_attempts(metrics: QueryMetrics) -> dict[tuple[int, int], int]:
    """(stage, partition) -> attempts, for every task that took more than one."""
    return {
        (sid, p): n
        for sid, sm in metrics.stages.items()
        for p, n in sm.attempts_per_task.items()
        if n != 1
    }


@pytest.fixture(scope="module")
def con(tpch_sf01_dir: Path) -> shoal.Connection:
    return tpch_connection(tpch_sf01_dir, partitions=PARTITIONS, retry_policy="task")


@pytest.mark.parametrize("q", range(1, 23), ids=lambda q: f"q{q:02d}")
def test_transient_failure_reruns_only_the_failed_task(con: shoal.Connection, q: int) -> None:
    graph = con.prepare(query_text(q)).graph
    targets = _targets(graph)
    assert q == 6 or "intermediate" in targets  # Q6 is scan + aggregate: two stages
    for where, sid in targets.items():
        result = con.sql(query_text(q), faults=[Fault(FaultKind.TRANSIENT, sid, 0, 0)])
        assert_matches_answer(result.to_arrow(), "0.1", q)
        metrics = result.metrics
        assert metrics is not None
        assert _extra_attempts(metrics) == {(sid, 0): 2}, (where, sid)
        sm = metrics.stages[sid]
        assert (sm.retries, sm.failed_attempts) == (1, 1), where
        assert sum(s.retries for s in metrics.stages.values()) == 1


@pytest.mark.parametrize("q", range(1, 23), ids=lambda q: f"q{q:02d}")
def test_pipelined_transient_failure_fails_naming_stage_and_task(
    con: shoal.Connection, q: int
) -> None:
    graph = con.prepare(query_text(q), retry_policy="none").graph
    targets = _targets(graph)
    sid = targets.get("intermediate", targets["leaf"])
    with pytest.raises(TransientError) as caught:
        con.sql(
            query_text(q), retry_policy="none", faults=[f"stage={sid},partition=0,kind=transient"]
        )
    err = caught.value
    assert (err.stage, err.partition, err.attempt, err.attempts) == (sid, 0, 0, 1)
    message = str(err)
    assert f"[stage {sid}, task 0, attempt 0, 1 attempt, worker local:shoal-s{sid}-t0]" in message
    assert "injected transient fault" in message and "not retried: retry_policy='none'" in message


def test_user_error_is_never_retried(con: shoal.Connection) -> None:
    stream = con.stream(query_text(3), faults=[Fault(FaultKind.USER, 1, 0)])
    with pytest.raises(UserError, match="injected user error"):
        stream.read_all()
    sm = stream.metrics.stages[1]
    assert sm.attempts_per_task[0] == 1 and sm.retries == 0


def test_deterministic_error_is_never_retried(tmp_path: Path) -> None:
    con = shoal.connect(partitions=2, retry_policy="task")
    con.register_arrow("t", pa.table({"a": [1, 2, 3, 4], "b": [1, 0, 1, 1]}))
    stream = con.stream("SELECT a // b AS q FROM t")
    with pytest.raises(ExecutionError) as caught:
        stream.read_all()
    assert "not retried: deterministic error" in str(caught.value)
    assert sum(sm.retries for sm in stream.metrics.stages.values()) == 0


def test_persistent_fault_gives_up_after_the_configured_attempts(tpch_sf01_dir: Path) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=PARTITIONS, retry_policy="task", task_retries=2)
    stream = con.stream(query_text(3), faults=["stage=1,partition=1,kind=transient"])
    with pytest.raises(TransientError) as caught:
        stream.read_all()
    err = caught.value
    assert (err.stage, err.partition, err.attempt, err.attempts) == (1, 1, 2, 3)
    assert err.worker == "local:shoal-s1-t1-a2"
    assert "injected transient fault" in str(err)
    assert "gave up after 3 attempts (task_retries=2)" in str(err)
    assert isinstance(err.__cause__, TransientError)
    assert stream.metrics.stages[1].attempts_per_task[1] == 3


@pytest.mark.parametrize("kind", [FaultKind.LOST_WORKER, FaultKind.INTERNAL])
def test_lost_worker_and_internal_errors_are_retried(
    con: shoal.Connection, kind: FaultKind
) -> None:
    result = con.sql(query_text(5), faults=[Fault(kind, 1, 0, 0)])
    assert_matches_answer(result.to_arrow(), "0.1", 5)
    assert _extra_attempts(result.metrics) == {(1, 0): 2}


def test_lost_worker_under_pipelined_fails(con: shoal.Connection) -> None:
    with pytest.raises(WorkerLostError, match=r"\[stage 0, task 1, .*injected lost worker"):
        con.sql(query_text(1), retry_policy="none", faults=[Fault(FaultKind.LOST_WORKER, 0, 1)])


def test_backoff_waits_between_attempts(tpch_sf01_dir: Path) -> None:
    con = tpch_connection(
        tpch_sf01_dir, partitions=PARTITIONS, retry_policy="task", retry_backoff_seconds=0.2
    )
    faults = [Fault(FaultKind.TRANSIENT, 0, 0, 0), Fault(FaultKind.TRANSIENT, 0, 0, 1)]
    result = con.sql(query_text(6), faults=faults)
    assert_matches_answer(result.to_arrow(), "0.1", 6)
    assert result.metrics.stages[0].attempts_per_task[0] == 3
    # Two re-runs: 0.2 s then 0.4 s of backoff.
    assert result.metrics.elapsed >= 0.6


def test_explain_analyze_shows_attempts_retries_and_spooled_bytes(con: shoal.Connection) -> None:
    result = con.sql(query_text(3), faults=["stage=1,partition=0,attempt=0,kind=transient"])
    text = result.explain_analyze()
    assert text.startswith("Exchanges: materialized (retry_policy=task")
    assert "Runtime filters: off" in text
    header = next(line for line in text.splitlines() if line.startswith("Stage 1 "))
    assert f"tasks={PARTITIONS} attempts={PARTITIONS + 1} retries=1 failed=1" in header
    exchanges = [line for line in text.splitlines() if line.strip().startswith("exchange:")]
    assert exchanges and all("mode=materialized" in e and "spooled=" in e for e in exchanges)
    data = json.loads(result.explain_analyze_json())
    stage1 = next(s for s in data["stages"] if s["stage"] == 1)
    assert stage1["retries"] == 1 and stage1["attempts"] == PARTITIONS + 1
    assert stage1["attempts_per_task"] == {"0": 2, "1": 1}
    assert stage1["exchange"]["mode"] == "materialized"
    assert stage1["exchange"]["spooled_bytes"] > 0
    assert data["exchange_mode"] == "materialized"
    pipelined = con.sql(query_text(3), retry_policy="none").explain_analyze()
    assert "retries=0" in pipelined and "mode=pipelined" in pipelined
    assert "Exchanges: materialized" not in pipelined


def test_retry_policy_is_checked(tpch_sf01_dir: Path) -> None:
    with pytest.raises(UserError, match="retry_policy must be one of 'none', 'task', got 'tasks'"):
        shoal.connect(retry_policy="tasks")
    with pytest.raises(UserError, match="task_retries must be a non-negative integer"):
        shoal.connect(task_retries=-1)
    con = shoal.connect()
    con.register_arrow("t", pa.table({"a": [1]}))
    with pytest.raises(UserError, match="retry_policy must be one of"):
        con.sql("SELECT a FROM t", retry_policy="always")


def test_retried_scan_reads_exactly_the_splits_of_the_attempt_it_replaces(tmp_path: Path) -> None:
    """A scan over many row groups whose task fails after reading its share: the re-run reads
    the same fixed share again (a split queue would hand it nothing), so every row counts once."""
    import pyarrow.parquet as pq

    folder = tmp_path / "t"
    folder.mkdir()
    for f in range(3):
        values = list(range(f * 10_000, (f + 1) * 10_000))
        pq.write_table(pa.table({"x": values}), folder / f"part-{f}.parquet", row_group_size=1_000)
    con = shoal.connect(partitions=3, retry_policy="task", batch_rows=500)
    con.register_parquet("t", folder)
    sql = "SELECT count(*) AS n, sum(x) AS s FROM t"
    graph = con.prepare(sql).graph
    leaf = next(s.id for s in graph.stages if not s.inputs)
    for partition in range(3):
        result = con.sql(sql, faults=[Fault(FaultKind.TRANSIENT, leaf, partition, 0)])
        assert result.to_arrow().to_pylist() == [{"n": 30_000, "s": sum(range(30_000))}]
        sm = result.metrics.stages[leaf]
        assert sm.attempts_per_task[partition] == 2
        scan = next(
            i for i, op in enumerate(graph.stage(leaf).fragment.walk()) if op.label == "Scan"
        )
        # Figures of committed attempts only: each row group read once.
        assert sm.operators[scan].rows_in == 30_000
        assert sm.operators[scan].row_groups_read == 30


# Q17's subquery beside the outer query, Q18's IN subquery, Q21's EXISTS read lineitem
# again (Q15's CTE read twice is now one shared stage, so it reads lineitem once).
@pytest.mark.parametrize("q", [17, 18, 21], ids=lambda q: f"q{q:02d}")
def test_shared_scans_keep_working_under_retry(con: shoal.Connection, q: int) -> None:
    """Scans of one table still decode a row group once for all of them when stages run
    one after another; a re-run of a sharing task decodes what is no longer held."""

    def shared(metrics: QueryMetrics) -> dict[int, int]:
        return {
            sid: sum(om.row_groups_shared for om in sm.operators.values())
            for sid, sm in metrics.stages.items()
        }

    plain = shared(con.sql(query_text(q)).metrics)
    sharing = [sid for sid, n in plain.items() if n]
    assert sharing, plain
    result = con.sql(query_text(q), faults=[Fault(FaultKind.TRANSIENT, sharing[0], 0, 0)])
    assert_matches_answer(result.to_arrow(), "0.1", q)
    assert _extra_attempts(result.metrics) == {(sharing[0], 0): 2}
    assert sum(shared(result.metrics).values()) > 0
