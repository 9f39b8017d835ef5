"""shoal: a distributed SQL query engine for Python. SQL in, Apache Arrow out."""

from shoal.api.connection import Connection, connect
from shoal.api.result import Result
from shoal.errors import (
    CatalogError,
    ExecutionError,
    ShoalError,
    SqlSyntaxError,
    TypeMismatchError,
    UnknownColumnError,
    UnknownTableError,
    UnsupportedError,
    UserError,
)

__all__ = [
    "CatalogError",
    "Connection",
    "ExecutionError",
    "Result",
    "ShoalError",
    "SqlSyntaxError",
    "TypeMismatchError",
    "UnknownColumnError",
    "UnknownTableError",
    "UnsupportedError",
    "UserError",
    "connect",
]
__version__ = "0.1.0"
