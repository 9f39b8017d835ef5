"""Run one TPC-H query on a simulated Ray cluster and lose a node or a worker mid-query.

Several scenarios run one after another in one cluster (starting one takes
seconds); after a node is lost a new one joins, so each starts with three.

Run as a program by ``tests/test_ray_cluster.py`` (a process of its own: a pytest
process holds at most one Ray session). It starts ``ray.cluster_utils.Cluster`` —
a head with no CPUs and three 1-CPU worker nodes, all on 127.0.0.1, with fast
health checks — joins it with ``shoal.connect(runtime="ray", address=...)`` and
runs the query with one task of a chosen stage made slow (an injected fault).
While that task sleeps, a watcher finds its worker process by its task name and
either removes the worker's whole node without grace (``--lose node``) or kills
the worker process (``--lose worker``). It prints one JSON object: whether the
result equals the reference answer, the lost node, and every task attempt.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support.runtime import ray_test_environment  # noqa: E402

#: Health checks every 300 ms, dead after 3 misses: a lost node is noticed in ~1 s.
FAST_HEALTH_CHECKS = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 300,
    "health_check_timeout_ms": 300,
    "health_check_failure_threshold": 3,
    # Task results above 1 KiB go to the node's object store, as they do at any real
    # size (Ray keeps results below 100 KiB with the driver by default, where they
    # would survive the node): the lost node then takes committed outputs with it.
    "max_direct_call_object_size": 1024,
}
NODE_OBJECT_STORE_BYTES = 96 << 20


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True, help="TPC-H SF 0.1 folder")
    parser.add_argument("--tmp", required=True, help="folder for Ray's files")
    parser.add_argument(
        "--scenarios", required=True, help="query:loss,... (loss: node or worker), in order"
    )
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    tmp = Path(args.tmp)
    os.environ.update(ray_test_environment(tmp))

    from shoal.runtime.ray_session import import_ray

    import_ray(loopback=True)  # every simulated node on 127.0.0.1
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "node_ip_address": "127.0.0.1",
            "include_dashboard": False,
            "object_store_memory": NODE_OBJECT_STORE_BYTES,
            "temp_dir": str(tmp / "ray"),
            "_system_config": FAST_HEALTH_CHECKS,
        },
    )
    try:
        workers = [
            cluster.add_node(
                num_cpus=1,
                node_ip_address="127.0.0.1",
                object_store_memory=NODE_OBJECT_STORE_BYTES,
            )
            for _ in range(3)
        ]
        cluster.wait_for_nodes()
        out: list[dict[str, Any]] = []
        for item in args.scenarios.split(","):
            query, lose = item.split(":")
            try:
                out.append(run(cluster, workers, args, int(query), lose))
            except Exception:  # noqa: BLE001 - reported to the test as text
                out.append({"query": int(query), "lose": lose, "error": traceback.format_exc()})
            if lose == "node":
                # Back to three worker nodes for the next scenario.
                workers.append(
                    cluster.add_node(
                        num_cpus=1,
                        node_ip_address="127.0.0.1",
                        object_store_memory=NODE_OBJECT_STORE_BYTES,
                    )
                )
                cluster.wait_for_nodes()
    finally:
        from shoal.runtime.ray_session import shutdown_session

        shutdown_session()
        cluster.shutdown()
    print("RESULT " + json.dumps(out))
    return 0


def run(
    cluster: Any, workers: list[Any], args: argparse.Namespace, query: int, lose: str
) -> dict[str, Any]:
    import psutil

    import shoal
    from shoal.datagen import tpch_tables
    from shoal.runtime.faults import Fault, FaultKind
    from support.tpch import assert_matches_answer, query_text

    con = shoal.connect(partitions=args.partitions, runtime="ray", address=cluster.address)
    for name, path in tpch_tables(Path(args.data)).items():
        con.register_parquet(name, str(path))
    graph = con.prepare(query_text(query)).graph
    # The slow task: partition 0 of the stage that feeds the root, whose own inputs
    # are all committed when it starts. It sleeps long enough for the loss to happen
    # while it runs; a worker killed or a node lost under it cuts the sleep short.
    slow_stage = graph.root.inputs[0]
    fault = Fault(FaultKind.SLOW, stage=slow_stage, partition=0, attempt=0, seconds=8)
    lost: dict[str, Any] = {}
    run = con.stream(query_text(query), faults=[fault])
    watcher = threading.Thread(
        target=_lose_when_running,
        args=(cluster, workers, graph.stage(slow_stage), run, lose, lost, psutil),
        daemon=True,
    )
    watcher.start()
    started = time.perf_counter()
    table = run.read_all()
    elapsed = time.perf_counter() - started
    watcher.join(timeout=5)
    try:
        assert_matches_answer(table, "0.1", query)
        matches = True
        mismatch = ""
    except AssertionError as err:
        matches = False
        mismatch = str(err)[:2000]
    return {
        "query": query,
        "lose": lose,
        "matches": matches,
        "mismatch": mismatch,
        "rows": table.num_rows,
        "seconds": elapsed,
        "lost": lost,
        "slow_stage": slow_stage,
        "stages": {
            str(sid): [r.to_dict() for r in sm.task_runs] for sid, sm in run.metrics.stages.items()
        },
        # The tasks each stage ran as planned when it started (adaptive coalescing may
        # give it fewer than the plan's partitions; a fused probe stage runs none).
        "partitions": {str(sid): sm.tasks for sid, sm in run.metrics.stages.items()},
        "explain": run_explain(graph, run),
    }


def run_explain(graph: Any, run: Any) -> str:
    from shoal.stages.explain import explain_graph

    return explain_graph(graph, run.metrics)


def _lose_when_running(
    cluster: Any,
    workers: list[Any],
    stage: Any,
    run: Any,
    lose: str,
    lost: dict[str, Any],
    psutil: Any,
) -> None:
    """Wait for the slow task's worker process (named after the task), then lose it:
    kill that process, or remove a node that holds committed outputs the slow task's
    stage still needs — another node than the slow task's when one does (placement is
    Ray's, so which nodes ran the inputs varies from run to run)."""
    # Ray names a worker process after the task it runs: shoal:<query>:s<S>:p<P>:a<A>.
    title = f":s{stage.id}:p0:a0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for proc in psutil.process_iter(["pid", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if "shoal:" not in cmdline or title not in cmdline:
                continue
            lost["pid"] = proc.info["pid"]
            if lose == "worker":
                os.kill(proc.info["pid"], signal.SIGKILL)
                lost["kind"] = "worker"
                return
            raylet = proc.parent()
            slow_node = next(
                (
                    node
                    for node in workers
                    if raylet is not None
                    and raylet.pid in [p.process.pid for p in node.all_processes.get("raylet", [])]
                ),
                None,
            )
            if slow_node is None:
                lost["error"] = f"no worker node holds process {proc.info['pid']}"
                return
            holding = {
                r.node
                for producer in stage.inputs
                for r in run.metrics.stages[producer].task_runs
                if r.outcome == "ok"
            }
            # Prefer a node other than the slow task's: the stage then still needs the
            # outputs when the driver next looks at which nodes are alive (every second),
            # so they re-run whether or not Ray kept a copy elsewhere.
            others = [n for n in workers if n is not slow_node and n.node_id in holding]
            victim = others[0] if others else slow_node
            lost["kind"] = "node"
            lost["node"] = victim.node_id
            lost["slow_task_on_it"] = victim is slow_node
            cluster.remove_node(victim, allow_graceful=False)
            workers.remove(victim)
            return
        time.sleep(0.05)
    lost["error"] = f"no process named {title} within 60 s"


if __name__ == "__main__":
    sys.exit(main())
