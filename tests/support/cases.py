"""Differential test cases: SQL plus how its result is compared with DuckDB's."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from support.compare import assert_same_result, duckdb_result


@dataclass(frozen=True)
class Case:
    id: str
    sql: str
    ordered: bool = False  # True only if ORDER BY makes the output order total
    both: bool = False  # also run at the suite's extra partition counts
    rel_tol: float = 1e-9


def u(id: str, sql: str, *, both: bool = False) -> Case:
    """A query whose row order is not determined: compared as a multiset."""
    return Case(id, textwrap.dedent(sql).strip(), ordered=False, both=both)


def o(id: str, sql: str, *, both: bool = False) -> Case:
    """A query with a total ORDER BY: compared row by row, in order."""
    return Case(id, textwrap.dedent(sql).strip(), ordered=True, both=both)


def check_case(con: Any, case: Case, tables: dict[str, pa.Table], partitions: int) -> None:
    """Run ``case`` on a shoal connection and on DuckDB over ``tables``; results must agree."""
    actual = con.sql(case.sql).to_arrow()
    expected = duckdb_result(case.sql, tables)
    assert isinstance(actual, pa.Table), f"to_arrow() returned {type(actual).__name__}"
    assert_same_result(
        actual,
        expected,
        ordered=case.ordered,
        rel_tol=case.rel_tol,
        context=f"[partitions={partitions}] {case.sql}",
    )
