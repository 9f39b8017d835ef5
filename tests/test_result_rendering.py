"""A query's EXPLAIN ANALYZE is rendered when asked for, once; residual pairs carry only
the columns the residual reads."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

import shoal
import shoal.api.connection as connection
from shoal.expr.nodes import Call, ColumnRef, Literal
from shoal.physical.operators.join_output import residual_pairs


def test_explain_analyze_is_rendered_on_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = connection.explain_graph

    def counted(*args: object) -> str:
        calls.append(1)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(connection, "explain_graph", counted)
    con = shoal.connect(partitions=2)
    con.register_arrow("t", pa.table({"a": list(range(10))}))
    result = con.sql("SELECT sum(a) AS s FROM t")
    assert result.fetchall() == [(45,)] and calls == []
    text = result.explain_analyze()
    assert "Aggregate" in text and "rows=" in text
    assert json.loads(result.explain_analyze_json())["stages"]
    assert result.explain_analyze() == text and calls == [1]


def test_residual_pairs_carry_only_the_columns_read() -> None:
    probe = pa.record_batch({"a": [1, 2, 3], "wide": ["x", "y", "z"]})
    build = pa.table({"b": [10, 20], "other": [0.5, 1.5]})
    residual = Call(
        "not_equal", (ColumnRef("a", pa.int64()), ColumnRef("b", pa.int64())), pa.bool_()
    )
    pairs = residual_pairs(probe, build, np.array([0, 2, 2]), np.array([1, 0, 1]), residual)
    assert pairs.schema.names == ["a", "b"]
    assert pairs.to_pydict() == {"a": [1, 3, 3], "b": [20, 10, 20]}
    constant = Literal(True, pa.bool_())
    kept = residual_pairs(probe, build, np.array([0, 1]), np.array([0, 0]), constant)
    assert kept.num_rows == 2
