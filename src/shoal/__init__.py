"""shoal: a distributed SQL query engine for Python. SQL in, Apache Arrow out."""

from typing import Any

# First, before anything loads pyarrow: the allocator reads its options only then
# (importing the module sets them).
from shoal.memory import allocator as _allocator  # noqa: F401

# isort: split
from shoal.api.connection import Connection, connect
from shoal.api.result import Result
from shoal.errors import (
    CatalogError,
    ExecutionError,
    ShoalError,
    SqlSyntaxError,
    TransientError,
    TypeMismatchError,
    UnknownColumnError,
    UnknownTableError,
    UnsupportedError,
    UserError,
    WorkerLostError,
)
from shoal.exchange_spec import RetryPolicy
from shoal.runtime.faults import Fault, FaultKind


def serve(con: Connection, **settings: Any) -> Any:
    """Serve ``con`` over Arrow Flight SQL (see ``shoal.server.serve``; needs the
    ``server`` extra). Returns the listening ``FlightSqlServer``."""
    from shoal.server import serve as _serve

    return _serve(con, **settings)


__all__ = [
    "CatalogError",
    "Connection",
    "ExecutionError",
    "Fault",
    "FaultKind",
    "Result",
    "RetryPolicy",
    "ShoalError",
    "SqlSyntaxError",
    "TransientError",
    "TypeMismatchError",
    "UnknownColumnError",
    "UnknownTableError",
    "UnsupportedError",
    "UserError",
    "WorkerLostError",
    "connect",
    "serve",
]
__version__ = "0.1.0"
