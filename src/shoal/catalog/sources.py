"""Table sources: where a registered table's rows come from, cut into splits.

A split is the unit a scan task reads: a Parquet row group (or a group of
them), a CSV file, or a slice of an in-memory table. Sources also report
statistics (rows, bytes) that the planner uses to size the work.
"""

from __future__ import annotations

import glob
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from shoal.catalog.csv_checks import (
    check_delimiter,
    check_schema,
    check_table,
    invalid_utf8_error,
)
from shoal.catalog.layout import HashLayout, check_layout, has_layout, read_layout
from shoal.errors import CatalogError
from shoal.types import canonical_schema


def parquet_footer(path: str) -> pq.FileMetaData:
    """A Parquet file's footer, read once while the file keeps its mtime and size.

    Raises ``OSError`` when the file is gone and ``pyarrow.ArrowInvalid`` when it is
    not Parquet. The planner and every scan task ask for the same few footers.
    """
    stat = os.stat(path)
    return _footer(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=1024)
def _footer(path: str, mtime_ns: int, size: int) -> pq.FileMetaData:
    return pq.read_metadata(path)


@dataclass(frozen=True)
class Split:
    """One unit of scan work. ``row_groups`` is None for a whole file or a memory slice."""

    path: str
    row_groups: tuple[int, ...] | None
    num_rows: int
    num_bytes: int
    # For in-memory tables: the row range [start, start + num_rows).
    start: int = 0


@dataclass(frozen=True)
class TableStatistics:
    num_rows: int
    num_bytes: int


class TableSource:
    """What the catalog holds for a table: its schema, splits and statistics."""

    name: str
    format: str
    schema: pa.Schema  # canonical (engine) schema
    #: A usable hash layout (see ``catalog/layout.py``): the table's rows are already
    #: hash-partitioned on ``layout.keys`` into ``layout.shards`` shards.
    layout: HashLayout | None = None
    #: Why a layout found beside the files is not used (the table still reads normally).
    layout_ignored_reason: str | None = None

    def splits(self) -> list[Split]:
        raise NotImplementedError

    def statistics(self) -> TableStatistics:
        splits = self.splits()
        return TableStatistics(sum(s.num_rows for s in splits), sum(s.num_bytes for s in splits))

    def describe(self) -> str:
        return self.format

    def shard_splits(self) -> list[tuple[int, ...]]:
        """Indexes into ``splits()`` per shard of the layout (shard i = ``layout.files[i]``)."""
        if self.layout is None:
            raise CatalogError(f"table '{self.name}' has no usable layout")
        shard_of = {f: i for i, f in enumerate(self.layout.files)}
        out: list[list[int]] = [[] for _ in range(self.layout.shards)]
        for index, split in enumerate(self.splits()):
            out[shard_of[split.path]].append(index)
        return [tuple(s) for s in out]


def resolve_paths(path: str | os.PathLike[str], suffixes: tuple[str, ...]) -> list[str]:
    """A file, a folder (searched recursively for ``suffixes``) or a glob, as sorted files."""
    p = str(path)
    if any(ch in p for ch in "*?["):
        files = sorted(f for f in glob.glob(p, recursive=True) if os.path.isfile(f))
    elif os.path.isdir(p):
        files = sorted(
            str(f)
            for f in Path(p).rglob("*")
            if f.is_file() and f.name.endswith(suffixes) and not f.name.startswith((".", "_"))
        )
    elif os.path.isfile(p):
        files = [p]
    else:
        raise CatalogError(f"no such file or folder: {p}")
    if not files:
        raise CatalogError(f"no {'/'.join(suffixes)} files found at {p}")
    return files


class LayoutIgnoredWarning(UserWarning):
    """A table's recorded layout cannot be used; it is read as an unpartitioned table."""


