"""The ``shoal`` command: the interactive shell, one-shot queries and EXPLAIN over files.

    shoal [--table NAME=PATH ...]            the interactive shell (also: shoal shell)
    shoal query "SELECT ..." --table lineitem=data/sf0.1/lineitem [--table ...]
    shoal explain "SELECT ..." --table ... [--analyze] [--html FILE]
    shoal query "SELECT ..." --table ... --retry-policy task \
        --inject "stage=1,partition=0,attempt=0,kind=transient"
    shoal serve --table lineitem=s3://bucket/lineitem --token SECRET [--port 8815]

A table path that ends in .csv (or a folder of CSV files given as name=csv:path)
is read as CSV; everything else as Parquet. On a terminal, a query running longer
than about a second shows its progress per stage.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import shoal
from shoal.api.boundary import entry_point
from shoal.errors import ShoalError
from shoal.runtime.faults import parse_fault
from shoal.shell.messages import format_error
from shoal.shell.progress import TerminalProgress
from shoal.shell.registration import open_path, parse_table_spec, register_path
from shoal.shell.render import OutputMode, render
from shoal.sql.explain import ExplainFormat

COMMANDS = ("shell", "query", "explain", "serve")


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="shoal", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="command", required=True)
    for cmd in ("shell", "query", "explain"):
        p = sub.add_parser(cmd)
        if cmd != "shell":
            p.add_argument("sql")
        p.add_argument("--table", action="append", default=[], metavar="NAME=PATH")
        p.add_argument("--open", action="append", default=[], metavar="FOLDER")
        p.add_argument("--partitions", type=int, default=None)
        _add_execution_options(p)
        if cmd == "query":
            p.add_argument("--max-rows", type=int, default=100)
            p.add_argument("--mode", choices=[m.value for m in OutputMode], default="table")
            p.add_argument("--timeout", type=float, default=None, metavar="SECONDS")
        elif cmd == "explain":
            p.add_argument("--analyze", action="store_true")
            p.add_argument("--html", metavar="FILE", help="write the stage graph as an HTML page")
    _add_serve_parser(sub)
    return ap


def _add_execution_options(p: argparse.ArgumentParser) -> None:
    """How queries run: exchange mode and retries, the runtime, injected faults."""
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


def _connect(args: argparse.Namespace) -> shoal.Connection:
    settings: dict[str, Any] = {}
    if args.retry_policy is not None:
        settings["retry_policy"] = args.retry_policy
    if args.task_retries is not None:
        settings["task_retries"] = args.task_retries
    if args.spool is not None:
        settings["spool"] = args.spool
    return shoal.connect(
        partitions=args.partitions, runtime=args.runtime, address=args.address, **settings
    )


def main(argv: list[str] | None = None) -> int:
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must stop a query even when this process was started with SIGINT
        # ignored (a background job of a non-interactive shell inherits that).
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C (QueryInterruptedError is one too), also while tables are registered:
        # the query's tasks have been stopped; exit as shells expect (128 + SIGINT).
        print("interrupted", file=sys.stderr)
        return 130
    except ShoalError as err:  # an unexpected failure, made an InternalError by _main
        print(format_error(err), file=sys.stderr)
        return 1


@entry_point
def _main(argv: list[str] | None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    # No sub-command (nothing, or only options such as --table): the shell.
    if not args_in or (args_in[0] not in COMMANDS and args_in[0] not in ("-h", "--help")):
        args_in.insert(0, "shell")
    args = _parser().parse_args(args_in)
    if args.command == "serve":
        return _serve(args)
    try:
        con = _connect(args)
        faults = [parse_fault(text) for text in args.inject]
        for spec in args.table:
            register_path(con, *parse_table_spec(spec))
        for folder in args.open:
            open_path(con, folder)
    except KeyboardInterrupt:
        raise  # QueryInterruptedError is a ShoalError too: main() turns it into exit 130
    except ShoalError as err:
        print(format_error(err), file=sys.stderr)
        return 1
    if args.command == "shell":
        from shoal.shell.repl import Shell

        return Shell(con, sys.stdin, sys.stdout, sys.stderr).run()
    try:
        if args.command == "query":
            on_terminal = sys.stdout.isatty() and sys.stderr.isatty()
            with TerminalProgress(sys.stderr, enabled=on_terminal) as view:
                table = con.sql(
                    args.sql, timeout=args.timeout, progress=view.tracker, faults=faults
                ).to_arrow()
            width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
            print(render(table, OutputMode(args.mode), width, args.max_rows))
        elif args.html:
            fmt = ExplainFormat.HTML
            document = (
                con.explain_analyze(args.sql, format=fmt, faults=faults)
                if args.analyze
                else con.explain(args.sql, format=fmt)
            )
            Path(args.html).write_text(document)
            print(f"wrote {Path(args.html).resolve()}")
        elif args.analyze:
            print(con.explain_analyze(args.sql, faults=faults))
        else:
            print(con.explain(args.sql))
    except KeyboardInterrupt:
        raise
    except ShoalError as err:
        print(format_error(err, args.sql), file=sys.stderr)
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
