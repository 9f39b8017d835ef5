"""The ``shoal`` command: one-shot queries and EXPLAIN over files.

    shoal query "SELECT ..." --table lineitem=data/sf0.1/lineitem [--table ...]
    shoal explain "SELECT ..." --table ...
    shoal explain --analyze "SELECT ..." --table ...

A table path that ends in .csv (or a folder of CSV files given as name=csv:path)
is read as CSV; everything else as Parquet.
"""

from __future__ import annotations

import argparse
import sys

import shoal
from shoal.api.boundary import entry_point
from shoal.errors import ShoalError


def _register(con: shoal.Connection, spec: str) -> None:
    if "=" not in spec:
        raise SystemExit(f"--table wants name=path, got {spec!r}")
    name, path = spec.split("=", 1)
    if path.startswith("csv:"):
        con.register_csv(name, path[4:])
    elif path.startswith("parquet:"):
        con.register_parquet(name, path[8:])
    elif path.lower().endswith((".csv", ".tsv")):
        con.register_csv(name, path, delimiter="\t" if path.lower().endswith(".tsv") else ",")
    else:
        con.register_parquet(name, path)


def _format(result: shoal.Result, max_rows: int) -> str:
    names = result.column_names
    rows = [[_cell(v) for v in row] for row in result.fetchall()]
    shown = rows[:max_rows]
    widths = [max([len(n)] + [len(r[i]) for r in shown]) for i, n in enumerate(names)]
    line = " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    out = [line, "-+-".join("-" * w for w in widths)]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in shown]
    more = f" (showing {max_rows})" if len(rows) > max_rows else ""
    out.append(f"({len(rows)} rows{more})")
    return "\n".join(out)


def _cell(v: object) -> str:
    return "NULL" if v is None else str(v)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="shoal", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for cmd in ("query", "explain"):
        p = sub.add_parser(cmd)
        p.add_argument("sql")
        p.add_argument("--table", action="append", default=[], metavar="NAME=PATH")
        p.add_argument("--partitions", type=int, default=None)
        if cmd == "query":
            p.add_argument("--max-rows", type=int, default=100)
        else:
            p.add_argument("--analyze", action="store_true")
    args = ap.parse_args(argv)
    try:
        print(_run(args))
    except ShoalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


@entry_point
def _run(args: argparse.Namespace) -> str:
    """What the command prints; every failure is a ``ShoalError``."""
    con = shoal.connect(partitions=args.partitions)
    for spec in args.table:
        _register(con, spec)
    if args.command == "query":
        return _format(con.sql(args.sql), args.max_rows)
    if args.analyze:
        return con.explain_analyze(args.sql)
    return con.explain(args.sql)


if __name__ == "__main__":
    sys.exit(main())
