"""What a server is started with: where it listens, who may call it, its limits.

A ``ServerConfig`` comes from keyword arguments (``shoal.serve``), from the command
line (``shoal serve``) or from a TOML/JSON config file (``load_config``), e.g.::

    host = "127.0.0.1"
    port = 8815
    auth = "token"              # "token", "password" or "none"
    tokens = ["s3cret"]
    # users = {alice = "pw"}    # for auth = "password"
    tls_cert = "server.pem"
    tls_key = "server.key"
    timeout = 60.0              # seconds per query
    max_result_rows = 10_000_000
    max_result_bytes = 1_073_741_824
    allowed_dirs = ["/srv/exports", "s3://bucket/exports"]

    [tables]
    lineitem = "data/sf1/lineitem"
    orders = "csv:data/orders.csv"
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shoal.errors import UserError


class ConfigError(UserError):
    """A server setting that is missing, malformed or contradicts another."""


class AuthMode(enum.Enum):
    """How clients prove who they are."""

    #: A bearer token from ``tokens`` in every call's ``authorization`` header.
    TOKEN = "token"
    #: A username/password handshake (HTTP Basic) that returns a session bearer token;
    #: configured ``tokens`` are accepted as well.
    PASSWORD = "password"
    #: No authentication (local use only).
    NONE = "none"


@dataclass(frozen=True)
class Limits:
    """What every query run by the server is held to; ``None`` is no limit."""

    timeout: float | None = None
    max_result_rows: int | None = None
    max_result_bytes: int | None = None
    #: Passed to the engine when it has a memory budget (the setting ``memory_limit``).
    memory_limit: int | None = None

    def __post_init__(self) -> None:
        for name in ("max_result_rows", "max_result_bytes", "memory_limit"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        t = self.timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, int | float) or t <= 0):
            raise ConfigError(f"timeout must be a positive number of seconds, got {t!r}")


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port (the bound one is on ``FlightSqlServer.port``)
    auth: AuthMode = AuthMode.TOKEN
    tokens: tuple[str, ...] = ()
    users: Mapping[str, str] = field(default_factory=dict)
    tls_cert: str | None = None  # PEM file
    tls_key: str | None = None  # PEM file
    limits: Limits = Limits()
    #: Directories (local folders or object-store prefixes) that SQL may write to with
    #: ``COPY ... TO``; empty: none.
    allowed_dirs: tuple[str, ...] = ()
    #: name -> path, registered as ``shoal query --table`` does (``csv:``/``parquet:``/
    #: ``ipc:`` prefixes, else by extension).
    tables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.auth, AuthMode):
            raise ConfigError(f"auth must be an AuthMode, got {self.auth!r}")
        if self.auth is AuthMode.TOKEN and not self.tokens:
            raise ConfigError("auth 'token' needs at least one token (or use --auth none)")
        if self.auth is AuthMode.PASSWORD and not self.users:
            raise ConfigError("auth 'password' needs at least one user")
        if any(not isinstance(t, str) or len(t) < 8 for t in self.tokens):
            raise ConfigError("tokens must be strings of at least 8 characters")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both a certificate and a key")
        if self.auth is AuthMode.NONE and not _loopback(self.host):
            raise ConfigError(
                f"auth 'none' is only allowed on a loopback address, not {self.host!r}: "
                "anyone who can reach it could query every table"
            )
        if not isinstance(self.port, int) or not 0 <= self.port < 65536:
            raise ConfigError(f"port must be in [0, 65535], got {self.port!r}")

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_auth(value: str) -> AuthMode:
    try:
        return AuthMode(value.lower())
    except ValueError:
        known = ", ".join(m.value for m in AuthMode)
        raise ConfigError(f"unknown auth mode {value!r}; known: {known}") from None


_KEYS = {
    "host",
    "port",
    "auth",
    "tokens",
    "users",
    "tls_cert",
    "tls_key",
    "timeout",
    "max_result_rows",
    "max_result_bytes",
    "memory_limit",
    "allowed_dirs",
    "tables",
}


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The settings in a ``.toml`` or ``.json`` file, as keyword arguments of ``make_config``.

    Relative file paths in it (TLS files, tables, allowed directories) are taken
    relative to the file's folder.
    """
    p = os.fspath(path)
    try:
        with open(p, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise ConfigError(f"cannot read the server config {p}: {err}") from err
    try:
        doc = json.loads(raw) if p.endswith(".json") else tomllib.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot parse the server config {p}: {err}") from err
    if not isinstance(doc, dict):
        raise ConfigError(f"the server config {p} must be a table of settings")
    unknown = set(doc) - _KEYS
    if unknown:
        raise ConfigError(
            f"unknown setting(s) in {p}: {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_KEYS))}"
        )
    base = os.path.dirname(os.path.abspath(p))

    def local(value: str) -> str:
        if "://" in value or os.path.isabs(value):
            return value
        return os.path.join(base, value)

    for key in ("tls_cert", "tls_key"):
        if isinstance(doc.get(key), str):
            doc[key] = local(doc[key])
    if isinstance(doc.get("allowed_dirs"), list):
        doc["allowed_dirs"] = [local(d) if isinstance(d, str) else d for d in doc["allowed_dirs"]]
    tables = doc.get("tables")
    if isinstance(tables, dict):
        resolved = {}
        for name, spec in tables.items():
            if not isinstance(spec, str):
                raise ConfigError(f"table {name!r} in {p} must be a path string")
            prefix, _, rest = spec.partition(":")
            if rest and prefix in ("csv", "parquet", "ipc") and "://" not in spec[:8]:
                resolved[name] = f"{prefix}:{local(rest)}"
            else:
                resolved[name] = local(spec)
        doc["tables"] = resolved
    return doc


def make_config(**settings: Any) -> ServerConfig:
    """A ``ServerConfig`` from flat settings (those of a config file or ``shoal.serve``)."""
    unknown = set(settings) - _KEYS
    if unknown:
        raise ConfigError(
            f"unknown server setting(s): {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(_KEYS))}"
        )
    auth = settings.get("auth", AuthMode.TOKEN)
    if isinstance(auth, str):
        auth = parse_auth(auth)
    limits = Limits(
        timeout=settings.get("timeout"),
        max_result_rows=settings.get("max_result_rows"),
        max_result_bytes=settings.get("max_result_bytes"),
        memory_limit=settings.get("memory_limit"),
    )
    users = settings.get("users") or {}
    if not isinstance(users, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in users.items()
    ):
        raise ConfigError("users must map user names to passwords")
    return ServerConfig(
        host=str(settings.get("host", "127.0.0.1")),
        port=_int(settings.get("port", 0), "port"),
        auth=auth,
        tokens=_strings(settings.get("tokens") or (), "tokens"),
        users=dict(users),
        tls_cert=settings.get("tls_cert"),
        tls_key=settings.get("tls_key"),
        limits=limits,
        allowed_dirs=_strings(settings.get("allowed_dirs") or (), "allowed_dirs"),
        tables=dict(settings.get("tables") or {}),
    )


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    return value


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    if not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return tuple(value)
