"""Mutated TPC-H texts: every outcome is a result or a typed error, never a crash.

Each of the 22 query texts is mutated at the token level (a token deleted,
doubled, swapped with the next, replaced or preceded by one from a pool of
hostile tokens) with a fixed seed, and run over tiny TPC-H tables (the first rows
of SF 0.01). Every outcome must be a result that converts with ``fetchall`` or a
``ShoalError`` that is not an ``InternalError``; the connection must keep giving
DuckDB's answer to a control query throughout.
"""

from __future__ import annotations

import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlglot.dialects.dialect import Dialect
from support.compare import assert_same_result, duckdb_result
from support.tpch import query_text

import shoal
from shoal.datagen import ensure_tpch
from shoal.errors import InternalError, ShoalError

ROWS = 40  # per table: joins stay tiny even when a mutation drops a join condition
POOL = [
    ",", "(", ")", "NULL", "0", "-1", "'x'", "DATE", "AND", "OR", "NOT", "SELECT", "*",
    "+", "=", "<", "IN", "1e308", "9223372036854775807", "-0.0", "'NaN'::DOUBLE",
    "CAST(", "::VARCHAR", "GROUP BY", "ORDER BY", "DISTINCT", "CASE", "END", "EXISTS",
    "LIMIT", "INTERVAL", "'1994-13-45'", "/", "%", "||", "LIKE", "'%\\'", "ALL",
]  # fmt: skip
CONTROL = "SELECT n_regionkey, count(*) AS c FROM nation GROUP BY n_regionkey"


@pytest.fixture(scope="module")
def tiny_tpch(data_cache_dir: Path) -> dict[str, pa.Table]:
    root = ensure_tpch(0.01, data_cache_dir)
    tables = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        table = pq.read_table(folder).slice(0, ROWS)
        # Views flow through DuckDB as plain strings.
        tables[folder.name] = table.cast(
            pa.schema(
                [
                    pa.field(f.name, pa.string()) if pa.types.is_string_view(f.type) else f
                    for f in table.schema
                ]
            )
        )
    return tables


def mutate(text: str, rng: random.Random) -> str:
    tokens = Dialect.get_or_raise("duckdb").tokenize(text)
    i = rng.randrange(len(tokens))
    tok = tokens[i]
    start, end = tok.start, tok.end + 1
    kind = rng.choice(["delete", "double", "swap", "replace", "insert"])
    if kind == "delete":
        return text[:start] + text[end:]
    if kind == "double":
        return text[:end] + " " + text[start:end] + text[end:]
    if kind == "swap" and i + 1 < len(tokens):
        nxt = tokens[i + 1]
        return (
            text[:start]
            + text[nxt.start : nxt.end + 1]
            + text[end : nxt.start]
            + text[start:end]
            + text[nxt.end + 1 :]
        )
    word = rng.choice(POOL)
    if kind == "replace":
        return text[:start] + word + text[end:]
    return text[:start] + word + " " + text[start:]


def run_mutations(tables: dict[str, pa.Table], count: int, seed: int) -> dict[str, int]:
    con = shoal.connect(partitions=2, broadcast_threshold_bytes=0)
    for name, table in tables.items():
        con.register_arrow(name, table)
    expected_control = duckdb_result(CONTROL, tables)
    rng = random.Random(seed)
    texts = [query_text(q) for q in range(1, 23)]
    outcomes = {"result": 0, "error": 0}
    for n in range(count):
        sql = mutate(rng.choice(texts), rng)
        try:
            con.sql(sql).fetchall()
            outcomes["result"] += 1
        except InternalError as err:
            pytest.fail(f"mutation {n} is a bug in shoal: {err}\n{sql}")
        except ShoalError:
            outcomes["error"] += 1
        if n % 50 == 49:
            assert_same_result(con.sql(CONTROL).to_arrow(), expected_control, ordered=False)
    assert_same_result(con.sql(CONTROL).to_arrow(), expected_control, ordered=False)
    return outcomes


def test_mutated_tpch_queries_are_results_or_typed_errors(tiny_tpch: dict[str, pa.Table]) -> None:
    outcomes = run_mutations(tiny_tpch, count=300, seed=15)
    # Both kinds occur: the mutations reach the planner and the runtime, not just the parser.
    assert outcomes["result"] >= 10 and outcomes["error"] >= 100, outcomes


@pytest.mark.slow
def test_many_mutated_tpch_queries(tiny_tpch: dict[str, pa.Table]) -> None:
    run_mutations(tiny_tpch, count=3000, seed=1515)
