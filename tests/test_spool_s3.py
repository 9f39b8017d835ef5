"""The spool on S3: TPC-H queries whose exchanges go through a moto S3 server.

The test starts ``moto_server`` on 127.0.0.1 (a free port) as a subprocess, points a
materialized connection's spool at ``s3://…?endpoint_override=…&scheme=http``, and
stops the server (by its PID) afterwards. Answers must match; nothing may remain in
the bucket after a query, whether it succeeded or failed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.fs as pafs
import pytest
from support.tpch import assert_matches_answer, query_text, tpch_connection

from shoal.errors import TransientError
from shoal.runtime.faults import Fault, FaultKind

BUCKET = "shoal-spool"


def _moto_server() -> str:
    beside = Path(sys.executable).with_name("moto_server")
    found = str(beside) if beside.exists() else shutil.which("moto_server")
    if found is None:
        pytest.fail("moto_server not found: install the dev extras (moto[server]>=5.2.5)")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [_moto_server(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start (exit code {proc.poll()})")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Dummy credentials: moto accepts any.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _spool_uri(endpoint: str) -> str:
    return (
        f"s3://{BUCKET}/queries?endpoint_override={endpoint}&scheme=http"
        "&allow_bucket_creation=true&region=us-east-1"
    )


def _objects(endpoint: str) -> list[str]:
    fs = pafs.S3FileSystem(
        endpoint_override=endpoint,
        scheme="http",
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
    )
    infos = fs.get_file_info(pafs.FileSelector(BUCKET, recursive=True, allow_not_found=True))
    return [i.path for i in infos if i.type == pafs.FileType.File]


@pytest.mark.parametrize("q", [1, 3, 11], ids=lambda q: f"q{q:02d}")
def test_tpch_over_an_s3_spool(tpch_sf01_dir: Path, s3_endpoint: str, s3_env: None, q: int) -> None:
    con = tpch_connection(
        tpch_sf01_dir, partitions=2, retry_policy="task", spool=_spool_uri(s3_endpoint)
    )
    result = con.sql(query_text(q), faults=[Fault(FaultKind.TRANSIENT, 1, 0, 0)])
    assert_matches_answer(result.to_arrow(), "0.1", q)
    assert result.metrics.stages[1].attempts_per_task[0] == 2
    assert sum(ex.spooled_bytes for ex in result.metrics.exchanges.values()) > 0
    assert _objects(s3_endpoint) == []


def test_failed_query_leaves_nothing_on_s3(
    tpch_sf01_dir: Path, s3_endpoint: str, s3_env: None
) -> None:
    con = tpch_connection(
        tpch_sf01_dir,
        partitions=2,
        retry_policy="task",
        task_retries=1,
        spool=_spool_uri(s3_endpoint),
    )
    with pytest.raises(TransientError, match="gave up after 2 attempts"):
        con.sql(query_text(3), faults=[Fault(FaultKind.TRANSIENT, 2, 1)])
    assert _objects(s3_endpoint) == []
