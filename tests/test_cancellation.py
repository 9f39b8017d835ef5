"""Stopping queries: timeouts, cancel() from another thread, Ctrl-C, closing a stream.

Each stops every task within a second, leaves no task thread behind, and the
connection answers the next query — with pipelined and with materialized exchanges.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal
from shoal.errors import (
    QueryCancelledError,
    QueryInterruptedError,
    QueryTimeoutError,
    ShoalError,
    UserError,
)

# A three-way cross join with a selective condition: minutes of work, little output.
LONG = "SELECT count(*) FROM t x, t y, t z WHERE x.a + y.a + z.a = 17"
ROWS = pa.table({"a": pa.array(range(3000), pa.int64())})


def _task_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("shoal-")]


@pytest.fixture(params=["none", "task"], ids=["pipelined", "materialized"])
def con(request: pytest.FixtureRequest) -> shoal.Connection:
    c = shoal.connect(partitions=2, retry_policy=request.param)
    c.register_arrow("t", ROWS)
    return c


def _assert_healthy(con: shoal.Connection) -> None:
    deadline = time.monotonic() + 1.0
    while _task_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _task_threads() == []
    assert con.sql("SELECT count(*) FROM t").fetchall() == [(3000,)]


def test_timeout_stops_the_query(con: shoal.Connection) -> None:
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="timeout of 0.3 s"):
        con.sql(LONG, timeout=0.3)
    assert time.monotonic() - started < 1.3
    _assert_healthy(con)


def test_cancel_from_another_thread(con: shoal.Connection) -> None:
    stream = con.stream(LONG)
    threading.Timer(0.3, stream.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelledError, match="cancelled by the caller"):
        stream.read_all()
    assert time.monotonic() - started < 1.3
    _assert_healthy(con)


def test_interrupt_cancels_what_runs_on_the_connection(con: shoal.Connection) -> None:
    threading.Timer(0.3, con.interrupt).start()
    with pytest.raises(QueryCancelledError):
        con.sql(LONG)
    _assert_healthy(con)


def test_bad_timeout_is_a_user_error(con: shoal.Connection) -> None:
    for bad in (0, -1, "1", True):
        with pytest.raises(UserError, match="timeout"):
            con.sql("SELECT 1", timeout=bad)  # type: ignore[arg-type]


def test_ctrl_c_in_the_caller_thread(con: shoal.Connection) -> None:
    # SIGINT to ourselves while the main thread waits for the result.
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    started = time.monotonic()
    with pytest.raises(QueryInterruptedError):
        con.sql(LONG)
    assert time.monotonic() - started < 1.3
    _assert_healthy(con)
    assert issubclass(QueryInterruptedError, KeyboardInterrupt)


def test_stream_yields_batches_and_closing_it_stops_the_query(con: shoal.Connection) -> None:
    stream = con.stream("SELECT x.a, y.a AS b FROM t x, t y")  # 9 M rows
    assert stream.schema.names == ["a", "b"]
    first = next(iter(stream))
    assert first.num_rows > 0 and first.schema.names == ["a", "b"]
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 1.0
    assert stream.finished
    _assert_healthy(con)


def test_slow_reader_holds_the_query_back(tmp_path: Path) -> None:
    # A reader that takes its time: result batches waiting for it stay within the
    # buffer cap, and the producing tasks are held back (blocked) rather than piling up.
    cap = 1 << 20
    c = shoal.connect(partitions=2, exchange_buffer_bytes=cap, batch_rows=8192)
    table = pa.table({"a": pa.array(range(400_000), pa.int64()), "b": pa.array(range(400_000))})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=50_000)
    c.register_parquet("t", tmp_path / "t.parquet")
    stream = c.stream("SELECT a, b + 1 AS c FROM t")
    rows = 0
    for batch in stream:
        rows += batch.num_rows
        time.sleep(0.002)
    assert rows == 400_000
    high_water = stream.metrics.result_buffer_high_water_bytes
    assert 0 < high_water <= cap + 8192 * 16  # one batch may exceed a nearly full buffer


def test_cli_ctrl_c_exits_130_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pq.write_table(ROWS, path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "shoal.cli", "query", LONG, "--table", f"t={path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2.0)  # interpreter start, import, then the query runs
        assert proc.poll() is None
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=10)
        assert time.monotonic() - sent < 1.5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert "interrupted" in err


def test_errors_are_shoal_errors() -> None:
    for cls in (QueryCancelledError, QueryTimeoutError, QueryInterruptedError):
        assert issubclass(cls, ShoalError)
