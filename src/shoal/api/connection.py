"""The embedded entry point: a connection owns a catalog and runs queries.

SQL --parse--> AST --bind--> logical --optimize--> logical --plan--> physical
    --EnforceDistribution--> physical+exchanges --SanityCheck--> --cut--> stages
    --runtime--> Arrow
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlglot import exp

from shoal.api.result import Result
from shoal.api.stream import QueryStream
from shoal.catalog.catalog import Catalog
from shoal.catalog.sources import TableSource
from shoal.errors import UserError
from shoal.exchange_spec import RetryPolicy
from shoal.logical.plan import LogicalQuery
from shoal.metrics.query import QueryMetrics
from shoal.optimizer.optimizer import optimize
from shoal.physical.context import Settings
from shoal.physical.planner import PhysicalPlanner
from shoal.physical.rules.pipeline import apply_physical_rules
from shoal.runtime.faults import Fault, parse_fault
from shoal.runtime.kinds import RuntimeKind
from shoal.runtime.protocol import Executor
from shoal.scheduler.query import RunningQuery, start_query
from shoal.sql.binder import Binder
from shoal.sql.copy import is_copy, parse_copy
from shoal.sql.parameters import bind_parameters
from shoal.sql.parser import parse_sql
from shoal.stages.explain import analyze_dict, explain_graph
from shoal.stages.graph import StageGraph, build_stage_graph
from shoal.storage.writer import WriteSummary, write_hash_partitioned

if TYPE_CHECKING:
    from shoal.scheduler.ray import RayRuntime

#: What the per-process features become on Ray, and why (printed by EXPLAIN).
RAY_PLAN_NOTES: tuple[str, ...] = (
    "Runtime filters: off (runtime=ray: a filter's keys come from the consuming stage's join,"
    " which runs after the stage it filters, and tasks share no process to pass them in)",
    "Scan sharing: off (runtime=ray: decoded row groups are shared only inside one process,"
    " and every Ray task is a process of its own)",
    "Split queue: off (runtime=ray: each scan task reads its fixed share of the splits,"
    " so a re-run reads the same ones)",
    "Broadcast join index: built by every task (runtime=ray: tasks share no process to build"
    " it once)",
)


@dataclass(frozen=True)
class PreparedQuery:
    logical: LogicalQuery
    graph: StageGraph
    settings: Settings


class Connection:
    def __init__(
        self,
        partitions: int | None = None,
        *,
        runtime: RuntimeKind | str = RuntimeKind.LOCAL,
        address: str | None = None,
        **settings: Any,
    ):
        cores = os.cpu_count() or 1
        if partitions is not None and (not isinstance(partitions, int) or partitions < 1):
            raise UserError(f"partitions must be a positive integer, got {partitions!r}")
        known = set(Settings.__dataclass_fields__)
        unknown = set(settings) - known
        if unknown:
            raise UserError(
                f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        try:
            self.runtime = RuntimeKind(runtime)
        except ValueError:
            known_kinds = ", ".join(k.value for k in RuntimeKind)
            raise UserError(f"unknown runtime {runtime!r}; known: {known_kinds}") from None
        self._ray: RayRuntime | None = None
        if self.runtime is RuntimeKind.RAY:
            from shoal.runtime.ray_session import ensure_session

            session = ensure_session(address)
            # Exchanges on Ray are task results, materialized by nature: lost work re-runs.
            settings.setdefault("retry_policy", RetryPolicy.TASK)
            settings.setdefault("runtime_filters", False)
            settings.setdefault("scan_share_bytes", 0)
            cores = _ray_cpus() or cores
        elif address is not None:
            raise UserError("address= is for runtime='ray'; the local runtime runs in this process")
        settings.setdefault("max_running_tasks", cores)
        settings.setdefault("retry_policy", DEFAULT_RETRY_POLICY)
        _check_retry_settings(settings)
        self.settings = Settings(partitions=partitions or cores, **settings)
        if self.runtime is RuntimeKind.RAY:
            from shoal.scheduler.ray import RayRuntime

            self._ray = RayRuntime(session)
        self.catalog = Catalog()
        # What runs a materialized query's task descriptions; None: threads of this process
        # (runtime/threads.py). Another runtime (a cluster) sets its own.
        self.executor_factory: Callable[[Settings], Executor] | None = None
        # Queries running on this connection, for interrupt().
        self._running: set[QueryStream] = set()
        self._running_lock = threading.Lock()

    # ----------------------------------------------------------- registration

    def register_parquet(self, name: str, path: str | os.PathLike[str]) -> TableSource:
        """A Parquet file, a folder of them (searched recursively) or a glob."""
        return self.catalog.register_parquet(name, path)

    def register_csv(
        self, name: str, path: str | os.PathLike[str], delimiter: str = ","
    ) -> TableSource:
        return self.catalog.register_csv(name, path, delimiter)

    def register_arrow(self, name: str, data: Any) -> TableSource:
        """A pyarrow Table / RecordBatch, or a pandas / polars DataFrame."""
        return self.catalog.register_arrow(name, data)

    def unregister(self, name: str) -> None:
        self.catalog.unregister(name)

    def tables(self) -> list[str]:
        return self.catalog.names()

    # ----------------------------------------------------------------- queries

    def prepare(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        retry_policy: RetryPolicy | str | None = None,
    ) -> PreparedQuery:
        settings = self._query_settings(retry_policy)
        return self._prepare_statement(bind_parameters(parse_sql(text), params), settings)

    def _query_settings(self, retry_policy: RetryPolicy | str | None) -> Settings:
        """The connection's settings with this query's retry policy; a materialized
        query has no runtime filters (the reason is in EXPLAIN)."""
        settings = self.settings
        if retry_policy is not None:
            settings = replace(settings, retry_policy=_retry_policy(retry_policy))
        if settings.retry_policy is RetryPolicy.TASK and settings.runtime_filters:
            settings = replace(settings, runtime_filters=False)
        if self._ray is not None and (settings.runtime_filters or settings.scan_share_bytes):
            settings = replace(settings, runtime_filters=False, scan_share_bytes=0)
        return settings

    def _prepare_statement(self, statement: exp.Expr, settings: Settings) -> PreparedQuery:
        logical = optimize(Binder(self.catalog).bind_statement(statement))
        physical = PhysicalPlanner(settings).plan(logical.plan)
        physical = apply_physical_rules(physical, settings)
        graph = build_stage_graph(physical)
        if self._ray is not None:
            graph.notes = _ray_notes(settings)
        elif settings.retry_policy is RetryPolicy.TASK:
            graph.notes = _materialized_notes(settings)
        return PreparedQuery(logical, graph, settings)

    def _start(
        self,
        prepared: PreparedQuery,
        timeout: float | None = None,
        faults: tuple[Fault, ...] = (),
    ) -> RunningQuery:
        if self._ray is not None:
            return self._ray.start(prepared.graph, prepared.settings, timeout, faults)
        executor = None
        if self.executor_factory is not None and prepared.settings.retry_policy is RetryPolicy.TASK:
            executor = self.executor_factory(prepared.settings)
        return start_query(
            prepared.graph, prepared.settings, timeout=timeout, faults=faults, executor=executor
        )

    def sql(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        retry_policy: RetryPolicy | str | None = None,
        faults: Sequence[Fault | str] = (),
    ) -> Result:
        """Run one statement to completion.

        ``params`` are the values of its ``?`` (or ``$1``, ``$2`` …) placeholders,
        bound as typed values. ``timeout`` (seconds) stops the query with
        ``QueryTimeoutError``; Ctrl-C stops it with ``QueryInterruptedError``.
        ``retry_policy`` ("none" or "task") overrides the connection's for this query;
        ``faults`` injects failures (``Fault`` or ``"stage=1,partition=0,kind=transient"``).
        """
        stripped = text.lstrip()
        head = stripped[:16].upper()
        if head.startswith("EXPLAIN ANALYZE"):
            body = stripped[len("EXPLAIN ANALYZE") :]
            result = self.sql(
                body, params, timeout=timeout, retry_policy=retry_policy, faults=faults
            )
            return Result(_text_table(result.explain_analyze()))
        if head.startswith("EXPLAIN"):
            body = stripped[len("EXPLAIN") :]
            graph = self.prepare(body, params, retry_policy=retry_policy).graph
            return Result(_text_table(explain_graph(graph)))
        if is_copy(stripped):
            return self._copy(text)
        return self.stream(
            text, params, timeout=timeout, retry_policy=retry_policy, faults=faults
        ).result()

    def stream(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        retry_policy: RetryPolicy | str | None = None,
        faults: Sequence[Fault | str] = (),
    ) -> QueryStream:
        """Start a query and return its result as a stream of Arrow batches.

        The query runs while the stream is read; ``QueryStream.cancel()`` stops it from
        any thread, and a reader that stops reading holds it back (bounded buffers).
        """
        _check_timeout(timeout)
        injected = _faults(faults)
        prepared = self.prepare(text, params, retry_policy=retry_policy)
        graph = prepared.graph
        run = self._start(prepared, timeout, injected)

        def describe(metrics: QueryMetrics) -> tuple[str, dict[str, object]]:
            return explain_graph(graph, metrics), analyze_dict(graph, metrics)

        stream = QueryStream(run, prepared.logical.output_names, describe, self._query_ended)
        with self._running_lock:
            self._running.add(stream)
        return stream

    def interrupt(self) -> None:
        """Cancel every query running on this connection (from any thread)."""
        with self._running_lock:
            running = list(self._running)
        for stream in running:
            stream.cancel()

    def _query_ended(self, stream: QueryStream) -> None:
        with self._running_lock:
            self._running.discard(stream)

    # ------------------------------------------------------- partitioned writes

    def write_partitioned(
        self,
        query_or_table: str,
        path: str | os.PathLike[str],
        key: str | Sequence[str],
        shards: int,
        overwrite: bool = False,
    ) -> WriteSummary:
        """Write a query's result (or a registered table) as hash-partitioned Parquet shards.

        ``path`` becomes a folder of ``shards`` files, ``shard-00000.parquet``..., where
        shard i holds the rows whose ``key`` column(s) hash to i under the engine's exchange
        hash, plus ``_shoal_layout.json`` recording the keys, shard count and hash function.
        ``register_parquet`` on that folder restores the layout: joins and aggregates on
        the key need no exchange and ``WHERE key = const`` reads one shard.
        """
        return write_hash_partitioned(
            self._rows_of(query_or_table), path, key, shards, overwrite=overwrite
        )

    def _rows_of(self, query_or_table: str) -> pa.Table:
        """A bare identifier is a registered table (all its columns); anything else a query."""
        name = query_or_table.strip()
        if _IDENTIFIER.fullmatch(name):
            source = self.catalog.get(name)  # UnknownTableError with suggestions
            quoted = '"' + source.name.replace('"', '""') + '"'
            return self.sql(f"SELECT * FROM {quoted}").to_arrow()
        return self.sql(query_or_table).to_arrow()

    def _copy(self, text: str) -> Result:
        """``COPY <table or (query)> TO 'folder' (PARTITION BY HASH (keys) INTO n)``."""
        statement = parse_copy(text)
        if statement.table is not None:
            table = self._rows_of(statement.table)
        else:
            assert statement.query is not None
            prepared = self._prepare_statement(statement.query, self._query_settings(None))
            # The connection's runtime and retry policy, as for any other query.
            table = self._start(prepared).read_all()
            table = table.rename_columns(list(prepared.logical.output_names))
        summary = write_hash_partitioned(
            table, statement.path, statement.keys, statement.shards, statement.overwrite
        )
        return Result(
            pa.table(
                {
                    "path": pa.array([summary.path], pa.string()),
                    "rows": pa.array([summary.rows], pa.int64()),
                    "shards": pa.array([summary.shards], pa.int64()),
                }
            )
        )

    def explain(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        retry_policy: RetryPolicy | str | None = None,
    ) -> str:
        """The stage graph: stages, their operator pipelines, each exchange's kind and keys."""
        return explain_graph(self.prepare(text, params, retry_policy=retry_policy).graph)

    def explain_analyze(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        retry_policy: RetryPolicy | str | None = None,
        faults: Sequence[Fault | str] = (),
    ) -> str:
        return self.sql(text, params, retry_policy=retry_policy, faults=faults).explain_analyze()

    def close(self) -> None:
        self.interrupt()
        self.catalog = Catalog()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(
    partitions: int | None = None,
    *,
    runtime: RuntimeKind | str = RuntimeKind.LOCAL,
    address: str | None = None,
    **settings: Any,
) -> Connection:
    """A connection; ``partitions`` is the tasks per stage (default: the cores).

    ``runtime="local"`` (the default) runs every task as a thread of this process;
    ``runtime="ray"`` runs every task as a Ray task (``pip install 'shoal[ray]'``):
    ``address=None`` joins the Ray already initialized in this process or starts a
    local one on 127.0.0.1, ``"auto"`` joins the cluster running on this machine,
    ``"host:port"`` / ``"ray://host:port"`` a remote one (see docs/ray.md). On Ray the
    default partition count is the cluster's CPU count and failed tasks re-run
    (``retry_policy="task"``).
    """
    return Connection(partitions, runtime=runtime, address=address, **settings)


