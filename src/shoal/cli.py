"""The ``shoal`` command: one-shot queries and EXPLAIN over files.

    shoal query "SELECT ..." --table lineitem=data/sf0.1/lineitem [--table ...]
    shoal explain "SELECT ..." --table ...
    shoal explain --analyze "SELECT ..." --table ...
    shoal query "SELECT ..." --table ... --retry-policy task \
        --inject "stage=1,partition=0,attempt=0,kind=transient"

A table path that ends in .csv (or a folder of CSV files given as name=csv:path)
is read as CSV; everything else as Parquet.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import shoal
from shoal.errors import ShoalError
from shoal.runtime.faults import parse_fault


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


def _format(table: object, max_rows: int) -> str:
    import pyarrow as pa

    assert isinstance(table, pa.Table)
    names = table.column_names
    rows = [
        [_cell(v) for v in row] for row in zip(*(c.to_pylist() for c in table.columns), strict=True)
    ]
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
        p.add_argument(
            "--retry-policy",
            choices=["none", "task"],
            default=None,
            help="none: pipelined exchanges (default); task: materialized, failed tasks re-run",
        )
        p.add_argument("--task-retries", type=int, default=None, metavar="N")
        p.add_argument("--spool", default=None, metavar="FOLDER_OR_URI")
        p.add_argument(
            "--runtime",
            choices=["local", "ray"],
            default="local",
            help="local: threads of this process (default); ray: every task a Ray task",
        )
        p.add_argument(
            "--address",
            default=None,
            help="with --runtime ray: auto, host:port or ray://host:port (default: a local Ray)",
        )
        p.add_argument(
            "--inject",
            action="append",
            default=[],
            metavar="FAULT",
            help='inject a fault, e.g. "stage=1,partition=0,attempt=0,kind=transient"'
            " (kinds: transient, internal, user, lost_worker, slow[,seconds=S])",
        )
        if cmd == "query":
            p.add_argument("--max-rows", type=int, default=100)
            p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
        else:
            p.add_argument("--analyze", action="store_true")
    args = ap.parse_args(argv)
    try:
        settings: dict[str, Any] = {}
        if args.retry_policy is not None:
            settings["retry_policy"] = args.retry_policy
        if args.task_retries is not None:
            settings["task_retries"] = args.task_retries
        if args.spool is not None:
            settings["spool"] = args.spool
        con = shoal.connect(
            partitions=args.partitions, runtime=args.runtime, address=args.address, **settings
        )
        faults = [parse_fault(text) for text in args.inject]
        for spec in args.table:
            _register(con, spec)
        if args.command == "query":
            result = con.sql(args.sql, timeout=args.timeout, faults=faults)
            print(_format(result.to_arrow(), args.max_rows))
        elif args.analyze:
            print(con.explain_analyze(args.sql, faults=faults))
        else:
            print(con.explain(args.sql))
    except KeyboardInterrupt:
        # Ctrl-C: the query's tasks have been stopped; exit as shells expect (128 + SIGINT).
        print("interrupted", file=sys.stderr)
        return 130
    except ShoalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