class ParquetSource(TableSource):
    """Parquet files; each row group is a split. Statistics from the footers.

    A folder with a ``_shoal_layout.json`` (written by ``Connection.write_partitioned``)
    is read as exactly the shard files the layout names, in shard order, and the layout
    is kept on ``self.layout`` when this engine can use it (same hash function, key
    columns present with the recorded types); else ``layout_ignored_reason`` says why.
    """

    format = "parquet"

    def __init__(self, name: str, path: str | os.PathLike[str]):
        self.name = name
        recorded: HashLayout | None = None
        if has_layout(path):
            recorded = read_layout(path)
            self.files = list(recorded.files)
        else:
            self.files = resolve_paths(path, (".parquet", ".parq", ".pq"))
        self._splits: list[Split] = []
        schema: pa.Schema | None = None
        for f in self.files:
            try:
                md = pq.read_metadata(f)
                file_schema = canonical_schema(pq.read_schema(f))
            except (OSError, pa.ArrowInvalid) as err:
                raise CatalogError(f"cannot read Parquet file {f}: {err}") from err
            if schema is None:
                schema = file_schema
            elif not file_schema.equals(schema):
                raise CatalogError(
                    f"Parquet file {f} has schema {file_schema} which differs from {schema}"
                )
            for rg in range(md.num_row_groups):
                group = md.row_group(rg)
                self._splits.append(Split(f, (rg,), group.num_rows, group.total_byte_size))
        assert schema is not None
        self.schema = schema
        if recorded is not None:
            reason = check_layout(recorded, schema)
            if reason is None:
                self.layout = recorded
            else:
                self.layout_ignored_reason = reason
                warnings.warn(
                    f"table '{name}': layout {recorded.describe()} ignored: {reason}",
                    LayoutIgnoredWarning,
                    stacklevel=4,  # the caller of Connection.register_parquet
                )

    def splits(self) -> list[Split]:
        return list(self._splits)

    def describe(self) -> str:
        text = f"parquet files={len(self.files)} row_groups={len(self._splits)}"
        if self.layout is not None:
            text += f" layout={self.layout.describe()}"
        return text


class CsvSource(TableSource):
    """CSV files with a header row; each file is a split. Types inferred by pyarrow."""

    format = "csv"

    def __init__(self, name: str, path: str | os.PathLike[str], delimiter: str = ","):
        self.name = name
        self.delimiter = check_delimiter(delimiter)
        self.files = resolve_paths(path, (".csv", ".tsv", ".txt"))
        try:
            with pcsv.open_csv(
                self.files[0], parse_options=pcsv.ParseOptions(delimiter=delimiter)
            ) as reader:
                self.schema = canonical_schema(reader.schema)
        except (OSError, pa.ArrowInvalid) as err:
            raise CatalogError(f"cannot read CSV file {self.files[0]}: {err}") from err
        check_schema(self.files[0], self.schema)
        self._splits = [Split(f, None, -1, os.path.getsize(f)) for f in self.files]

    def splits(self) -> list[Split]:
        return list(self._splits)

    def statistics(self) -> TableStatistics:
        # Row counts are unknown without reading; estimate ~100 bytes a row.
        size = sum(s.num_bytes for s in self._splits)
        return TableStatistics(max(1, size // 100), size)

    def read(self, split: Split, columns: list[str]) -> pa.Table:
        convert = pcsv.ConvertOptions(
            column_types={f.name: f.type for f in self.schema},
            include_columns=columns,
        )
        try:
            table = pcsv.read_csv(
                split.path,
                parse_options=pcsv.ParseOptions(delimiter=self.delimiter),
                convert_options=convert,
                read_options=pcsv.ReadOptions(use_threads=False),
            )
        except (OSError, pa.ArrowInvalid) as err:
            if "UTF8" in str(err):
                raise invalid_utf8_error(split.path) from err
            raise CatalogError(f"cannot read CSV file {split.path}: {err}") from err
        check_table(split.path, table)
        return table


class MemorySource(TableSource):
    """An in-memory Arrow table; splits are row slices of about ``split_rows`` rows."""

    format = "memory"

    def __init__(self, name: str, table: pa.Table, split_rows: int = 1 << 17):
        self.name = name
        self.schema = canonical_schema(table.schema)
        self.table = table.cast(self.schema) if not table.schema.equals(self.schema) else table
        n = table.num_rows
        per_row = table.nbytes / n if n else 0
        self._splits = [
            Split(
                "<memory>",
                None,
                min(split_rows, n - start),
                int(per_row * min(split_rows, n - start)),
                start,
            )
            for start in range(0, n, split_rows)
        ]

    def splits(self) -> list[Split]:
        return list(self._splits)

    def describe(self) -> str:
        return f"memory rows={self.table.num_rows}"
