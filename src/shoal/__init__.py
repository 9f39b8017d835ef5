"""shoal: a distributed SQL query engine for Python. SQL in, Apache Arrow out."""

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
]
__version__ = "0.1.0"
