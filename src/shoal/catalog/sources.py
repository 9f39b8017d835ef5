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
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from shoal.catalog.csv_checks import (
    check_delimiter,
    check_schema,
    check_table,
    invalid_utf8_error,
)
from shoal.catalog.files import Location, list_files, resolve
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
    #: Where the split paths live: ``None`` for local OS paths, else a pyarrow filesystem
    #: (object stores: paths are ``bucket/key``).
    filesystem: pafs.FileSystem | None = None

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


def _find_files(loc: Location, suffixes: tuple[str, ...]) -> list[str]:
    if loc.filesystem is None:
        return resolve_paths(loc.path, suffixes)
    return [f.path for f in list_files(loc, suffixes)]


def _open_input(filesystem: pafs.FileSystem | None, path: str) -> pa.NativeFile:
    """A random-access file: memory-mapped when local, a ranged reader on an object store."""
    if filesystem is None:
        return pa.memory_map(path)
    return filesystem.open_input_file(path)


class ParquetSource(TableSource):
    """Parquet files; each row group is a split. Statistics from the footers.

    A folder with a ``_shoal_layout.json`` (written by ``Connection.write_partitioned``)
    is read as exactly the shard files the layout names, in shard order, and the layout
    is kept on ``self.layout`` when this engine can use it (same hash function, key
    columns present with the recorded types); else ``layout_ignored_reason`` says why.

    Files on an object store: their footers are read once at registration and kept
    here (an object changed afterwards needs the table registered again); local
    footers are cached while the file keeps its mtime and size (``parquet_footer``).
    """

    format = "parquet"

    def __init__(
        self,
        name: str,
        path: str | os.PathLike[str],
        filesystem: pafs.FileSystem | None = None,
    ):
        self.name = name
        loc = resolve(path, filesystem)
        self.filesystem = fs = loc.filesystem
        self.location = loc.display
        recorded: HashLayout | None = None
        if has_layout(loc.path, fs):
            recorded = read_layout(loc.path, fs)
            self.files = list(recorded.files)
        else:
            self.files = _find_files(loc, (".parquet", ".parq", ".pq"))
        self._footers: dict[str, pq.FileMetaData] = {}
        self._splits: list[Split] = []
        schema: pa.Schema | None = None
        for f in self.files:
            try:
                md = self.footer(f)
                file_schema = canonical_schema(md.schema.to_arrow_schema())
            except (OSError, pa.ArrowInvalid) as err:
                raise CatalogError(f"cannot read Parquet file {self._show(f)}: {err}") from err
            if fs is not None:
                self._footers[f] = md
            if schema is None:
                schema = file_schema
            elif not file_schema.equals(schema):
                raise CatalogError(
                    f"Parquet file {self._show(f)} has schema {file_schema} which differs from {schema}"
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

    def footer(self, path: str) -> pq.FileMetaData:
        """The footer of one of this table's files (cached; see the class docstring)."""
        if self.filesystem is None:
            return parquet_footer(path)
        found = self._footers.get(path)
        if found is None:
            with self.filesystem.open_input_file(path) as f:
                found = pq.read_metadata(f)
        return found

    def file_version(self, path: str) -> tuple[str, int, int] | None:
        """``(path, mtime_ns, size)`` of a local file (None when gone); remote files keep
        the version their footer was read at, so they report a constant."""
        if self.filesystem is not None:
            return path, 0, 0
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return path, stat.st_mtime_ns, stat.st_size

    def open(self, path: str) -> pa.NativeFile:
        return _open_input(self.filesystem, path)

    def _show(self, path: str) -> str:
        return path if self.filesystem is None else f"{self.filesystem.type_name}://{path}"

    def splits(self) -> list[Split]:
        return list(self._splits)

    def describe(self) -> str:
        text = f"parquet files={len(self.files)} row_groups={len(self._splits)}"
        if self.filesystem is not None:
            text += f" store={self.filesystem.type_name}"
        if self.layout is not None:
            text += f" layout={self.layout.describe()}"
        return text


class CsvSource(TableSource):
    """CSV files with a header row; each file is a split. Types inferred by pyarrow."""

    format = "csv"

    def __init__(
        self,
        name: str,
        path: str | os.PathLike[str],
        delimiter: str = ",",
        filesystem: pafs.FileSystem | None = None,
    ):
        self.name = name
        self.delimiter = check_delimiter(delimiter)
        loc = resolve(path, filesystem)
        self.filesystem = fs = loc.filesystem
        self.files = _find_files(loc, (".csv", ".tsv", ".txt"))
        try:
            with pcsv.open_csv(
                self._stream(self.files[0]), parse_options=pcsv.ParseOptions(delimiter=delimiter)
            ) as reader:
                self.schema = canonical_schema(reader.schema)
        except (OSError, pa.ArrowInvalid) as err:
            raise CatalogError(f"cannot read CSV file {self.files[0]}: {err}") from err
        check_schema(self.files[0], self.schema)
        if fs is None:
            sizes = [os.path.getsize(f) for f in self.files]
        else:
            sizes = [info.size or 0 for info in fs.get_file_info(self.files)]
        self._splits = [Split(f, None, -1, size) for f, size in zip(self.files, sizes, strict=True)]

    def _stream(self, path: str) -> str | pa.NativeFile:
        return path if self.filesystem is None else self.filesystem.open_input_stream(path)

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
                self._stream(split.path),
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


class IpcSource(TableSource):
    """Arrow IPC files (the random-access "file" format, also Feather v2); each record
    batch is a split. Local files are memory-mapped and their row counts exact; on an
    object store only each file's footer is read at registration (rows estimated from
    bytes) and a scan fetches just the batches it reads."""

    format = "ipc"

    def __init__(
        self,
        name: str,
        path: str | os.PathLike[str],
        filesystem: pafs.FileSystem | None = None,
    ):
        self.name = name
        loc = resolve(path, filesystem)
        self.filesystem = fs = loc.filesystem
        self.files = _find_files(loc, (".arrow", ".ipc", ".feather"))
        self._splits: list[Split] = []
        schema: pa.Schema | None = None
        for f in self.files:
            try:
                with self.open(f) as handle:
                    reader = ipc.open_file(handle)
                    file_schema = canonical_schema(reader.schema)
                    count = reader.num_record_batches
                    size = handle.size()
                    for i in range(count):
                        if fs is None:
                            batch = reader.get_batch(i)  # memory-mapped: no copy
                            rows, nbytes = batch.num_rows, batch.nbytes
                        else:
                            rows, nbytes = -1, size // max(count, 1)
                        self._splits.append(Split(f, (i,), rows, nbytes))
            except (OSError, pa.ArrowInvalid) as err:
                raise CatalogError(f"cannot read Arrow IPC file {f}: {err}") from err
            if schema is None:
                schema = file_schema
            elif not file_schema.equals(schema):
                raise CatalogError(
                    f"Arrow IPC file {f} has schema {file_schema} which differs from {schema}"
                )
        assert schema is not None
        self.schema = schema

    def open(self, path: str) -> pa.NativeFile:
        return _open_input(self.filesystem, path)

    def splits(self) -> list[Split]:
        return list(self._splits)

    def statistics(self) -> TableStatistics:
        if all(s.num_rows >= 0 for s in self._splits):
            return super().statistics()
        size = sum(s.num_bytes for s in self._splits)
        return TableStatistics(max(1, size // 100), size)

    def describe(self) -> str:
        return f"ipc files={len(self.files)} batches={len(self._splits)}"


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
