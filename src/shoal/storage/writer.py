"""Write a table as Parquet shards hash-partitioned on key columns, with its layout.

``write_hash_partitioned(table, path, keys, n)`` hashes the key columns with the
engine's exchange hash (``shoal.hashing.partition_ids``), writes shard ``i``'s
rows to ``path/shard-0000i.parquet`` (all ``n`` files, empty ones too, so shard i is
file i) and the layout to ``path/_shoal_layout.json`` (see ``catalog/layout.py``).
NULL keys are hashed like any value (``NULL_HASH``), so they land in one shard.

Columns are written in the engine's canonical types (``shoal.types.canonical_type``),
which is also what the key hash saw, so a reader that gets the recorded key types back
gets the same shard for every row. The folder appears atomically: the shards are
written to a hidden sibling folder that is renamed into place once complete.

On an object store (``s3://…``, ``gs://…``, ``abfs://…`` or a given pyarrow filesystem)
there is no rename: the shards are written in place and the layout file last, so a
reader never finds a layout that names a shard not yet written; an ``overwrite``
first deletes the earlier output (only one written by shoal, as locally).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from shoal.catalog.files import Location, resolve
from shoal.catalog.layout import LAYOUT_FILE, layout_document, shard_file_name
from shoal.errors import TypeMismatchError, UnknownColumnError, UserError
from shoal.hashing import partition_ids
from shoal.types import canonical_schema, sql_type_name

#: The largest shard count a write accepts.
MAX_SHARDS = 1 << 16
#: Rows per Parquet row group in a shard (row groups are the scan's splits and carry
#: the min/max statistics that let a filtered scan skip them).
ROW_GROUP_ROWS = 1 << 17


class TargetExistsError(UserError):
    """The output path exists and ``overwrite`` was not asked for (or cannot be honoured)."""


@dataclass(frozen=True)
class WriteSummary:
    """What a partitioned write produced."""

    path: str
    rows: int
    shards: int
    keys: tuple[str, ...]
    files: tuple[str, ...]  # names relative to ``path``; shard i is files[i]
    rows_per_shard: tuple[int, ...]


def write_hash_partitioned(
    table: pa.Table,
    path: str | os.PathLike[str],
    keys: str | Sequence[str],
    shards: int,
    overwrite: bool = False,
    row_group_rows: int = ROW_GROUP_ROWS,
    filesystem: pafs.FileSystem | None = None,
) -> WriteSummary:
    """Write ``table`` to the folder ``path`` as ``shards`` files hash-partitioned on ``keys``.

    Raises ``UserError`` for a bad shard count or key list, ``UnknownColumnError`` for a
    key the table lacks, ``TypeMismatchError`` for a key type the hash does not support and
    ``TargetExistsError`` when ``path`` exists and ``overwrite`` is false. ``overwrite``
    replaces a file, an empty folder or a folder written by this function — never any
    other folder.
    """
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise UserError(f"the shard count must be an integer in [1, {MAX_SHARDS}], got {shards!r}")
    key_list = [keys] if isinstance(keys, str) else list(keys)
    if not key_list:
        raise UserError("partitioning needs at least one key column")
    names = table.column_names
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise UserError(
            f"cannot write a table with duplicate column names ({', '.join(duplicates)}); "
            "alias them apart"
        )
    resolved = [_resolve_column(k, names) for k in key_list]
    if len(set(resolved)) != len(resolved):
        raise UserError(f"key columns repeat: {', '.join(key_list)}")

    schema = canonical_schema(table.schema)
    if not table.schema.equals(schema):
        table = table.cast(schema)
    key_columns = [table.column(k) for k in resolved]
    try:
        ids = partition_ids(key_columns, shards)
    except TypeError:
        bad = ", ".join(
            f"{k} {sql_type_name(c.type)}" for k, c in zip(resolved, key_columns, strict=True)
        )
        raise TypeMismatchError(f"cannot hash-partition on {bad}") from None

    loc = resolve(path, filesystem)
    counts = np.bincount(ids, minlength=shards) if len(ids) else np.zeros(shards, np.int64)
    files = [shard_file_name(i) for i in range(shards)]
    doc = layout_document(resolved, shards, [c.type for c in key_columns], files, counts.tolist())
    summary = WriteSummary(
        loc.display if loc.filesystem is not None else os.path.abspath(loc.path),
        int(counts.sum()),
        shards,
        tuple(resolved),
        tuple(files),
        tuple(int(c) for c in counts.tolist()),
    )
    if loc.filesystem is not None:
        _check_remote_target(loc, overwrite)
    else:
        _check_target(summary.path, overwrite)
    if table.num_rows:
        table = table.take(pa.array(np.argsort(ids, kind="stable")))
    if loc.filesystem is not None:
        _write_remote(loc, table, files, counts.tolist(), doc, row_group_rows)
        return summary
    target = summary.path
    parent, base = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    staging = os.path.join(parent, f".{base}.tmp-{uuid.uuid4().hex}")
    os.mkdir(staging)
    try:
        start = 0
        for name, count in zip(files, counts.tolist(), strict=True):
            pq.write_table(
                table.slice(start, count),
                os.path.join(staging, name),
                row_group_size=row_group_rows,
            )
            start += count
        with open(os.path.join(staging, LAYOUT_FILE), "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
            f.write("\n")
        _publish(staging, target, overwrite)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return summary


def _check_remote_target(loc: Location, overwrite: bool) -> None:
    fs = loc.filesystem
    assert fs is not None
    info = fs.get_file_info(loc.path)
    if info.type == pafs.FileType.NotFound:
        return
    if not overwrite:
        raise TargetExistsError(f"{loc.display} already exists (pass overwrite=True to replace it)")
    if info.type == pafs.FileType.File:
        fs.delete_file(loc.path)
        return
    entries = fs.get_file_info(pafs.FileSelector(loc.path, recursive=False))
    if entries and not any(e.base_name == LAYOUT_FILE for e in entries):
        raise TargetExistsError(
            f"refusing to overwrite {loc.display}: a folder that is not empty and holds no "
            f"{LAYOUT_FILE} (it was not written by shoal)"
        )
    if entries:
        # The layout goes first, so a reader never sees it name shards being replaced.
        fs.delete_file(f"{loc.path}/{LAYOUT_FILE}")
        fs.delete_dir_contents(loc.path)


def _write_remote(
    loc: Location,
    table: pa.Table,
    files: list[str],
    counts: list[int],
    doc: dict[str, object],
    row_group_rows: int,
) -> None:
    fs = loc.filesystem
    assert fs is not None
    fs.create_dir(loc.path)
    start = 0
    for name, count in zip(files, counts, strict=True):
        pq.write_table(
            table.slice(start, count),
            f"{loc.path}/{name}",
            filesystem=fs,
            row_group_size=row_group_rows,
        )
        start += count
    with fs.open_output_stream(f"{loc.path}/{LAYOUT_FILE}") as out:
        out.write((json.dumps(doc, indent=2) + "\n").encode("utf-8"))


def _resolve_column(key: str, names: list[str]) -> str:
    """``key`` as a column of the table: exact, else the one case-insensitive match."""
    if key in names:
        return key
    matches = [n for n in names if n.lower() == key.lower()]
    if len(matches) == 1:
        return matches[0]
    raise UnknownColumnError(key, names)


def _check_target(target: str, overwrite: bool) -> None:
    if not os.path.lexists(target):
        return
    if not overwrite:
        raise TargetExistsError(f"{target} already exists (pass overwrite=True to replace it)")
    if os.path.isdir(target) and not os.path.islink(target):
        if os.listdir(target) and not os.path.isfile(os.path.join(target, LAYOUT_FILE)):
            raise TargetExistsError(
                f"refusing to overwrite {target}: a folder that is not empty and holds no "
                f"{LAYOUT_FILE} (it was not written by shoal)"
            )


def _publish(staging: str, target: str, overwrite: bool) -> None:
    """Move the finished folder into place; an old target is swapped out, then removed."""
    old: str | None = None
    if os.path.lexists(target):
        if not overwrite:  # appeared while we wrote
            raise TargetExistsError(f"{target} already exists (pass overwrite=True to replace it)")
        parent, base = os.path.split(target)
        old = os.path.join(parent, f".{base}.old-{uuid.uuid4().hex}")
        os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        if os.path.isdir(old) and not os.path.islink(old):
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.remove(old)


def write_parquet_file(table: pa.Table, path: str, overwrite: bool = False) -> str:
    """Write ``table`` as one Parquet file at ``path`` (CREATE TABLE … AS with a Parquet
    target); ``TargetExistsError`` when it exists and ``overwrite`` is false. Locally the
    file appears atomically (written beside it, then renamed); on an object store it is
    written in place. Returns the path as shown to the user."""
    loc = resolve(path)
    table = table.cast(canonical_schema(table.schema))
    if loc.is_local:
        target = loc.path
        if os.path.isdir(target):
            raise TargetExistsError(f"{target} is a folder; a Parquet table target is a file")
        if os.path.lexists(target) and not overwrite:
            raise TargetExistsError(f"{target} already exists (CREATE OR REPLACE replaces it)")
        parent = os.path.dirname(os.path.abspath(target))
        os.makedirs(parent, exist_ok=True)
        staging = os.path.join(parent, f".{os.path.basename(target)}.{uuid.uuid4().hex}")
        try:
            pq.write_table(table, staging)
            os.replace(staging, target)
        finally:
            if os.path.lexists(staging):
                os.remove(staging)
        return loc.display
    assert loc.filesystem is not None
    info = loc.filesystem.get_file_info(loc.path)
    if info.type != pafs.FileType.NotFound and not overwrite:
        raise TargetExistsError(f"{loc.display} already exists (CREATE OR REPLACE replaces it)")
    pq.write_table(table, loc.path, filesystem=loc.filesystem)
    return loc.display
