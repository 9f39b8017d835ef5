"""DECIMAL +, -, * on unscaled int64 give exactly what the decimal128 kernels give, or
step aside (and then the Arrow path's answer or error stands)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
import pytest

import shoal
import shoal.expr.evaluate as evaluate_module
from shoal.errors import ShoalError
from shoal.expr import decimal_int64


def _column(rng: np.random.Generator, n: int, p: int, s: int, nulls: bool) -> pa.Array:
    # Magnitudes of every size up to the precision, so some products leave int64.
    values = []
    for digits in rng.integers(1, p + 1, n):
        mantissa = int(rng.integers(0, 10**9)) * 10 ** max(0, int(digits) - 9) % 10 ** int(digits)
        sign = -1 if rng.random() < 0.5 else 1
        values.append(
            None if nulls and rng.random() < 0.15 else Decimal(sign * mantissa).scaleb(-s)
        )
    return pa.array(values, pa.decimal128(p, s))


def _table() -> pa.Table:
    rng = np.random.default_rng(11)
    n = 3000
    return pa.table(
        {
            "price": _column(rng, n, 15, 2, True),
            "disc": _column(rng, n, 4, 2, False),
            "rate": _column(rng, n, 6, 5, True),
            "wide": _column(rng, n, 38, 4, True),
            "big": _column(rng, n, 18, 0, False),
            "i": pa.array(
                [
                    None if k % 7 == 0 else int(v)
                    for k, v in enumerate(rng.integers(-(10**6), 10**6, n))
                ]
            ),
        }
    )


EXPRESSIONS = [
    "price * (1 - disc) * (1 + disc)",
    "price * (1 - disc)",
    "price + rate",
    "rate - price",
    "price * rate",
    "price * i",
    "i - price",
    "wide + price",
    "wide * disc",
    "big * big",
    "big + big",
    "big * 3",
    "2.5 * price - disc",
    "price * price * price",
    "(price - disc) * (rate + 1)",
]


def _run(con: shoal.Connection, expr: str) -> tuple[str, object]:
    try:
        result = con.sql(f"SELECT {expr} AS v FROM t").to_arrow()
    except ShoalError as err:
        return type(err).__name__, str(err).split("] ")[-1]
    return str(result.schema.field("v").type), result.column("v").to_pylist()


@pytest.mark.parametrize("partitions", [1, 3])
def test_int64_path_equals_the_decimal128_kernels(monkeypatch: pytest.MonkeyPatch, partitions: int):
    con = shoal.connect(partitions=partitions)
    con.register_arrow("t", _table())
    fast = {e: _run(con, e) for e in EXPRESSIONS}
    monkeypatch.setattr(evaluate_module, "decimal_arithmetic", lambda *args: None)
    for e in EXPRESSIONS:
        assert fast[e] == _run(con, e), e


def test_the_int64_path_is_taken_and_declines_past_int64(monkeypatch: pytest.MonkeyPatch):
    taken: list[bool] = []
    real = decimal_int64.decimal_arithmetic

    def spy(*args: object) -> object:
        out = real(*args)  # type: ignore[arg-type]
        taken.append(out is not None)
        return out

    monkeypatch.setattr(evaluate_module, "decimal_arithmetic", spy)
    con = shoal.connect(partitions=1)
    small = pa.table(
        {"a": pa.array([Decimal("1.25"), None, Decimal("-3.50")], pa.decimal128(15, 2))}
    )
    con.register_arrow("s", small)
    assert con.sql("SELECT a * (1 - a) AS v FROM s").to_arrow().column("v").to_pylist() == [
        Decimal("-0.3125"),
        None,
        Decimal("-15.7500"),
    ]
    assert taken and all(taken)
    taken.clear()
    # 10**17 * 10**17 leaves int64: the fast path declines, the kernels answer exactly.
    huge = pa.table({"b": pa.array([Decimal(10**17), Decimal(-(10**17))], pa.decimal128(18, 0))})
    con.register_arrow("h", huge)
    values = con.sql("SELECT b * b AS v FROM h").to_arrow().column("v").to_pylist()
    assert values == [Decimal(10**34), Decimal(10**34)]
    assert taken == [False]
