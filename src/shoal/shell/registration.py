"""Tables from paths, for the command line and the shell.

``name=path`` registers one table: a path ending in .csv/.tsv (or prefixed ``csv:``)
is CSV, anything else (a file, a folder or a glob) Parquet (``parquet:`` forces it).
Opening a folder registers each Parquet/CSV file and each sub-folder in it as a table
named after it (``data/sf0.1`` → lineitem, orders, ...).
"""

from __future__ import annotations

from pathlib import Path

import shoal
from shoal.errors import CatalogError, UserError


def parse_table_spec(spec: str) -> tuple[str, str]:
    if "=" not in spec:
        raise UserError(f"a table is given as name=path, got {spec!r}")
    name, path = spec.split("=", 1)
    if not name.strip() or not path.strip():
        raise UserError(f"a table is given as name=path, got {spec!r}")
    return name.strip(), path.strip()


def register_path(con: shoal.Connection, name: str, path: str) -> None:
    if path.startswith("csv:"):
        con.register_csv(name, path[4:])
    elif path.startswith("parquet:"):
        con.register_parquet(name, path[8:])
    elif path.lower().endswith((".csv", ".tsv")):
        con.register_csv(name, path, delimiter="\t" if path.lower().endswith(".tsv") else ",")
    else:
        con.register_parquet(name, path)


def open_path(con: shoal.Connection, path: str) -> list[str]:
    """Register every table in folder ``path`` (or the one file ``path``); their names."""
    root = Path(path).expanduser()
    if root.is_file():
        name = root.stem
        register_path(con, name, str(root))
        return [name]
    if not root.is_dir():
        raise CatalogError(f"no such file or folder: {path}")
    names = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")):
            continue
        if entry.is_dir() or entry.suffix.lower() in (".parquet", ".csv", ".tsv"):
            name = entry.stem if entry.is_file() else entry.name
            register_path(con, name, str(entry))
            names.append(name)
    if not names:
        raise CatalogError(f"no Parquet or CSV tables in {path}")
    return names
