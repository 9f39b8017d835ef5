"""The embedded entry point: a connection owns a catalog and runs queries.

SQL --parse--> AST --bind--> logical --optimize--> logical --plan--> physical
    --EnforceDistribution--> physical+exchanges --SanityCheck--> --cut--> stages
    --runtime--> Arrow
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs
from sqlglot import exp

from shoal.api.boundary import entry_point
from shoal.api.result import Result
from shoal.api.stream import QueryStream
from shoal.catalog.catalog import Catalog
from shoal.catalog.files import within
from shoal.catalog.sources import TableSource
from shoal.errors import AccessDeniedError, CatalogError, UnsupportedError, UserError
from shoal.exchange_spec import RetryPolicy
from shoal.logical.plan import LogicalQuery
from shoal.memory.size import parse_bytes
from shoal.metrics.progress import ProgressListener, ProgressTracker, QueryProgress
from shoal.metrics.query import QueryMetrics
from shoal.optimizer.optimizer import optimize
from shoal.physical.context import Settings
from shoal.physical.shared import plan_query
from shoal.recursion import call_deep
from shoal.runtime.faults import Fault, parse_fault
from shoal.runtime.kinds import RuntimeKind
from shoal.runtime.protocol import Executor
from shoal.scheduler.query import RunningQuery, start_query
from shoal.sql.binder import Binder
from shoal.sql.copy import parse_copy
from shoal.sql.explain import ExplainFormat, explain_format, parse_explain
from shoal.sql.parameters import bind_parameters, parameter_count
from shoal.sql.parser import parse_sql
from shoal.sql.source_text import sql_text
from shoal.sql.statements import (
    StatementKind,
    classify,
    create,
    describe_table,
    describe_target,
    drop,
)
from shoal.stages.explain import analyze_dict, explain_graph, graph_dict
from shoal.stages.graph import StageGraph, build_stage_graph
from shoal.storage.writer import WriteSummary, write_hash_partitioned, write_parquet_file

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


#: What ``progress=`` accepts: a callback given ``QueryProgress`` snapshots (about ten
#: a second while tasks run, and one when the query ends), or a ``ProgressListener``.
Progress = Callable[[QueryProgress], None] | ProgressListener


class Connection:
    """Every public method lets only ``ShoalError`` subclasses out (``api/boundary.py``)."""

    @entry_point
    def __init__(
        self,
        partitions: int | None = None,
        progress: Progress | None = None,
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
        _check_adaptive_settings(settings)
        if settings.get("memory_limit") is not None:
            settings["memory_limit"] = parse_bytes(settings["memory_limit"])
        else:
            settings.pop("memory_limit", None)  # the default: a share of physical memory
        spill_dir = settings.get("spill_dir")
        if spill_dir is not None:
            settings["spill_dir"] = os.fspath(spill_dir)
        self.settings = Settings(partitions=partitions or cores, **settings)
        if self.runtime is RuntimeKind.RAY:
            from shoal.scheduler.ray import RayRuntime

            self._ray = RayRuntime(session)
        self.catalog = Catalog()
        #: The default progress callback or listener of every query on this connection.
        self.progress: Progress | None = progress
        # What runs a materialized query's task descriptions; None: threads of this process
        # (runtime/threads.py). Another runtime (a cluster) sets its own.
        self.executor_factory: Callable[[Settings], Executor] | None = None
        # Queries running on this connection, for interrupt().
        self._running: set[QueryStream] = set()
        self._running_lock = threading.Lock()
        # Where COPY ... TO may write: None is anywhere (embedded use); a server confines it.
        self._write_dirs: tuple[str, ...] | None = None

    # ----------------------------------------------------------- registration

    @entry_point
    def register_parquet(
        self, name: str, path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> TableSource:
        """A Parquet file, a folder of them (searched recursively) or a glob.

        ``path`` may be an object-store URI (``s3://bucket/prefix``, ``gs://``, ``abfs://``;
        credentials from the environment as pyarrow reads them, options such as
        ``?endpoint_override=host:port&scheme=http`` in the URI) or a path on the given
        pyarrow ``filesystem``.
        """
        return self.catalog.register_parquet(name, path, filesystem)

    @entry_point
    def register_csv(
        self,
        name: str,
        path: str | os.PathLike[str],
        delimiter: str = ",",
        filesystem: pafs.FileSystem | None = None,
    ) -> TableSource:
        """CSV files with a header row; paths as for ``register_parquet``."""
        return self.catalog.register_csv(name, path, delimiter, filesystem)

    @entry_point
    def register_ipc(
        self, name: str, path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> TableSource:
        """Arrow IPC files (``.arrow``/``.ipc``/``.feather``); paths as for ``register_parquet``."""
        return self.catalog.register_ipc(name, path, filesystem)

    @entry_point
    def register_arrow(self, name: str, data: Any) -> TableSource:
        """A pyarrow Table / RecordBatch, or a pandas / polars DataFrame."""
        return self.catalog.register_arrow(name, data)

    @entry_point
    def unregister(self, name: str) -> None:
        self.catalog.unregister(name)

    @entry_point
    def tables(self) -> list[str]:
        return self.catalog.names()

    # ----------------------------------------------------------------- queries

    @entry_point
    def restrict_writes(self, allowed: Sequence[str]) -> None:
        """Let ``COPY ... TO`` write only inside these folders or object-store prefixes
        (none when empty); anything else is an ``AccessDeniedError``."""
        self._write_dirs = tuple(str(a) for a in allowed)

    @entry_point
    def writes_allowed(self) -> bool:
        return self._write_dirs is None or bool(self._write_dirs)

    @entry_point
    def parameter_count(self, text: str) -> int:
        """How many parameter values the statement's ``?`` / ``$n`` placeholders take."""
        statement = parse_sql(text)
        if classify(statement) is StatementKind.EXPLAIN:
            assert isinstance(statement, exp.Command)
            statement = parse_sql(parse_explain(statement).statement)
        return parameter_count(statement)

    @entry_point
    def prepare(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        retry_policy: RetryPolicy | str | None = None,
        memory_limit: int | str | None = None,
    ) -> PreparedQuery:
        settings = self._query_settings(retry_policy, memory_limit)
        # Parsing, binding and planning recurse over the query's trees: a big stack.
        with sql_text(text):
            return call_deep(self._parse_and_prepare, text, params, settings)

    def _parse_and_prepare(
        self, text: str, params: Sequence[Any] | None, settings: Settings
    ) -> PreparedQuery:
        return self._prepare_parsed(parse_sql(text), params, settings)

    def _prepare_parsed(
        self, parsed: exp.Expr, params: Sequence[Any] | None, settings: Settings
    ) -> PreparedQuery:
        statement = bind_parameters(parsed, params)
        kind = classify(statement)
        if kind is not StatementKind.QUERY:
            raise UnsupportedError(
                f"a {kind.value} statement here: only a query is prepared, streamed or explained"
                " (Connection.sql runs the others)"
            )
        return self._prepare_statement(statement, settings)

    def _query_settings(
        self, retry_policy: RetryPolicy | str | None, memory_limit: int | str | None = None
    ) -> Settings:
        """The connection's settings with this query's retry policy and memory budget; a
        materialized query has no runtime filters (the reason is in EXPLAIN)."""
        settings = self.settings
        if memory_limit is not None:
            settings = replace(settings, memory_limit=parse_bytes(memory_limit))
        if retry_policy is not None:
            settings = replace(settings, retry_policy=_retry_policy(retry_policy))
        if settings.retry_policy is RetryPolicy.TASK and settings.runtime_filters:
            settings = replace(settings, runtime_filters=False)
        if self._ray is not None and (settings.runtime_filters or settings.scan_share_bytes):
            settings = replace(settings, runtime_filters=False, scan_share_bytes=0)
        return settings

    def _prepare_statement(self, statement: exp.Expr, settings: Settings) -> PreparedQuery:
        binder = Binder(self.catalog, share_ctes=settings.share_ctes)
        logical = optimize(binder.bind_statement(statement), share_ctes=settings.share_ctes)
        planned = plan_query(logical.plan, settings)
        graph = build_stage_graph(planned.plan, planned.shared)
        if self._ray is not None:
            graph.notes = _ray_notes(settings)
        elif settings.retry_policy is RetryPolicy.TASK:
            graph.notes = _materialized_notes(settings)
        graph.notes += planned.notes
        return PreparedQuery(logical, graph, settings)

    def _start(
        self,
        prepared: PreparedQuery,
        timeout: float | None = None,
        faults: tuple[Fault, ...] = (),
        progress: ProgressListener | None = None,
    ) -> RunningQuery:
        if self._ray is not None:
            return self._ray.start(prepared.graph, prepared.settings, timeout, faults)
        executor = None
        if self.executor_factory is not None and prepared.settings.retry_policy is RetryPolicy.TASK:
            executor = self.executor_factory(prepared.settings)
        return start_query(
            prepared.graph,
            prepared.settings,
            timeout=timeout,
            faults=faults,
            executor=executor,
            progress=progress,
        )

    @entry_point
    def sql(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        retry_policy: RetryPolicy | str | None = None,
        faults: Sequence[Fault | str] = (),
        progress: Progress | None = None,
        memory_limit: int | str | None = None,
    ) -> Result:
        """Run one statement to completion.

        ``params`` are the values of its ``?`` (or ``$1``, ``$2`` …) placeholders,
        bound as typed values. ``timeout`` (seconds) stops the query with
        ``QueryTimeoutError``; Ctrl-C stops it with ``QueryInterruptedError``.
        ``retry_policy`` ("none" or "task") overrides the connection's for this query;
        ``faults`` injects failures (``Fault`` or ``"stage=1,partition=0,kind=transient"``).
        ``progress`` (default: the connection's) is told how the stages advance.
        ``memory_limit`` ("512MiB", "1GiB" or bytes) replaces the connection's budget
        for this query: past it operators spill, or fail with ``ResourceExhaustedError``.
        ``EXPLAIN [ANALYZE] [(FORMAT TEXT|JSON|HTML)] …`` returns the plan as a
        one-column table (``plan`` lines, or one ``json`` / ``html`` document).
        """
        # Every statement is parsed first; sql/statements.classify names its kind and
        # each kind is run from here (nothing is recognised by its text).
        with sql_text(text):
            statement = call_deep(parse_sql, text)
            kind = classify(statement)
        if kind is StatementKind.EXPLAIN:
            assert isinstance(statement, exp.Command)
            explain = parse_explain(statement)
            if explain.analyze:
                document = self.explain_analyze(
                    explain.statement,
                    params,
                    explain.format,
                    timeout=timeout,
                    progress=progress,
                    retry_policy=retry_policy,
                    faults=faults,
                )
            else:
                document = self.explain(
                    explain.statement, params, explain.format, retry_policy=retry_policy
                )
            if explain.format is ExplainFormat.TEXT:
                return Result(_text_table(document))
            return Result(pa.table({explain.format.value: [document]}))
        if kind is StatementKind.QUERY:
            return self._stream_parsed(
                statement, text, params, timeout, retry_policy, faults, progress, memory_limit
            ).result()
        with sql_text(text):
            statement = call_deep(bind_parameters, statement, params)
            if kind is StatementKind.COPY:
                assert isinstance(statement, exp.Copy)
                return self._copy(statement)
            return self._run_statement(kind, statement, timeout)

    @entry_point
    def statement_kind(self, text: str) -> StatementKind:
        """What kind of statement ``text`` is (parsed, then ``sql/statements.classify``)."""
        with sql_text(text):
            return classify(call_deep(parse_sql, text))

    def _run_statement(
        self, kind: StatementKind, statement: exp.Expr, timeout: float | None
    ) -> Result:
        """Every statement kind but a query (sql/statements.py says which it is)."""
        settings = self._query_settings(None)
        if kind in (StatementKind.CREATE_VIEW, StatementKind.CREATE_TABLE_AS):
            assert isinstance(statement, exp.Create)
            spec = create(statement)
            if kind is StatementKind.CREATE_VIEW:
                # Bound now so that a view over an unknown table fails here, not later.
                call_deep(self._prepare_statement, spec.query, settings)
                self.catalog.create_view(spec.name, spec.query, spec.replace)
            elif not (spec.if_not_exists and spec.name.lower() in map(str.lower, self.tables())):
                if spec.name.lower() in map(str.lower, self.tables()) and not spec.replace:
                    raise CatalogError(f"table '{spec.name}' already exists")
                if spec.path is not None:
                    self._check_write("CREATE TABLE", spec.path)
                prepared = call_deep(self._prepare_statement, spec.query, settings)
                table = self._start(prepared, timeout).read_all()
                table = table.rename_columns(list(prepared.logical.output_names))
                if spec.path is None:
                    self.catalog.register_arrow(spec.name, table)
                else:
                    # Replacing the file replaces the table: sources are read when scanned.
                    write_parquet_file(table, spec.path, overwrite=spec.replace)
                    self.catalog.register_parquet(spec.name, spec.path)
            return Result(pa.table({"Count": pa.array([0], pa.int64())}).slice(0, 0))
        if kind is StatementKind.DROP:
            assert isinstance(statement, exp.Drop)
            spec_drop = drop(statement)
            for name in spec_drop.names:
                self.catalog.drop(name, spec_drop.view, spec_drop.if_exists)
            return Result(pa.table({"Count": pa.array([0], pa.int64())}).slice(0, 0))
        if kind is StatementKind.SHOW_TABLES:
            return Result(pa.table({"name": pa.array(self.tables(), pa.string())}))
        assert kind is StatementKind.DESCRIBE and isinstance(statement, exp.Describe)
        prepared = call_deep(self._prepare_statement, describe_target(statement), settings)
        schema = prepared.logical.plan.schema
        return Result(describe_table(list(prepared.logical.output_names), schema))

    @entry_point
    def stream(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        retry_policy: RetryPolicy | str | None = None,
        faults: Sequence[Fault | str] = (),
        progress: Progress | None = None,
        memory_limit: int | str | None = None,
    ) -> QueryStream:
        """Start a query and return its result as a stream of Arrow batches.

        The query runs while the stream is read; ``QueryStream.cancel()`` stops it from
        any thread, and a reader that stops reading holds it back (bounded buffers).
        """
        _check_timeout(timeout)
        with sql_text(text):
            statement = call_deep(parse_sql, text)
        return self._stream_parsed(
            statement, text, params, timeout, retry_policy, faults, progress, memory_limit
        )

    def _stream_parsed(
        self,
        statement: exp.Expr,
        text: str,
        params: Sequence[Any] | None,
        timeout: float | None,
        retry_policy: RetryPolicy | str | None,
        faults: Sequence[Fault | str],
        progress: Progress | None,
        memory_limit: int | str | None,
    ) -> QueryStream:
        """Plan the parsed query and start it (``sql`` and ``stream``): the tree is
        planned as parsed, never parsed again (that cost ~1/4 of planning)."""
        _check_timeout(timeout)
        injected = _faults(faults)
        settings = self._query_settings(retry_policy, memory_limit)
        with sql_text(text):
            prepared = call_deep(self._prepare_parsed, statement, params, settings)
        return self.run_prepared(
            prepared, timeout=timeout, faults=injected, progress=progress, text=text
        )

    @entry_point
    def run_prepared(
        self,
        prepared: PreparedQuery,
        *,
        timeout: float | None = None,
        faults: Sequence[Fault | str] = (),
        progress: Progress | None = None,
        text: str | None = None,
    ) -> QueryStream:
        """Start a query planned by ``prepare`` (so it is not planned again) and return
        its result stream, as ``stream`` does; ``text`` is its SQL, for error messages."""
        _check_timeout(timeout)
        injected = _faults(faults)
        graph = prepared.graph
        listener = _listener(progress if progress is not None else self.progress)
        run = self._start(prepared, timeout, injected, listener)

        def describe(metrics: QueryMetrics) -> tuple[str, dict[str, object]]:
            # Rendering recurses over expression trees as deep as planning did.
            return call_deep(explain_graph, graph, metrics), call_deep(analyze_dict, graph, metrics)

        stream = QueryStream(
            run, prepared.logical.output_names, describe, self._query_ended, sql=text or ""
        )
        with self._running_lock:
            self._running.add(stream)
        return stream

    @entry_point
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

    @entry_point
    def write_partitioned(
        self,
        query_or_table: str,
        path: str | os.PathLike[str],
        key: str | Sequence[str],
        shards: int,
        overwrite: bool = False,
        filesystem: pafs.FileSystem | None = None,
    ) -> WriteSummary:
        """Write a query's result (or a registered table) as hash-partitioned Parquet shards.

        ``path`` becomes a folder of ``shards`` files, ``shard-00000.parquet``..., where
        shard i holds the rows whose ``key`` column(s) hash to i under the engine's exchange
        hash, plus ``_shoal_layout.json`` recording the keys, shard count and hash function.
        ``register_parquet`` on that folder restores the layout: joins and aggregates on
        the key need no exchange and ``WHERE key = const`` reads one shard.
        """
        return write_hash_partitioned(
            self._rows_of(query_or_table),
            path,
            key,
            shards,
            overwrite=overwrite,
            filesystem=filesystem,
        )

    def _rows_of(self, query_or_table: str) -> pa.Table:
        """A bare identifier is a registered table (all its columns); anything else a query."""
        name = query_or_table.strip()
        if _IDENTIFIER.fullmatch(name):
            source = self.catalog.get(name)  # UnknownTableError with suggestions
            quoted = '"' + source.name.replace('"', '""') + '"'
            return self.sql(f"SELECT * FROM {quoted}").to_arrow()
        return self.sql(query_or_table).to_arrow()

    def _check_write(self, what: str, path: str) -> None:
        if self._write_dirs is not None and not within(path, self._write_dirs):
            allowed = ", ".join(self._write_dirs) if self._write_dirs else "none"
            raise AccessDeniedError(
                f"{what} may not write to {path}: outside the allowed directories ({allowed})"
            )

    def _copy(self, node: exp.Copy) -> Result:
        """``COPY <table or (query)> TO 'folder' (PARTITION BY HASH (keys) INTO n)``."""
        statement = parse_copy(node)
        self._check_write("COPY", statement.path)
        if statement.table is not None:
            table = self._rows_of(statement.table)
        else:
            assert statement.query is not None
            prepared = call_deep(
                self._prepare_statement, statement.query, self._query_settings(None)
            )
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

    @entry_point
    def explain(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        format: ExplainFormat | str = ExplainFormat.TEXT,
        *,
        retry_policy: RetryPolicy | str | None = None,
    ) -> str:
        """The stage graph: stages, their operator pipelines, each exchange's kind and keys,
        as text, JSON or a self-contained HTML page (``format``)."""
        fmt = explain_format(format)
        graph = self.prepare(text, params, retry_policy=retry_policy).graph
        if fmt is ExplainFormat.TEXT:
            return call_deep(explain_graph, graph)
        data = graph_dict(graph)
        if fmt is ExplainFormat.JSON:
            return json.dumps(data, indent=2, default=str)
        from shoal.viz.html import render_html

        return render_html(data, title="shoal EXPLAIN", sql=text)

    @entry_point
    def explain_analyze(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        format: ExplainFormat | str = ExplainFormat.TEXT,
        *,
        timeout: float | None = None,
        progress: Progress | None = None,
        retry_policy: RetryPolicy | str | None = None,
        faults: Sequence[Fault | str] = (),
    ) -> str:
        """Run the query and show what ran (``Result.explain_analyze``)."""
        fmt = explain_format(format)
        result = self.sql(
            text,
            params,
            timeout=timeout,
            progress=progress,
            retry_policy=retry_policy,
            faults=faults,
        )
        return result.explain_analyze(fmt)

    @entry_point
    def close(self) -> None:
        self.interrupt()
        self.catalog = Catalog()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@entry_point