def _check_timeout(timeout: float | None) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise UserError(f"timeout must be a positive number of seconds, got {timeout!r}")


#: The retry policy of a connection that names none (tests may run a whole suite under
#: another: tests/conftest.py reads SHOAL_RETRY_POLICY).
DEFAULT_RETRY_POLICY = RetryPolicy.NONE


def _retry_policy(value: RetryPolicy | str) -> RetryPolicy:
    try:
        return RetryPolicy(value)
    except ValueError:
        known = ", ".join(repr(p.value) for p in RetryPolicy)
        raise UserError(f"retry_policy must be one of {known}, got {value!r}") from None


def _check_retry_settings(settings: dict[str, Any]) -> None:
    settings["retry_policy"] = _retry_policy(settings["retry_policy"])
    retries = settings.get("task_retries", 3)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise UserError(f"task_retries must be a non-negative integer, got {retries!r}")
    spool = settings.get("spool")
    if spool is not None and not isinstance(spool, str | os.PathLike):
        raise UserError(f"spool must be a folder or a filesystem URI, got {spool!r}")
    if spool is not None:
        settings["spool"] = os.fspath(spool)


def _faults(faults: Sequence[Fault | str]) -> tuple[Fault, ...]:
    if isinstance(faults, str | Fault):
        faults = [faults]
    return tuple(f if isinstance(f, Fault) else parse_fault(f) for f in faults)


def _ray_notes(settings: Settings) -> tuple[str, ...]:
    retries = (
        f"task_retries={settings.task_retries}"
        if settings.retry_policy is RetryPolicy.TASK
        else "no retries"
    )
    return (
        f"Exchanges: Ray task results, one Arrow IPC object per destination"
        f" (runtime=ray, retry_policy={settings.retry_policy.value}, {retries})",
        *RAY_PLAN_NOTES,
    )


def _ray_cpus() -> int:
    from shoal.runtime.ray_session import import_ray

    return int(import_ray().cluster_resources().get("CPU", 0))


def _materialized_notes(settings: Settings) -> tuple[str, ...]:
    spool = settings.spool or "the system temp folder"
    return (
        f"Exchanges: materialized (retry_policy=task, task_retries={settings.task_retries},"
        f" spool={spool})",
        "Runtime filters: off (retry_policy=task runs a stage only after the stages it reads"
        " have committed, so a filter could never get its keys from the consumer stage's join)",
    )


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text_table(text: str) -> pa.Table:
    return pa.table({"plan": text.splitlines()})
