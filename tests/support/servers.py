"""Real servers for tests: ``shoal serve`` and a moto S3 server, as subprocesses on 127.0.0.1.

Each is started by the test (or fixture) that uses it and stopped by its PID when the
test ends: SIGTERM, then SIGKILL if it has not exited within a few seconds.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow.flight as flight

START_SECONDS = 60.0


def stop_process(proc: subprocess.Popen[Any], grace: float = 10.0) -> None:
    """Stop ``proc`` (by its PID): SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


@dataclass
class ShoalServer:
    """A running ``shoal serve``; ``uri`` is what a client connects to."""

    proc: subprocess.Popen[str]
    uri: str
    stderr_path: str
    token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def status(self, tls_root: bytes | None = None) -> dict[str, Any]:
        """The server's counters (the ``shoal.status`` action)."""
        kwargs: dict[str, Any] = {}
        if tls_root is not None:
            kwargs["tls_root_certs"] = tls_root
        client = flight.FlightClient(self.uri, **kwargs)
        try:
            headers = [(b"authorization", f"Bearer {self.token}".encode())] if self.token else []
            options = flight.FlightCallOptions(headers=headers, timeout=30)
            results = list(client.do_action(flight.Action("shoal.status", b""), options))
            status: dict[str, Any] = json.loads(results[0].body.to_pybytes())
            return status
        finally:
            client.close()

    def stop(self) -> None:
        stop_process(self.proc)
        os.unlink(self.stderr_path)


def start_shoal_server(args: Sequence[str], token: str | None = None) -> ShoalServer:
    """``python -m shoal.cli serve --port 0 ARGS``: waits for its "listening on" line."""
    fd, stderr_path = tempfile.mkstemp(prefix="shoal-serve-", suffix=".log")
    with os.fdopen(fd, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shoal.cli", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    assert proc.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + START_SECONDS
    line = ""
    while time.monotonic() < deadline and proc.poll() is None:
        if selector.select(timeout=0.5):
            line = proc.stdout.readline()
            break
    selector.close()
    if "listening on" not in line:
        stop_process(proc)
        with open(stderr_path, encoding="utf-8", errors="replace") as f:
            problem = f.read()
        os.unlink(stderr_path)
        raise RuntimeError(f"shoal serve did not start: {line!r}\n{problem}")
    location = line.rsplit(" ", 1)[-1].strip()
    uri = location.replace("grpc+tcp://", "grpc://")
    return ShoalServer(proc, uri, stderr_path, token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class MotoServer:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def uri(self, bucket_and_key: str) -> str:
        """An ``s3://`` URI of this server (plain HTTP, fixed region)."""
        return (
            f"s3://{bucket_and_key}?endpoint_override={self.endpoint}&scheme=http&region=us-east-1"
        )

    def stop(self) -> None:
        stop_process(self.proc)


#: The environment a moto S3 client needs: fake credentials, and no instance-metadata
#: lookups (which would leave the machine).
S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def start_moto_server() -> MotoServer:
    """``python -m moto.server`` on 127.0.0.1 and a free port; waits until it answers."""
    for _ in range(3):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **S3_ENVIRONMENT},
        )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).close()
                return MotoServer(proc, port)
            except urllib.error.HTTPError:
                return MotoServer(proc, port)  # it answered
            except (urllib.error.URLError, OSError):
                time.sleep(0.2)
        stop_process(proc)  # the port was taken meanwhile, or it never came up
    raise RuntimeError("the moto S3 server did not start")
