"""Run one SQL text on shoal and on DuckDB over the same Arrow tables; they must agree.

Agreeing means the same rows (``support.compare``), or both raising: DuckDB any
error, shoal a ``ShoalError`` (of a given class when the test says so). A shoal
answer must also survive ``fetchall``.
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa
import pytest
from support.compare import assert_same_result, duckdb_result

import shoal
from shoal.errors import InternalError, ShoalError


def duckdb_outcome(sql: str, tables: Mapping[str, pa.Table]) -> pa.Table | duckdb.Error:
    try:
        return duckdb_result(sql, tables)
    except duckdb.Error as err:
        return err


def check(
    con: shoal.Connection,
    sql: str,
    tables: Mapping[str, pa.Table],
    *,
    ordered: bool = False,
    error: type[ShoalError] = ShoalError,
) -> ShoalError | None:
    """Assert shoal agrees with DuckDB on ``sql``; return shoal's error when both fail."""
    expected = duckdb_outcome(sql, tables)
    if isinstance(expected, duckdb.Error):
        with pytest.raises(ShoalError) as info:
            con.sql(sql).fetchall()
        assert isinstance(info.value, error), (
            f"{sql!r}: DuckDB fails ({expected}); shoal should raise {error.__name__}, "
            f"raised {type(info.value).__name__}: {info.value}"
        )
        assert not isinstance(info.value, InternalError), f"{sql!r}: {info.value}"
        return info.value
    result = con.sql(sql)
    assert_same_result(result.to_arrow(), expected, ordered=ordered, context=sql)
    result.fetchall()
    return None