def connect(
    partitions: int | None = None,
    progress: Progress | None = None,
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
    (``retry_policy="task"``). ``progress`` is a callback every query reports its
    progress to (``Connection.sql``).
    """
    return Connection(partitions, progress, runtime=runtime, address=address, **settings)


def _listener(progress: Progress | None) -> ProgressListener | None:
    if progress is None or isinstance(progress, ProgressListener):
        return progress
    return ProgressTracker(progress)


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


def _check_adaptive_settings(settings: dict[str, Any]) -> None:
    """The adaptive settings (scheduler/adaptive.py): switches are booleans, sizes byte
    counts (``"64MiB"`` accepted), the skew factor a number above 1."""
    for name in ("adaptive_broadcast", "adaptive_coalesce", "skew_join"):
        if name in settings and not isinstance(settings[name], bool):
            raise UserError(f"{name} must be True or False, got {settings[name]!r}")
    if "coalesce_target_bytes" in settings:
        settings["coalesce_target_bytes"] = parse_bytes(
            settings["coalesce_target_bytes"], "coalesce_target_bytes"
        )
    for name in ("skew_min_bytes", "scan_task_min_bytes"):  # 0: no minimum
        if name in settings and settings[name] != 0:
            settings[name] = parse_bytes(settings[name], name)
    if "skew_factor" in settings:
        factor = settings["skew_factor"]
        if isinstance(factor, bool) or not isinstance(factor, int | float) or not factor > 1:
            raise UserError(f"skew_factor must be a number above 1, got {factor!r}")


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
