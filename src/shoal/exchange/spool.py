"""Materialized exchanges: each producer task writes its output once, to a spool.

One producer task attempt writes one Arrow IPC *file* of all its batches, in the
order it made them, plus a small *index* naming the destination of each batch::

    <query folder>/s<stage>/p<partition>.a<attempt>.arrow   record batches
    <query folder>/s<stage>/p<partition>.a<attempt>.index   JSON: per batch (dest, rows, bytes[, bounds])

A hash exchange writes each batch once, its rows sorted by consumer partition, with
destination ``SORTED`` and the bounds of each partition's rows in it (partition ``d``
is rows ``[bounds[d], bounds[d + 1])``): a producer writes one IPC batch per batch it
made whatever the partition count, and a consumer of a group of consecutive
partitions reads one contiguous range of each batch. A broadcast writes each
batch once, with destination ``ALL``; a gather, an ordered merge and the query's
result write everything to destination 0 (an ordered merge's single consumer
merges the producers' files, each of which is sorted). The index is written last,
and atomically (a rename on a local disk, a single object PUT on S3): an attempt
whose index exists is complete. Which complete attempt of a partition is *the*
output is the scheduler's decision (the first one reported wins); consumers are
told exactly which attempt of each producer partition to read, so a late or
duplicate attempt's files are never read (zombie fencing). The whole query folder
is removed when the query ends.

The spool root is a local folder or any pyarrow filesystem URI
(``s3://bucket/prefix?endpoint_override=…``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.ipc as ipc

from shoal.errors import TransientError
from shoal.exchange.merge import merge_sorted
from shoal.exchange.rebatch import rebatch
from shoal.exchange_spec import ExchangeKind, ExchangeSpec, InputSlice
from shoal.hashing import partition_ids, sort_by_partition

#: Destination of a batch every consumer task reads (broadcast).
ALL = -1
#: Destination of a batch sorted by consumer partition; its index entry holds the bounds.
SORTED = -2

#: One index entry: (destination, rows, bytes) or (SORTED, rows, bytes, bounds).
IndexEntry = tuple[int, int, int] | tuple[int, int, int, list[int]]


def open_spool_root(uri: str | None) -> tuple[pafs.FileSystem, str]:
    """The filesystem and base path of a spool root (``None``: the system temp folder)."""
    if uri is None:
        return pafs.LocalFileSystem(), os.path.join(tempfile.gettempdir(), "shoal-spool")
    if "://" not in uri:
        return pafs.LocalFileSystem(), os.path.abspath(uri)
    try:
        fs, path = pafs.FileSystem.from_uri(uri)
    except (pa.ArrowInvalid, OSError) as err:
        raise TransientError(f"cannot open spool location {uri!r}: {err}") from err
    return fs, path.rstrip("/")


@dataclass(frozen=True)
class SpoolLocation:
    """Where one query's exchange data lives (plain data; travels with tasks)."""

    root: str | None  # the spool root URI or folder; None = the system temp folder
    query_folder: str  # path of the query's folder inside the root's filesystem

    def filesystem(self) -> pafs.FileSystem:
        return open_spool_root(self.root)[0]

    def stage_folder(self, stage: int) -> str:
        return f"{self.query_folder}/s{stage}"

    def paths(self, stage: int, partition: int, attempt: int) -> tuple[str, str]:
        base = f"{self.stage_folder(stage)}/p{partition}.a{attempt}"
        return base + ".arrow", base + ".index"


def create_query_folder(root: str | None, query_id: str) -> SpoolLocation:
    fs, base = open_spool_root(root)
    folder = f"{base}/{query_id}"
    try:
        fs.create_dir(folder, recursive=True)
    except OSError as err:
        raise TransientError(f"cannot create spool folder {folder!r}: {err}") from err
    return SpoolLocation(root, folder)


def remove_query_folder(location: SpoolLocation) -> None:
    """Delete everything the query spooled (idempotent; a missing folder is fine)."""
    fs = location.filesystem()
    try:
        fs.delete_dir(location.query_folder)
    except FileNotFoundError:
        pass
    except OSError:
        # S3 has no real folders: an emptied prefix may already be gone.
        info = fs.get_file_info(location.query_folder)
        if info.type != pafs.FileType.NotFound:
            raise


@dataclass(frozen=True)
class SpoolFile:
    """One committed producer task attempt, as its consumers read it."""

    partition: int
    attempt: int
    data_path: str
    index_path: str


@dataclass(frozen=True)
class SpoolInput:
    """A producer stage's committed output: one file per producer partition, in order."""

    stage: int
    spec: ExchangeSpec | None  # None: the query's result (everything to destination 0)
    schema: pa.Schema
    location: SpoolLocation
    files: tuple[SpoolFile, ...]


