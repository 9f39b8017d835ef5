"""Table layouts: what a folder written hash-partitioned says about itself.

A folder written by ``Connection.write_partitioned`` (or ``COPY ... TO ... (PARTITION
BY HASH (k) INTO n)``) holds ``n`` Parquet files, one per shard, and the metadata file
``_shoal_layout.json`` beside them::

    {"format": 1, "partitioning": "hash", "keys": ["k"], "shards": 8,
     "hash_function": "shoal-rowhash-v1", "key_types": ["int64"],
     "files": ["shard-00000.parquet", ..., "shard-00007.parquet"], ...}

Shard ``i`` is ``files[i]`` and holds exactly the rows whose key hashes to ``i`` with
``shoal.hashing.partition_ids(key columns, shards)`` (NULL keys included: they
go where the hash puts them). Files outlive processes, so the layout names the hash
function that laid it out; the engine uses the layout only when that is its own
exchange hash (``HASH_FUNCTION``), otherwise a join of a shuffled side with the
pre-partitioned side would pair the wrong shards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from shoal.errors import CatalogError
from shoal.hashing import HASH_FUNCTION, partition_ids

#: The metadata file beside the shards.
LAYOUT_FILE = "_shoal_layout.json"
#: Version of the metadata file's format (not of the hash: that is ``hash_function``).
LAYOUT_FORMAT = 1


def shard_file_name(i: int) -> str:
    return f"shard-{i:05d}.parquet"


@dataclass(frozen=True)
class HashLayout:
    """Rows hash-partitioned on ``keys`` into ``shards`` files; ``files[i]`` is shard i."""

    keys: tuple[str, ...]  # column names in the table
    shards: int
    hash_function: str
    key_types: tuple[str, ...]  # str() of each key's Arrow type, as the engine hashed it
    files: tuple[str, ...]  # absolute paths, one per shard

    def describe(self) -> str:
        return f"hash[{', '.join(self.keys)}]x{self.shards}"

    def usable(self) -> bool:
        """Only a layout made by this engine's own exchange hash can stand in for an exchange."""
        return self.hash_function == HASH_FUNCTION


def layout_path(folder: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None) -> str:
    if filesystem is not None:
        return f"{str(folder).rstrip('/')}/{LAYOUT_FILE}"
    return os.path.join(str(folder), LAYOUT_FILE)


def has_layout(path: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None) -> bool:
    """Is ``path`` a folder with a layout file? (On an object store: is there a layout
    object under that prefix.)"""
    p = str(path)
    if filesystem is not None:
        try:
            info = filesystem.get_file_info(layout_path(p, filesystem))
        except OSError:
            return False
        return bool(info.type == pafs.FileType.File)
    return os.path.isdir(p) and os.path.isfile(layout_path(p))


def layout_document(
    keys: Sequence[str],
    shards: int,
    key_types: Sequence[pa.DataType],
    files: Sequence[str],
    rows_per_shard: Sequence[int],
) -> dict[str, Any]:
    """The JSON document written beside the shards (file names relative to the folder)."""
    return {
        "format": LAYOUT_FORMAT,
        "partitioning": "hash",
        "keys": list(keys),
        "shards": shards,
        "hash_function": HASH_FUNCTION,
        "key_types": [str(t) for t in key_types],
        "files": list(files),
        "rows_per_shard": list(rows_per_shard),
        "num_rows": int(sum(rows_per_shard)),
    }


def read_layout(
    folder: str | os.PathLike[str], filesystem: pafs.FileSystem | None = None
) -> HashLayout:
    """Parse and check the layout file in ``folder``; a malformed one is a ``CatalogError``.

    Checks the shape of the document and that every shard file exists. Whether the layout
    is *usable* (hash function, key columns and types) is for the source to decide, since
    a layout by another hash still says which files hold the table's rows.
    """
    folder = str(folder)
    path = layout_path(folder, filesystem)
    try:
        if filesystem is not None:
            with filesystem.open_input_stream(path) as stream:
                doc = json.loads(stream.read().decode("utf-8"))
        else:
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
    except (OSError, ValueError) as err:
        raise CatalogError(f"cannot read the table layout {path}: {err}") from err

    def bad(why: str) -> CatalogError:
        return CatalogError(f"invalid table layout {path}: {why}")

    if not isinstance(doc, dict):
        raise bad("expected a JSON object")
    if doc.get("format") != LAYOUT_FORMAT:
        raise bad(f"unsupported format {doc.get('format')!r} (this shoal reads {LAYOUT_FORMAT})")
    if doc.get("partitioning") != "hash":
        raise bad(f"unsupported partitioning {doc.get('partitioning')!r}")
    keys, key_types, files = doc.get("keys"), doc.get("key_types"), doc.get("files")
    shards, hash_function = doc.get("shards"), doc.get("hash_function")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise bad("'keys' must be a non-empty list of column names")
    if not isinstance(key_types, list) or len(key_types) != len(keys):
        raise bad("'key_types' must list one type per key")
    if not all(isinstance(t, str) for t in key_types):
        raise bad("'key_types' must be strings")
    if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
        raise bad(f"'shards' must be a positive integer, got {shards!r}")
    if not isinstance(hash_function, str) or not hash_function:
        raise bad("'hash_function' must be a non-empty string")
    if not isinstance(files, list) or len(files) != shards:
        raise bad(f"'files' must list one file per shard ({shards})")
    resolved = []
    for name in files:
        if not isinstance(name, str) or not name or os.path.isabs(name) or ".." in Path(name).parts:
            raise bad(f"bad file name {name!r} (must be relative to the folder)")
        resolved.append(os.path.join(folder, name) if filesystem is None else f"{folder}/{name}")
    if filesystem is None:
        missing = [f for f in resolved if not os.path.isfile(f)]
    else:
        try:
            infos = filesystem.get_file_info(resolved)
        except OSError as err:
            raise CatalogError(f"cannot look at the shards of {path}: {err}") from err
        missing = [i.path for i in infos if i.type != pafs.FileType.File]
    if missing:
        name = missing[0].rsplit("/", 1)[-1]
        raise CatalogError(f"table layout {path} names a missing shard file {name}")
    return HashLayout(tuple(keys), shards, hash_function, tuple(key_types), tuple(resolved))


def check_layout(layout: HashLayout, schema: pa.Schema) -> str | None:
    """Why ``layout`` cannot be used for a table of ``schema`` (engine types), or None."""
    if not layout.usable():
        return (
            f"written with hash function {layout.hash_function!r}, but this engine "
            f"partitions with {HASH_FUNCTION!r}"
        )
    for key, recorded in zip(layout.keys, layout.key_types, strict=True):
        index = schema.get_field_index(key)
        if index < 0:
            return f"key column {key!r} is not in the files"
        actual = str(schema.field(index).type)
        if actual != recorded:
            return f"key column {key!r} is {actual} in the files but was hashed as {recorded}"
    return None


def shards_for_values(
    layout: HashLayout, key_types: Sequence[pa.DataType], values: Sequence[Sequence[Any]]
) -> set[int] | None:
    """Shards that can hold rows whose key ``i`` is one of ``values[i]``.

    ``None`` (no pruning) when a value cannot be converted to its key's type; the values of
    each key are combined (a cross product), which the caller keeps small.
    """
    combos: list[tuple[Any, ...]] = [()]
    for options in values:
        combos = [c + (v,) for c in combos for v in options]
    if not combos:
        return set()
    try:
        columns = [pa.array([c[i] for c in combos], type=t) for i, t in enumerate(key_types)]
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return None
    return {int(s) for s in partition_ids(columns, layout.shards)}
