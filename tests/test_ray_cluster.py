"""Losing a Ray node or a Ray worker mid-query: the answer is right, only lost work re-ran.

One subprocess (``support/ray_cluster_run.py``) starts a simulated cluster — a head
with no CPUs and three 1-CPU worker nodes on 127.0.0.1 — and runs TPC-H Q9 and Q18
at SF 0.1 while one task of the stage feeding the root sleeps (an injected slow
fault): once a worker node holding committed outputs that stage still needs is
removed without grace (another node than the slow task's when one does), once the
slow task's worker process is killed. The test reads every task attempt the driver
recorded.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SCENARIOS = [(9, "node"), (18, "node"), (9, "worker"), (18, "worker")]
RUNNER = Path(__file__).parent / "support" / "ray_cluster_run.py"

#: Outcomes of an attempt that ran its fragment (as opposed to never starting).
RAN = {"ok", "output lost", "failed"}


@pytest.fixture(scope="module")
def cluster_results(
    tpch_sf01_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[int, str], dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("rc")
    scenarios = ",".join(f"{q}:{loss}" for q, loss in SCENARIOS)
    proc = subprocess.Popen(
        [
            sys.executable,
            str(RUNNER),
            "--data",
            str(tpch_sf01_dir),
            "--tmp",
            str(tmp),
            "--scenarios",
            scenarios,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and the Ray processes it started
        out, err = proc.communicate()
        pytest.fail(f"cluster run timed out; stderr tail:\n{err[-3000:]}")
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, f"runner failed ({proc.returncode}):\n{err[-3000:]}"
    results = json.loads(lines[-1].removeprefix("RESULT "))
    return {(r["query"], r["lose"]): r for r in results}


def _by_task(result: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    tasks: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for stage, runs in result["stages"].items():
        for run in runs:
            tasks[(int(stage), run["partition"])].append(run)
    for runs in tasks.values():
        runs.sort(key=lambda r: r["attempt"])
    return tasks


def _check_common(result: dict[str, Any]) -> dict[tuple[int, int], list[dict[str, Any]]]:
    assert "error" not in result, result.get("error")
    assert "error" not in result["lost"], result["lost"]
    assert result["matches"], result["mismatch"]
    tasks = _by_task(result)
    # Every task of every stage committed exactly once in the end.
    for stage, n in result["partitions"].items():
        for p in range(n):
            runs = tasks[(int(stage), p)]
            assert runs and runs[-1]["outcome"] == "ok", (stage, p, runs)
            assert [r["attempt"] for r in runs] == list(range(len(runs))), runs
    for runs in tasks.values():
        assert not any(r["outcome"] in ("failed", "cancelled") for r in runs), runs
    return tasks


@pytest.mark.parametrize("query", [9, 18], ids=lambda q: f"q{q:02d}")
def test_node_lost_mid_query_reruns_only_its_tasks(
    cluster_results: dict[tuple[int, str], dict[str, Any]], query: int
) -> None:
    result = cluster_results[(query, "node")]
    tasks = _check_common(result)
    dead = result["lost"]["node"]
    lost_running = [r for runs in tasks.values() for r in runs if r["outcome"] == "worker lost"]
    # Lost while running: at most the one task the node's one CPU ran, the slow one if
    # it was there.
    assert len(lost_running) <= 1, lost_running
    if result["lost"]["slow_task_on_it"]:
        assert [(r["stage"], r["partition"]) for r in lost_running] == [(result["slow_stage"], 0)]
    reran = 0
    for key, runs in tasks.items():
        executions = [r for r in runs if r["outcome"] in RAN]
        for r in runs:
            if r["outcome"] == "output lost":
                assert r["node"] == dead, (key, runs)  # only the dead node's outputs
        for earlier in executions[:-1]:
            # A task ran again only because what it had committed was on the dead node.
            assert earlier["outcome"] == "output lost", (key, runs)
        if any(r["outcome"] == "output lost" for r in runs):
            reran += 1
        # Committed on a surviving node: never ran again.
        for r in executions:
            if r["node"] != dead:
                assert r is executions[-1], (key, runs)
    # The node held committed outputs the slow task's stage still needed: they re-ran.
    assert reran >= 1, "the lost node took committed outputs with it"
    assert "output lost" in result["explain"]


@pytest.mark.parametrize("query", [9, 18], ids=lambda q: f"q{q:02d}")
def test_worker_killed_mid_query_reruns_only_its_task(
    cluster_results: dict[tuple[int, str], dict[str, Any]], query: int
) -> None:
    result = cluster_results[(query, "worker")]
    tasks = _check_common(result)
    slow = (result["slow_stage"], 0)
    assert [r["outcome"] for r in tasks[slow]] == ["worker lost", "ok"], tasks[slow]
    assert tasks[slow][1]["pid"] != result["lost"]["pid"]
    # The worker's node and its object store live on: nothing else re-ran.
    for key, runs in tasks.items():
        if key != slow:
            assert [r["outcome"] for r in runs] == ["ok"], (key, runs)
    assert "task 0 attempt 0: worker lost" in result["explain"]
