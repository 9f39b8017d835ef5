"""The ``shoal`` command: one-shot queries and EXPLAIN over files.

    shoal query "SELECT ..." --table lineitem=data/sf0.1/lineitem [--table ...]
    shoal explain "SELECT ..." --table ...
    shoal explain --analyze "SELECT ..." --table ...
    shoal serve --table lineitem=s3://bucket/lineitem --token SECRET [--port 8815]

A table path that ends in .csv (or a folder of CSV files given as name=csv:path)
is read as CSV; everything else as Parquet.
"""

from __future__ import annotations

import argparse
import sys

import shoal
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
        if cmd == "query":
            p.add_argument("--max-rows", type=int, default=100)
            p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
        else:
            p.add_argument("--analyze", action="store_true")
    _add_serve_parser(sub)
    args = ap.parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    try:
        con = shoal.connect(partitions=args.partitions)
        for spec in args.table:
            _register(con, spec)
        if args.command == "query":
            print(_format(con.sql(args.sql, timeout=args.timeout).to_arrow(), args.max_rows))
        elif args.analyze:
            print(con.explain_analyze(args.sql))
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


def _add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve",
        help="an Arrow Flight SQL server (needs the 'server' extra; see docs/server.md)",
    )
    p.add_argument("--config", metavar="FILE", help="a .toml or .json file of server settings")
    p.add_argument("--table", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="port (default 0: any free one)")
    p.add_argument("--auth", default=None, help="token (default), password or none")
    p.add_argument("--token", action="append", default=[], help="a bearer token clients send")
    p.add_argument("--user", action="append", default=[], metavar="NAME=PASSWORD")
    p.add_argument("--tls-cert", default=None, metavar="PEM")
    p.add_argument("--tls-key", default=None, metavar="PEM")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
    p.add_argument("--max-result-rows", type=int, default=None)
    p.add_argument("--max-result-bytes", type=int, default=None)
    p.add_argument("--memory-limit", type=int, default=None, metavar="BYTES")
    p.add_argument(
        "--allow-dir",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder or object-store prefix COPY ... TO may write to",
    )
    p.add_argument("--partitions", type=int, default=None)


def _serve(args: argparse.Namespace) -> int:
    try:
        from shoal.server import main_serve
        from shoal.server.config import load_config, make_config
    except ImportError as err:  # protobuf missing
        print(f"error: shoal serve needs the 'server' extra ({err})", file=sys.stderr)
        return 1
    try:
        settings = load_config(args.config) if args.config else {}
        flags = {
            "host": args.host,
            "port": args.port,
            "auth": args.auth,
            "tls_cert": args.tls_cert,
            "tls_key": args.tls_key,
            "timeout": args.timeout,
            "max_result_rows": args.max_result_rows,
            "max_result_bytes": args.max_result_bytes,
            "memory_limit": args.memory_limit,
        }
        settings.update({k: v for k, v in flags.items() if v is not None})
        if args.token:
            settings["tokens"] = list(args.token)
        if args.user:
            users = dict(settings.get("users") or {})
            for spec in args.user:
                name, sep, password = spec.partition("=")
                if not sep:
                    raise SystemExit(f"--user wants name=password, got {spec!r}")
                users[name] = password
            settings["users"] = users
        if args.allow_dir:
            settings["allowed_dirs"] = list(args.allow_dir)
        tables = dict(settings.get("tables") or {})
        for spec in args.table:
            if "=" not in spec:
                raise SystemExit(f"--table wants name=path, got {spec!r}")
            name, path = spec.split("=", 1)
            tables[name] = path
        settings["tables"] = tables
        return main_serve(make_config(**settings), args.partitions)
    except ShoalError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
