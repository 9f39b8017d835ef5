"""The catalog: table names to sources. Names are case-insensitive, as in SQL."""

from __future__ import annotations

import os
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from shoal.catalog.sources import CsvSource, IpcSource, MemorySource, ParquetSource, TableSource
from shoal.errors import CatalogError, UnknownTableError


class Catalog:
    """Tables (sources) and views (a parsed query, bound where it is used)."""

    def __init__(self) -> None:
        self._tables: dict[str, TableSource] = {}
        # name -> (name as written, the parsed query); kept opaque below the sql layer.
        self._views: dict[str, tuple[str, Any]] = {}

    def register(self, source: TableSource, replace: bool = True) -> TableSource:
        if len(source.schema) == 0:
            raise CatalogError(f"table '{source.name}' has no columns; a table needs at least one")
        key = source.name.lower()
        if not replace and key in self._tables:
            raise CatalogError(f"table '{source.name}' is already registered")
        if key in self._views:
            raise CatalogError(f"'{source.name}' is a view; DROP VIEW it first")
        self._tables[key] = source
        return source

    def create_view(self, name: str, query: Any, replace: bool) -> None:
        key = name.lower()
        if key in self._tables:
            raise CatalogError(f"'{name}' is a table; a view cannot replace it")
        if key in self._views and not replace:
            raise CatalogError(f"view '{name}' already exists (CREATE OR REPLACE VIEW replaces it)")
        self._views[key] = (name, query)

    def view(self, name: str) -> Any | None:
        """The parsed query of view ``name``, or None when there is no such view."""
        found = self._views.get(name.lower())
        return None if found is None else found[1]

    def drop(self, name: str, view: bool, if_exists: bool) -> None:
        """DROP VIEW / DROP TABLE: a missing name is an error unless ``if_exists``."""
        key = name.lower()
        mine, other = (self._views, self._tables) if view else (self._tables, self._views)
        if key in mine:
            del mine[key]
            return
        if key in other:
            kind, wrong = ("a table", "VIEW") if view else ("a view", "TABLE")
            raise CatalogError(f"'{name}' is {kind}, not dropped by DROP {wrong}")
        if not if_exists:
            raise UnknownTableError(name, self.names())

    def register_parquet(
        self, name: str, path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> TableSource:
        return self.register(ParquetSource(name, path, filesystem))

    def register_csv(
        self,
        name: str,
        path: str | os.PathLike[str],
        delimiter: str = ",",
        filesystem: pafs.FileSystem | None = None,
    ) -> TableSource:
        return self.register(CsvSource(name, path, delimiter, filesystem))

    def register_ipc(
        self, name: str, path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
    ) -> TableSource:
        return self.register(IpcSource(name, path, filesystem))

    def register_arrow(self, name: str, data: Any) -> TableSource:
        return self.register(MemorySource(name, to_arrow_table(data)))

    def unregister(self, name: str) -> None:
        self._tables.pop(name.lower(), None)

    def get(self, name: str) -> TableSource:
        source = self._tables.get(name.lower())
        if source is None:
            raise UnknownTableError(name, self.names())
        return source

    def names(self) -> list[str]:
        """Tables and views, sorted."""
        return sorted(
            [t.name for t in self._tables.values()] + [n for n, _ in self._views.values()]
        )


def to_arrow_table(data: Any) -> pa.Table:
    """An Arrow table from an Arrow table/batch, a pandas or a polars frame."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__.split(".")[0]
    if module == "pandas":
        return pa.Table.from_pandas(data, preserve_index=False)
    if module == "polars":
        table = data.to_arrow()
        assert isinstance(table, pa.Table)
        return table
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise CatalogError(
        f"cannot register a {type(data).__name__}: expected a pyarrow Table or RecordBatch, "
        "a pandas DataFrame or a polars DataFrame"
    )
