"""Small tables written as Parquet with small row groups, so that a scan of them has
several splits (and a query several tasks) although the data are tiny."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import shoal


def write_tables(
    root: Path, tables: Mapping[str, pa.Table], row_group_rows: Mapping[str, int]
) -> Path:
    """``root/<name>.parquet`` for each table, ``row_group_rows[name]`` rows per row group."""
    for name, table in tables.items():
        pq.write_table(table, root / f"{name}.parquet", row_group_size=row_group_rows[name])
    return root


def connect(root: Path, names: list[str], partitions: int, **settings: Any) -> shoal.Connection:
    """A connection planning as for large tables (a 1-byte broadcast threshold) with the
    tables of ``root`` registered."""
    con = shoal.connect(partitions=partitions, broadcast_threshold_bytes=1, **settings)
    for name in names:
        con.register_parquet(name, str(root / f"{name}.parquet"))
    return con
