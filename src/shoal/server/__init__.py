"""shoal as a network service: an Arrow Flight SQL server (``shoal serve``, ``shoal.serve``).

Needs the ``server`` extra (``pip install 'shoal[server]'``: protobuf for the Flight
SQL messages). See ``docs/server.md``.
"""

from __future__ import annotations

import dataclasses
import signal
import sys
import threading
import warnings
from typing import Any

from shoal.api.connection import Connection
from shoal.physical.context import Settings
from shoal.server.config import AuthMode, ConfigError, Limits, ServerConfig, make_config
from shoal.server.flight_sql import STATUS_ACTION, FlightSqlServer


def register_table(con: Connection, name: str, spec: str) -> None:
    """Register ``spec`` as ``shoal query --table name=spec`` does, plus ``ipc:`` and
    ``.arrow``/``.ipc``/``.feather`` for Arrow IPC files; URIs are accepted throughout."""
    lowered = spec.lower().split("?", 1)[0]
    if spec.startswith("csv:"):
        con.register_csv(name, spec[4:])
    elif spec.startswith("parquet:"):
        con.register_parquet(name, spec[8:])
    elif spec.startswith("ipc:"):
        con.register_ipc(name, spec[4:])
    elif lowered.endswith((".csv", ".tsv")):
        con.register_csv(name, spec, delimiter="\t" if lowered.endswith(".tsv") else ",")
    elif lowered.endswith((".arrow", ".ipc", ".feather")):
        con.register_ipc(name, spec)
    else:
        con.register_parquet(name, spec)


def apply_memory_limit(con: Connection, limit: int | None) -> None:
    """Give ``con`` the memory budget when this engine has the setting; else say so."""
    if limit is None:
        return
    if "memory_limit" in Settings.__dataclass_fields__:
        con.settings = dataclasses.replace(con.settings, memory_limit=limit)  # type: ignore[call-arg]
    else:
        warnings.warn(
            "memory_limit is not supported by this shoal build (no memory budget yet); ignored",
            RuntimeWarning,
            stacklevel=3,
        )


def serve(con: Connection, *, block: bool = False, **settings: Any) -> FlightSqlServer:
    """Serve ``con`` over Arrow Flight SQL; returns the listening server.

    ``settings`` are those of a config file (``docs/server.md``): ``host`` (default
    127.0.0.1), ``port`` (0: any free one; see ``server.port``), ``auth`` ("token",
    "password", "none"), ``tokens``, ``users``, ``tls_cert``/``tls_key``, ``timeout``,
    ``max_result_rows``, ``max_result_bytes``, ``memory_limit``, ``allowed_dirs``,
    ``tables``. With ``block=True`` it serves until shut down; otherwise call
    ``server.shutdown()`` when done.
    """
    config = make_config(**settings)
    for name, spec in config.tables.items():
        register_table(con, name, spec)
    apply_memory_limit(con, config.limits.memory_limit)
    server = FlightSqlServer(con, config)
    if block:
        try:
            server.serve()
        finally:
            server.shutdown()
    return server


def main_serve(config: ServerConfig, partitions: int | None) -> int:
    """``shoal serve``: print where it listens (one line on stdout), serve until stopped."""
    settings: dict[str, Any] = {}
    if config.limits.memory_limit is not None and "memory_limit" in Settings.__dataclass_fields__:
        settings["memory_limit"] = config.limits.memory_limit
    elif config.limits.memory_limit is not None:
        print(
            "warning: memory_limit is not supported by this shoal build; ignored", file=sys.stderr
        )
    con = Connection(partitions, **settings)
    for name, spec in config.tables.items():
        register_table(con, name, spec)
    server = FlightSqlServer(con, config)
    print(f"shoal Flight SQL server listening on {server.location}", flush=True)
    # The main thread waits in Python (not in the server's blocking serve()) so that
    # SIGTERM and SIGINT handlers run; they stop the server, which cancels its queries.
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(0.5):
        pass
    server.shutdown()
    return 0


__all__ = [
    "STATUS_ACTION",
    "AuthMode",
    "ConfigError",
    "FlightSqlServer",
    "Limits",
    "ServerConfig",
    "make_config",
    "register_table",
    "serve",
]
