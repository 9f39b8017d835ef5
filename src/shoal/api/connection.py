"""The embedded entry point: a connection owns a catalog and runs queries.

SQL --parse--> AST --bind--> logical --optimize--> logical --plan--> physical
    --EnforceDistribution--> physical+exchanges --SanityCheck--> --cut--> stages
    --runtime--> Arrow
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from sqlglot import exp

from shoal.api.boundary import entry_point
from shoal.api.result import Result
from shoal.catalog.catalog import Catalog
from shoal.catalog.sources import TableSource
from shoal.errors import UserError
from shoal.logical.plan import LogicalQuery
from shoal.optimizer.optimizer import optimize
from shoal.physical.context import Settings
from shoal.physical.planner import PhysicalPlanner
from shoal.physical.rules.encoded_keys import keep_group_keys_encoded
from shoal.physical.rules.enforce_distribution import enforce_distribution
from shoal.physical.rules.sanity_check import sanity_check
from shoal.physical.rules.share_scans import share_scans
from shoal.recursion import call_deep
from shoal.runtime.local import LocalRuntime
from shoal.sql.binder import Binder
from shoal.sql.copy import is_copy, parse_copy
from shoal.sql.parser import parse_sql
from shoal.stages.explain import analyze_dict, explain_graph
from shoal.stages.graph import StageGraph, build_stage_graph
from shoal.storage.writer import WriteSummary, write_hash_partitioned


@dataclass(frozen=True)
class PreparedQuery:
    logical: LogicalQuery
    graph: StageGraph


class Connection:
    """Every public method lets only ``ShoalError`` subclasses out (``api/boundary.py``)."""

    @entry_point
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
        self.settings = Settings(partitions=partitions or cores, **settings)
        self.catalog = Catalog()

    # ----------------------------------------------------------- registration

    @entry_point
    def register_parquet(self, name: str, path: str | os.PathLike[str]) -> TableSource:
        """A Parquet file, a folder of them (searched recursively) or a glob."""
        return self.catalog.register_parquet(name, path)

    @entry_point
    def register_csv(
        self, name: str, path: str | os.PathLike[str], delimiter: str = ","
    ) -> TableSource:
        return self.catalog.register_csv(name, path, delimiter)

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
    def prepare(self, text: str) -> PreparedQuery:
        return call_deep(self._parse_and_prepare, text)

    def _parse_and_prepare(self, text: str) -> PreparedQuery:
        return self._prepare_statement(parse_sql(text))

    def _prepare_statement(self, statement: exp.Expr) -> PreparedQuery:
        """Bind, optimize and plan: recursive over the query's trees, so run by ``call_deep``."""
        logical = optimize(Binder(self.catalog).bind_statement(statement))
        physical = PhysicalPlanner(self.settings).plan(logical.plan)
        physical = enforce_distribution(physical, self.settings)
        physical = keep_group_keys_encoded(share_scans(physical, self.settings))
        physical = sanity_check(physical)
        return PreparedQuery(logical, build_stage_graph(physical))

    @entry_point
    def sql(self, text: str) -> Result:
        stripped = text.lstrip()
        head = stripped[:16].upper()
        if head.startswith("EXPLAIN ANALYZE"):
            return Result(_text_table(self.explain_analyze(stripped[len("EXPLAIN ANALYZE") :])))
        if head.startswith("EXPLAIN"):
            return Result(_text_table(self.explain(stripped[len("EXPLAIN") :])))
        if is_copy(stripped):
            return self._copy(text)
        prepared = self.prepare(text)
        table, metrics = LocalRuntime(self.settings).execute(prepared.graph)
        table = table.rename_columns(list(prepared.logical.output_names))
        # Rendering recurses over expression trees as deep as planning did.
        return Result(
            table,
            call_deep(explain_graph, prepared.graph, metrics),
            metrics,
            call_deep(analyze_dict, prepared.graph, metrics),
        )

    # ------------------------------------------------------- partitioned writes

    @entry_point
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
        statement = call_deep(parse_copy, text)
        if statement.table is not None:
            table = self._rows_of(statement.table)
        else:
            assert statement.query is not None
            prepared = call_deep(self._prepare_statement, statement.query)
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

    @entry_point
    def explain(self, text: str) -> str:
        """The stage graph: stages, their operator pipelines, each exchange's kind and keys."""
        return call_deep(explain_graph, self.prepare(text).graph)

    @entry_point
    def explain_analyze(self, text: str) -> str:
        return self.sql(text).explain_analyze()

    @entry_point
    def close(self) -> None:
        self.catalog = Catalog()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@entry_point
def connect(partitions: int | None = None, **settings: Any) -> Connection:
    """An embedded connection; ``partitions`` is the tasks per stage (default: cores)."""
    return Connection(partitions, **settings)


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _text_table(text: str) -> pa.Table:
    return pa.table({"plan": text.splitlines()})
