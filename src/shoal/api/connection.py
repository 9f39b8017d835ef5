"""The embedded entry point: a connection owns a catalog and runs queries.

SQL --parse--> AST --bind--> logical --optimize--> logical --plan--> physical
    --EnforceDistribution--> physical+exchanges --SanityCheck--> --cut--> stages
    --runtime--> Arrow
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from shoal.api.result import Result
from shoal.api.stream import QueryStream
from shoal.catalog.catalog import Catalog
from shoal.catalog.sources import TableSource
from shoal.errors import UserError
from shoal.logical.plan import LogicalQuery
from shoal.memory.size import parse_bytes
from shoal.metrics.query import QueryMetrics
from shoal.optimizer.optimizer import optimize
from shoal.physical.context import Settings
from shoal.physical.planner import PhysicalPlanner
from shoal.physical.rules.encoded_keys import keep_group_keys_encoded
from shoal.physical.rules.enforce_distribution import enforce_distribution
from shoal.physical.rules.sanity_check import sanity_check
from shoal.physical.rules.share_scans import share_scans
from shoal.runtime.local import LocalRuntime
from shoal.sql.binder import Binder
from shoal.sql.copy import is_copy, parse_copy
from shoal.sql.parameters import bind_parameters
from shoal.sql.parser import parse_sql
from shoal.stages.explain import analyze_dict, explain_graph
from shoal.stages.graph import StageGraph, build_stage_graph
from shoal.storage.writer import WriteSummary, write_hash_partitioned


@dataclass(frozen=True)
class PreparedQuery:
    logical: LogicalQuery
    graph: StageGraph


class Connection:
    def __init__(self, partitions: int | None = None, **settings: Any):
        cores = os.cpu_count() or 1
        if partitions is not None and (not isinstance(partitions, int) or partitions < 1):
            raise UserError(f"partitions must be a positive integer, got {partitions!r}")
        known = set(Settings.__dataclass_fields__)
        unknown = set(settings) - known
        if unknown:
            raise UserError(
                f"unknown setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}"
            )
        settings.setdefault("max_running_tasks", cores)
        if settings.get("memory_limit") is not None:
            settings["memory_limit"] = parse_bytes(settings["memory_limit"])
        else:
            settings.pop("memory_limit", None)  # the default: a share of physical memory
        spill_dir = settings.get("spill_dir")
        if spill_dir is not None:
            settings["spill_dir"] = os.fspath(spill_dir)
        self.settings = Settings(partitions=partitions or cores, **settings)
        self.catalog = Catalog()
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

    def prepare(self, text: str, params: Sequence[Any] | None = None) -> PreparedQuery:
        return self._prepare_statement(bind_parameters(parse_sql(text), params))

    def _prepare_statement(self, statement: exp.Expr) -> PreparedQuery:
        logical = optimize(Binder(self.catalog).bind_statement(statement))
        physical = PhysicalPlanner(self.settings).plan(logical.plan)
        physical = enforce_distribution(physical, self.settings)
        physical = keep_group_keys_encoded(share_scans(physical, self.settings))
        physical = sanity_check(physical)
        return PreparedQuery(logical, build_stage_graph(physical))

    def sql(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        memory_limit: int | str | None = None,
    ) -> Result:
        """Run one statement to completion.

        ``params`` are the values of its ``?`` (or ``$1``, ``$2`` …) placeholders,
        bound as typed values. ``timeout`` (seconds) stops the query with
        ``QueryTimeoutError``; Ctrl-C stops it with ``QueryInterruptedError``.
        ``memory_limit`` ("512MiB", "1GiB" or bytes) replaces the connection's budget
        for this query: past it operators spill, or fail with ``ResourceExhaustedError``.
        """
        stripped = text.lstrip()
        head = stripped[:16].upper()
        if head.startswith("EXPLAIN ANALYZE"):
            body = stripped[len("EXPLAIN ANALYZE") :]
            result = self.sql(body, params, timeout=timeout, memory_limit=memory_limit)
            return Result(_text_table(result.explain_analyze()))
        if head.startswith("EXPLAIN"):
            body = stripped[len("EXPLAIN") :]
            return Result(_text_table(explain_graph(self.prepare(body, params).graph)))
        if is_copy(stripped):
            return self._copy(text)
        return self.stream(text, params, timeout=timeout, memory_limit=memory_limit).result()

    def stream(
        self,
        text: str,
        params: Sequence[Any] | None = None,
        *,
        timeout: float | None = None,
        memory_limit: int | str | None = None,
    ) -> QueryStream:
        """Start a query and return its result as a stream of Arrow batches.

        The query runs while the stream is read; ``QueryStream.cancel()`` stops it from
        any thread, and a reader that stops reading holds it back (bounded buffers).
        """
        _check_timeout(timeout)
        settings = self.settings
        if memory_limit is not None:
            settings = dataclasses.replace(settings, memory_limit=parse_bytes(memory_limit))
        prepared = self.prepare(text, params)
        graph = prepared.graph
        run = LocalRuntime(settings).start(graph, timeout)

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
            prepared = self._prepare_statement(statement.query)
            table, _ = LocalRuntime(self.settings).execute(prepared.graph)
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

    def explain(self, text: str, params: Sequence[Any] | None = None) -> str:
        """The stage graph: stages, their operator pipelines, each exchange's kind and keys."""
        return explain_graph(self.prepare(text, params).graph)

    def explain_analyze(self, text: str, params: Sequence[Any] | None = None) -> str:
        return self.sql(text, params).explain_analyze()

    def close(self) -> None:
        self.interrupt()
        self.catalog = Catalog()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(partitions: int | None = None, **settings: Any) -> Connection:
    """An embedded connection; ``partitions`` is the tasks per stage (default: cores)."""
    return Connection(partitions, **settings)


def _check_timeout(timeout: float | None) -> None:
    if timeout is None:
        return
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise UserError(f"timeout must be a positive number of seconds, got {timeout!r}")


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text_table(text: str) -> pa.Table:
    return pa.table({"plan": text.splitlines()})
