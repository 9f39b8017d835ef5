"""The Ray runtime on this process's local Ray: binding, results, metrics, errors, retries.

The suites themselves (TPC-H, differential) run on Ray with ``SHOAL_RUNTIME=ray``;
node and worker loss is in ``test_ray_cluster.py``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from typing import Any

import pyarrow as pa
import pytest

import shoal
from shoal.errors import ExecutionError, QueryCancelledError, QueryTimeoutError, UserError
from shoal.exchange.objects import ObjectOutput, read_objects
from shoal.exchange_spec import ExchangeKind, ExchangeSpec
from shoal.metrics.task import TaskOutcome
from shoal.runtime.faults import Fault, FaultKind

LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _table() -> pa.Table:
    n = 20_000
    return pa.table(
        {
            "k": pa.array([i % 97 for i in range(n)], pa.int64()),
            "v": pa.array(range(n), pa.int64()),
            "s": pa.array([str(i) if i % 1000 else "x" for i in range(n)]),
        }
    )


@pytest.fixture()
def ray_con(ray_session: Any) -> shoal.Connection:
    con = shoal.connect(partitions=2, runtime="ray")
    con.register_arrow("t", _table())
    return con


def test_embedded_default_never_imports_ray() -> None:
    code = (
        "import sys, shoal\n"
        "con = shoal.connect(partitions=2)\n"
        "assert con.sql('SELECT 1 AS x').fetchall() == [(1,)]\n"
        "assert 'ray' not in sys.modules, sorted(m for m in sys.modules if m.startswith('ray'))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_runtime_and_address_are_checked() -> None:
    with pytest.raises(UserError, match="unknown runtime 'spark'; known: local, ray"):
        shoal.connect(runtime="spark")
    with pytest.raises(UserError, match="address= is for runtime='ray'"):
        shoal.connect(address="auto")


@pytest.mark.ray
def test_every_ray_listener_is_on_loopback(ray_con: shoal.Connection) -> None:
    psutil = pytest.importorskip("psutil")
    ray_con.sql("SELECT k, sum(v) FROM t GROUP BY k").to_arrow()  # workers are up
    listeners = []
    for proc in psutil.Process().children(recursive=True):
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listeners.append((proc.name(), conn.laddr.ip, conn.laddr.port))
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    names = {name for name, _, _ in listeners}
    assert "gcs_server" in names and "raylet" in names, listeners
    wide = [entry for entry in listeners if entry[1] not in LOOPBACK]
    assert not wide, f"Ray processes listening beyond loopback: {wide}"


@pytest.mark.ray
def test_query_on_ray_matches_local_and_reports_every_task(ray_con: shoal.Connection) -> None:
    sql = "SELECT k, count(*) AS n, sum(v) AS total FROM t WHERE s <> 'x' GROUP BY k ORDER BY k"
    local = shoal.connect(partitions=2)
    local.register_arrow("t", _table())
    expected = local.sql(sql).to_arrow()
    result = ray_con.sql(sql)
    assert result.to_arrow().equals(expected)
    metrics = result.metrics
    assert metrics is not None
    for stage_id, sm in metrics.stages.items():
        runs = sm.task_runs
        assert sorted(r.partition for r in runs) == list(range(sm.tasks)), stage_id
        assert all(r.outcome is TaskOutcome.OK and r.node and r.worker and r.pid for r in runs)
    text = result.explain_analyze()
    assert "task 0 attempt 0: ok node=" in text and " worker=" in text
    assert text.startswith("Exchanges: Ray task results")
    assert "Runtime filters: off (runtime=ray" in text and "Scan sharing: off (runtime=ray" in text
    assert "RuntimeFilter" not in text
    # Per-task figures come back from the workers: CPU time, rows in and out.
    for stage_id, sm in metrics.stages.items():
        assert sorted(sm.task_figures) == list(range(sm.tasks)), stage_id
    leaf = metrics.stages[min(metrics.stages)]
    # The scan applies the filter: its rows are those left (20 rows have s = 'x').
    assert sum(f.rows_in for f in leaf.task_figures.values()) == 20_000 - 20
    assert "Critical path: " in text and "task cpu: max=" in text


def _without_worker(message: str) -> str:
    """An error message with the worker it names left out (a thread here, a Ray worker there)."""
    return re.sub(r", worker [^\]]+\]", "]", message)


@pytest.mark.ray
def test_errors_keep_their_type_and_position(ray_con: shoal.Connection) -> None:
    embedded = shoal.connect(partitions=2)
    embedded.register_arrow("t", _table())
    # The same retry policy as on Ray, so the same words for "not retried".
    materialized = shoal.connect(partitions=2, retry_policy="task")
    materialized.register_arrow("t", _table())
    for sql, kind in [
        ("SELECT k FROM t WHERE", shoal.SqlSyntaxError),
        ("SELECT nope FROM t", shoal.UnknownColumnError),
        ("SELECT * FROM missing", shoal.UnknownTableError),
        # Fails in a task, on the data: crosses the process boundary.
        ("SELECT CAST(s AS INTEGER) AS i FROM t", ExecutionError),
    ]:
        with pytest.raises(kind) as on_embedded:
            embedded.sql(sql).to_arrow()
        with pytest.raises(kind) as on_local_task:
            materialized.sql(sql).to_arrow()
        with pytest.raises(kind) as on_ray:
            ray_con.sql(sql).to_arrow()
        assert type(on_ray.value) is type(on_embedded.value), sql
        assert _without_worker(str(on_ray.value)) == _without_worker(str(on_local_task.value)), sql
    syntax = pytest.raises(shoal.SqlSyntaxError, ray_con.sql, "SELECT k FROM t WHERE").value
    assert syntax.line == 1 and syntax.column is not None
    cast = pytest.raises(ExecutionError, ray_con.sql, "SELECT CAST(s AS INTEGER) FROM t").value
    assert cast.stage == 0 and cast.partition is not None and cast.worker.startswith("ray:")
    assert "Failed to parse string: 'x'" in str(cast)
    # The worker's traceback is the readable cause at the end of the chain.
    tail = cast
    while tail.__cause__ is not None:
        tail = tail.__cause__
    assert "Traceback" in str(tail) and "run_fragment" in str(tail)


def _run_with(con: shoal.Connection, sql: str, *faults: Fault, timeout: float | None = None):
    """Start ``sql`` with injected faults; the stream gives the result and the figures."""
    return con.stream(sql, faults=faults, timeout=timeout)


@pytest.mark.ray
def test_transient_failure_reruns_that_task_only(ray_con: shoal.Connection) -> None:
    sql = "SELECT k, sum(v) AS total FROM t GROUP BY k"
    expected = ray_con.sql(sql).to_arrow().sort_by("k")
    run = _run_with(ray_con, sql, Fault(FaultKind.TRANSIENT, stage=0, partition=0, attempt=0))
    table = run.read_all().rename_columns(["k", "total"]).sort_by("k")
    assert table.equals(expected)
    runs = {
        (r.stage, r.partition, r.attempt): r.outcome
        for sm in run.metrics.stages.values()
        for r in sm.task_runs
    }
    assert runs[(0, 0, 0)] is TaskOutcome.FAILED and runs[(0, 0, 1)] is TaskOutcome.OK
    assert sum(1 for key in runs if key[2] > 0) == 1
    assert run.metrics.stages[0].failed_attempts == 1


@pytest.mark.ray
def test_user_error_in_a_task_is_not_retried(ray_con: shoal.Connection) -> None:
    run = _run_with(ray_con, "SELECT k FROM t", Fault(FaultKind.USER, stage=0, partition=0))
    with pytest.raises(UserError, match="injected user error"):
        run.read_all()
    assert [r.attempt for r in run.metrics.stages[0].task_runs if r.partition == 0] == [0]


@pytest.mark.ray
def test_persistent_fault_gives_up_after_the_configured_attempts(
    ray_session: Any,
) -> None:
    con = shoal.connect(partitions=2, runtime="ray", task_retries=1, retry_backoff_seconds=0.01)
    con.register_arrow("t", _table())
    run = _run_with(con, "SELECT k FROM t", Fault(FaultKind.TRANSIENT, stage=0, partition=0))
    with pytest.raises(ExecutionError, match="injected transient fault") as err:
        run.read_all()
    assert err.value.stage == 0 and err.value.partition == 0
    assert [r.attempt for r in run.metrics.stages[0].task_runs if r.partition == 0] == [0, 1]


@pytest.mark.ray
def test_timeout_stops_a_query_on_ray(ray_con: shoal.Connection) -> None:
    run = _run_with(
        ray_con, "SELECT k FROM t", Fault(FaultKind.SLOW, stage=0, seconds=30), timeout=1.0
    )
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError):
        run.read_all()
    assert time.monotonic() - started < 10
    assert run.finished


def test_a_sliced_batch_ships_only_its_rows() -> None:
    big = pa.record_batch({"x": pa.array(range(1_000_000)), "s": pa.array(["abc"] * 1_000_000)})
    spec = ExchangeSpec(ExchangeKind.HASH, 3, ("x",))
    out = ObjectOutput(spec, big.schema)
    out.write(big.slice(10, 3000))
    buffers = out.finish()
    assert sum(b.size for b in buffers) < 200_000  # the parent batch is ~12 MB
    back = [
        pa.Table.from_batches(list(read_objects(spec, big.schema, [b])), big.schema)
        for b in buffers
    ]
    assert sum(t.num_rows for t in back) == 3000
    assert sorted(pa.concat_tables(back)["x"].to_pylist()) == list(range(10, 3010))


@pytest.mark.ray
def test_interrupt_cancels_a_query_on_ray(ray_con: shoal.Connection) -> None:
    stream = _run_with(ray_con, "SELECT k FROM t", Fault(FaultKind.SLOW, stage=0, seconds=30))
    timer = threading.Timer(1.0, ray_con.interrupt)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(QueryCancelledError):
            stream.read_all()
    finally:
        timer.cancel()
    assert time.monotonic() - started < 10
    outcomes = {r.outcome for sm in stream.metrics.stages.values() for r in sm.task_runs}
    assert TaskOutcome.CANCELLED in outcomes and TaskOutcome.OK not in outcomes
    # The connection still works afterwards.
    assert ray_con.sql("SELECT count(*) AS n FROM t").fetchall() == [(20_000,)]