@dataclass
class SpoolWritten:
    """What one committed attempt wrote (for the scheduler and EXPLAIN ANALYZE)."""

    file: SpoolFile
    rows_per_destination: list[int]
    bytes_per_destination: list[int]  # in-memory (Arrow) bytes, as the pipelined exchange counts
    batches: int
    spooled_bytes: int  # bytes of the data file plus its index


class SpoolWriter:
    """The output of one producer task attempt.

    Batches are dealt by the exchange's rule as they come (``write``) and appended to
    one IPC file; ``commit`` closes it and writes the index. A writer that is never
    committed (the task failed, was cancelled) leaves an incomplete attempt that no
    consumer reads; ``abort`` deletes what it wrote.
    """

    def __init__(
        self,
        location: SpoolLocation,
        stage: int,
        partition: int,
        attempt: int,
        spec: ExchangeSpec | None,
        schema: pa.Schema,
    ):
        self._fs = location.filesystem()
        self._spec = spec
        self._data_path, self._index_path = location.paths(stage, partition, attempt)
        self._file = SpoolFile(partition, attempt, self._data_path, self._index_path)
        self._destinations = spec.num_partitions if spec is not None else 1
        if spec is not None and spec.kind == ExchangeKind.MERGE:
            self._destinations = 1
        self._rows = np.zeros(self._destinations, dtype=np.int64)
        self._bytes = np.zeros(self._destinations, dtype=np.int64)
        self._entries: list[IndexEntry] = []
        self._round_robin = partition
        try:
            self._fs.create_dir(location.stage_folder(stage), recursive=True)
            self._sink = self._fs.open_output_stream(self._data_path)
            self._writer = ipc.new_file(self._sink, schema)
        except OSError as err:
            raise TransientError(f"cannot write spool file {self._data_path!r}: {err}") from err

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        spec = self._spec
        if spec is None or spec.kind in (ExchangeKind.GATHER, ExchangeKind.MERGE):
            self._append(0, batch)
        elif spec.kind == ExchangeKind.HASH:
            ids = partition_ids([batch.column(k) for k in spec.keys], spec.num_partitions)
            ordered, bounds = sort_by_partition(batch, ids, spec.num_partitions)
            self._append_sorted(ordered, bounds)
        elif spec.kind == ExchangeKind.BROADCAST:
            self._append(ALL, batch)
        elif spec.kind == ExchangeKind.ROUND_ROBIN:
            self._append(self._round_robin % spec.num_partitions, batch)
            self._round_robin += 1
        else:
            raise AssertionError(spec.kind)

    @property
    def rows(self) -> list[int]:
        """Rows written per destination so far."""
        return [int(r) for r in self._rows]

    @property
    def bytes(self) -> list[int]:
        """In-memory bytes written per destination so far (a sorted batch's bytes are
        shared out in proportion to each destination's rows)."""
        return [int(b) for b in self._bytes]

    def _write_batch(self, batch: pa.RecordBatch) -> None:
        try:
            self._writer.write_batch(batch)
        except OSError as err:
            raise TransientError(f"cannot write spool file {self._data_path!r}: {err}") from err

    def _append(self, dest: int, batch: pa.RecordBatch) -> None:
        self._write_batch(batch)
        size = batch.nbytes
        self._entries.append((dest, batch.num_rows, size))
        if dest == ALL:
            self._rows += batch.num_rows
            self._bytes += size
        else:
            self._rows[dest] += batch.num_rows
            self._bytes[dest] += size

    def _append_sorted(self, batch: pa.RecordBatch, bounds: list[int]) -> None:
        self._write_batch(batch)
        size, rows = batch.nbytes, batch.num_rows
        edges = np.asarray(bounds, dtype=np.int64)
        counts = edges[1:] - edges[:-1]
        self._entries.append((SORTED, rows, size, bounds))
        self._rows += counts
        self._bytes += (counts * size) // rows

    def commit(self) -> SpoolWritten:
        """Finish the data file, then write the index: the attempt is complete."""
        try:
            self._writer.close()
            self._sink.close()
            data_bytes = self._fs.get_file_info(self._data_path).size or 0
            index = json.dumps({"batches": self._entries}).encode()
            _write_atomically(self._fs, self._index_path, index)
        except OSError as err:
            raise TransientError(f"cannot commit spool file {self._data_path!r}: {err}") from err
        return SpoolWritten(
            self._file, self.rows, self.bytes, len(self._entries), data_bytes + len(index)
        )

    def abort(self) -> None:
        """Close and delete what this attempt wrote; raises nothing."""
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - already failing; the folder goes at query end
            pass
        try:
            self._sink.close()
            self._fs.delete_file(self._data_path)
        except Exception:  # noqa: BLE001
            pass


def _write_atomically(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    if isinstance(fs, pafs.LocalFileSystem):
        # A local file appears as it is written: write aside, then rename into place.
        tmp = path + ".tmp"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, path)
    else:
        # An object store makes an object visible only once its upload completes.
        with fs.open_output_stream(path) as out:
            out.write(data)


def _read_index(fs: pafs.FileSystem, path: str) -> list[IndexEntry]:
    with fs.open_input_stream(path) as f:
        return [tuple(e) for e in json.loads(f.read())["batches"]]  # type: ignore[misc]


def _runs(destinations: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted destinations as runs of consecutive ones: ``(first, end)`` each."""
    runs: list[tuple[int, int]] = []
    for d in sorted(destinations):
        if runs and runs[-1][1] == d:
            runs[-1] = (runs[-1][0], d + 1)
        else:
            runs.append((d, d + 1))
    return runs


def _ranges(entry: IndexEntry, runs: list[tuple[int, int]] | None) -> list[tuple[int, int]]:
    """The row ranges of one batch addressed to the destinations in ``runs`` (None: all)."""
    dest, rows = entry[0], entry[1]
    if runs is None or dest == ALL:
        return [(0, rows)]
    if dest == SORTED:
        bounds = entry[3]  # type: ignore[misc]
        out = []
        for first, end in runs:
            a, b = bounds[first], bounds[end]
            if b > a:
                out.append((a, b))
        return out
    return [(0, rows)] if any(first <= dest < end for first, end in runs) else []


def _read_file(
    fs: pafs.FileSystem,
    file: SpoolFile,
    destination: int | None | frozenset[int],
    rows: tuple[int, int] | None = None,
) -> Iterator[pa.RecordBatch]:
    """The rows of one committed attempt addressed to ``destination`` (None: all; a set:
    any of them), batch by batch in the order written; with ``rows``, only rows
    [first, end) of what it addressed there."""
    runs = (
        None
        if destination is None
        else _runs(destination if isinstance(destination, frozenset) else (destination,))
    )
    try:
        entries = _read_index(fs, file.index_path)
        # (batch, first row, end row) of every range to read, in file order.
        wanted = [(i, a, b) for i, entry in enumerate(entries) for a, b in _ranges(entry, runs)]
        if rows is not None:
            # Keep the parts of the ranges inside the row range.
            seen, kept = 0, []
            for i, a, b in wanted:
                n = b - a
                lo, hi = max(rows[0] - seen, 0), min(rows[1] - seen, n)
                if hi > lo:
                    kept.append((i, a + lo, a + hi))
                seen += n
            wanted = kept
        if not wanted:
            return
        # A local file is memory-mapped: its batches are then read without a copy.
        source = (
            pa.memory_map(file.data_path)
            if isinstance(fs, pafs.LocalFileSystem)
            else fs.open_input_file(file.data_path)
        )
    except OSError as err:
        raise TransientError(f"cannot read spool file {file.data_path!r}: {err}") from err
    with source:
        reader = ipc.open_file(source)
        for i, a, b in wanted:
            try:
                batch = reader.get_batch(i)
            except OSError as err:
                raise TransientError(f"cannot read spool file {file.data_path!r}: {err}") from err
            yield batch if a == 0 and b == batch.num_rows else batch.slice(a, b - a)


def read_spooled(source: SpoolInput, consumer: int) -> Iterator[pa.RecordBatch]:
    """What consumer task ``consumer`` reads from a committed producer stage."""
    fs = source.location.filesystem()
    spec = source.spec
    if spec is not None and spec.kind == ExchangeKind.MERGE:
        streams = [_read_file(fs, f, 0) for f in source.files]
        yield from merge_sorted(streams, spec.sort_keys, source.schema)
        return
    destination = 0 if spec is None or spec.kind == ExchangeKind.GATHER else consumer
    for file in source.files:
        yield from _read_file(fs, file, destination)


def read_spooled_slice(source: SpoolInput, part: InputSlice) -> Iterator[pa.RecordBatch]:
    """What a consumer task reads when the scheduler gave it ``part`` of a producer stage
    (several coalesced destinations, row ranges of a split one, or everything)."""
    spec = source.spec
    if spec is None or spec.kind in (ExchangeKind.MERGE, ExchangeKind.GATHER):
        yield from read_spooled(source, 0)
        return
    fs = source.location.filesystem()
    if part.everything:
        yield from rebatch(b for file in source.files for b in _read_file(fs, file, None))
        return
    if part.segments is not None:
        (destination,) = part.destinations
        for producer, first, end in part.segments:
            yield from _read_file(fs, source.files[producer], destination, (first, end))
        return
    wanted = frozenset(part.destinations)
    # Many destinations: many small slices, joined so operators see fewer batches.
    yield from rebatch(b for file in source.files for b in _read_file(fs, file, wanted))


__all__ = [
    "ALL",
    "SORTED",
    "SpoolFile",
    "SpoolInput",
    "SpoolLocation",
    "SpoolWriter",
    "SpoolWritten",
    "create_query_folder",
    "open_spool_root",
    "read_spooled",
    "read_spooled_slice",
    "remove_query_folder",
]
