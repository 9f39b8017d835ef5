"""Deterministic tables for the differential tests (fixed seeds, no network).

Tables (all as ``pyarrow.Table``):

* ``sales`` (5,000 rows): the main fact table. ``id`` is unique and never NULL
  (use it to make an ORDER BY total); every other column has NULLs and
  duplicates. Rows are shuffled, so files are not sorted by any column.
* ``sales_empty``: 0 rows, same schema as ``sales``.
* ``people`` (300 rows): ``person_id`` unique; names in varied case, with
  spaces and empty strings; negative decimals; digit strings (``zip``).
* ``tiny`` (10 rows): many NULLs; key ``k`` has a NULL group and a group
  (``'c'``) whose value columns are all NULL.
* ``events`` (200 rows): only CSV-friendly types and values (no empty strings,
  no NULL strings) so that a CSV round trip gives back exactly this table.

:func:`materialize` writes them to disk and says how to register each one.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

SALES_ROWS = 5_000
PEOPLE_ROWS = 300
EVENTS_ROWS = 200
ROW_GROUP_SIZE = 500
SALES_SHARD_BOUNDS = (0, 1_400, 2_600, 3_700, SALES_ROWS)  # 4 files of unequal size

_EPOCH = dt.date(1970, 1, 1)

REGIONS = ["north", "south", "east", "west", "North", "EAST", "south west", ""]
PRODUCTS = [
    "promo brushed steel",
    "PROMO anodized tin",
    "promo_plated copper",
    "standard polished brass",
    "Standard burnished nickel",
    "economy plated tin",
    "economy_box",
    "economy box",
    "large case",
    "small bag",
    "medium bag",
    " padded jar",
    "jar ",
]
STATUSES = ["F", "O", "P"]
NAMES = [
    "alice", "Alice", "ALICE", "al", "albert", "Alberta", "bob", "Bob Smith", "carol",
    "Carol Ann", "dave", "  eve", "frank ", "", "grace", "Heidi", "ivan", "judy",
    "mallory", "Oscar", "peggy", "trent", "Victor", "walter", "Zoe",
]  # fmt: skip
CITIES = ["Paris", "paris", "Berlin", "New York", "new york", "Oslo", "Zürich", "Lima"]
EVENT_KINDS = ["click", "view", "purchase", "signup", "refund"]


# ------------------------------------------------------------------ builders


def _days(date: dt.date) -> int:
    return (date - _EPOCH).days


def _null_mask(rng: np.random.Generator, n: int, fraction: float) -> np.ndarray:
    return rng.random(n) < fraction


def _int_array(values: np.ndarray, mask: np.ndarray | None, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type=type_, mask=mask)


def _decimal_array(
    units: np.ndarray, scale: int, mask: np.ndarray | None, type_: pa.DataType
) -> pa.Array:
    """Decimals from integer ``units`` of 10**-scale (e.g. cents for scale 2)."""
    if mask is None:
        mask = np.zeros(len(units), dtype=bool)
    return pa.array(
        [None if m else Decimal(int(u)).scaleb(-scale) for u, m in zip(units, mask, strict=True)],
        type=type_,
    )


def _string_array(choices: list[str], index: np.ndarray, mask: np.ndarray | None) -> pa.Array:
    if mask is None:
        mask = np.zeros(len(index), dtype=bool)
    return pa.array(
        [None if m else choices[i] for i, m in zip(index, mask, strict=True)], type=pa.string()
    )


def _date_array(days: np.ndarray, mask: np.ndarray | None) -> pa.Array:
    return pa.array(days.astype(np.int32), type=pa.int32(), mask=mask).cast(pa.date32())


def _bool_array(values: np.ndarray, mask: np.ndarray | None) -> pa.Array:
    return pa.array(values, type=pa.bool_(), mask=mask)


# -------------------------------------------------------------------- tables


def sales_table() -> pa.Table:
    rng = np.random.default_rng(20240601)
    n = SALES_ROWS
    order_days = rng.integers(_days(dt.date(1992, 1, 1)), _days(dt.date(1998, 12, 31)) + 1, n)
    order_null = _null_mask(rng, n, 0.03)
    ship_days = order_days + rng.integers(1, 122, n)
    ship_null = order_null | _null_mask(rng, n, 0.02)
    columns = {
        "id": _int_array(rng.permutation(np.arange(1, n + 1)), None, pa.int64()),
        "cust_id": _int_array(rng.integers(1, 401, n), _null_mask(rng, n, 0.05), pa.int32()),
        "store": _int_array(rng.integers(1, 13, n), _null_mask(rng, n, 0.03), pa.int64()),
        "region": _string_array(
            REGIONS, rng.integers(0, len(REGIONS), n), _null_mask(rng, n, 0.05)
        ),
        "product": _string_array(
            PRODUCTS, rng.integers(0, len(PRODUCTS), n), _null_mask(rng, n, 0.04)
        ),
        "status": _string_array(
            STATUSES, rng.integers(0, len(STATUSES), n), _null_mask(rng, n, 0.02)
        ),
        "qty": _int_array(rng.integers(1, 51, n), _null_mask(rng, n, 0.04), pa.int32()),
        # 1.00 .. 10000.00; every 25th-ish price ends in .50 (rounding on casts)
        "price": _decimal_array(
            np.where(
                rng.random(n) < 0.04,
                rng.integers(1, 10_000, n) * 100 + 50,
                rng.integers(100, 1_000_001, n),
            ),
            2,
            _null_mask(rng, n, 0.04),
            pa.decimal128(15, 2),
        ),  # fmt: skip
        "discount": _decimal_array(
            rng.integers(0, 11, n), 2, _null_mask(rng, n, 0.03), pa.decimal128(15, 2)
        ),
        "tax_rate": _decimal_array(
            rng.integers(0, 801, n), 4, _null_mask(rng, n, 0.03), pa.decimal128(10, 4)
        ),
        "weight": pa.array(rng.uniform(0.1, 100.0, n), mask=_null_mask(rng, n, 0.05)),
        "order_date": _date_array(order_days, order_null),
        "ship_date": _date_array(ship_days, ship_null),
        "is_returned": _bool_array(rng.random(n) < 0.2, _null_mask(rng, n, 0.05)),
    }
    return pa.table(columns)


def sales_empty_table() -> pa.Table:
    return sales_table().schema.empty_table()


def people_table() -> pa.Table:
    rng = np.random.default_rng(7)
    n = PEOPLE_ROWS
    signup_lo, signup_hi = _days(dt.date(2015, 1, 1)), _days(dt.date(2024, 12, 31))
    zip_mask = _null_mask(rng, n, 0.05)
    zips = [None if m else f"{z:05d}" for z, m in zip(rng.integers(0, 100_000, n), zip_mask,
                                                         strict=True)]  # fmt: skip
    columns = {
        "person_id": _int_array(rng.permutation(np.arange(1, n + 1)), None, pa.int64()),
        "name": _string_array(NAMES, rng.integers(0, len(NAMES), n), _null_mask(rng, n, 0.03)),
        "age": _int_array(rng.integers(18, 91, n), _null_mask(rng, n, 0.10), pa.int32()),
        "city": _string_array(CITIES, rng.integers(0, len(CITIES), n), _null_mask(rng, n, 0.08)),
        "score": pa.array(rng.normal(50.0, 20.0, n), mask=_null_mask(rng, n, 0.08)),
        "balance": _decimal_array(
            rng.integers(-100_000, 1_000_001, n),
            2,
            _null_mask(rng, n, 0.05),
            pa.decimal128(15, 2),
        ),  # fmt: skip
        "signup": _date_array(
            rng.integers(signup_lo, signup_hi + 1, n), _null_mask(rng, n, 0.05)
        ),  # fmt: skip
        "active": _bool_array(rng.random(n) < 0.6, _null_mask(rng, n, 0.10)),
        "zip": pa.array(zips, type=pa.string()),
    }
    return pa.table(columns)


def tiny_table() -> pa.Table:
    d = dt.date
    dec = Decimal
    return pa.table(
        {
            "id": pa.array(range(1, 11), type=pa.int64()),
            "k": pa.array(["a", "a", "b", "b", "c", "c", None, None, "d", ""]),
            "i": pa.array([1, None, 3, 3, None, None, 7, None, -2, 0], type=pa.int32()),
            "x": pa.array([1.5, 2.25, None, -0.5, None, None, 1e10, 0.0, None, 3.0]),
            "d": pa.array(
                [
                    dec("1.2500"),
                    None,
                    dec("-0.0100"),
                    dec("2.0000"),
                    None,
                    None,
                    dec("100.5000"),
                    None,
                    dec("0.0000"),
                    dec("3.1416"),
                ],
                type=pa.decimal128(10, 4),
            ),  # fmt: skip
            "s": pa.array(
                ["apple", None, "Apple pie", "", None, None, "banana", " apple", "cherry", None]
            ),
            "dt": pa.array(
                [
                    d(1995, 1, 31),
                    None,
                    d(1996, 2, 29),
                    d(1999, 12, 31),
                    None,
                    None,
                    d(2000, 3, 1),
                    d(1992, 1, 1),
                    None,
                    d(1995, 1, 31),
                ],
                type=pa.date32(),
            ),  # fmt: skip
            "flag": pa.array([True, None, False, True, None, None, False, None, True, False]),
        }
    )


def events_table() -> pa.Table:
    rng = np.random.default_rng(99)
    n = EVENTS_ROWS
    day_lo, day_hi = _days(dt.date(2020, 1, 1)), _days(dt.date(2021, 12, 31))
    # values with a fractional part that survives a text round trip exactly
    values = np.round(rng.uniform(0.0, 500.0, n), 3) + 0.125
    return pa.table(
        {
            "event_id": _int_array(np.arange(1, n + 1), None, pa.int64()),
            "kind": _string_array(EVENT_KINDS, rng.integers(0, len(EVENT_KINDS), n), None),
            "amount": _int_array(rng.integers(0, 1_001, n), _null_mask(rng, n, 0.1), pa.int64()),
            "value": pa.array(values, mask=_null_mask(rng, n, 0.1)),
            "day": _date_array(rng.integers(day_lo, day_hi + 1, n), _null_mask(rng, n, 0.05)),
        }
    )


def all_tables() -> dict[str, pa.Table]:
    """Every table by the name queries use (the oracle's catalog)."""
    sales = sales_table()
    return {
        "sales": sales,
        "sales_glob": sales,  # same data, registered through a glob
        "sales_empty": sales.schema.empty_table(),
        "people": people_table(),
        "tiny": tiny_table(),
        "events": events_table(),
    }


# ------------------------------------------------------------- materializing


@dataclass(frozen=True)
class Registration:
    """How one table is registered with shoal: ``kind`` is parquet, csv or arrow."""

    name: str
    kind: str
    location: str | None = None  # path, folder or glob; None for arrow


def materialize(root: Path, tables: dict[str, pa.Table]) -> list[Registration]:
    """Write the tables under ``root``; return how to register each one with shoal.

    ``sales`` becomes a folder of 4 Parquet files with row groups of 500 rows
    (many splits), also registered as ``sales_glob`` through a glob over it;
    ``sales_empty`` and ``people`` are single Parquet files; ``events`` is a CSV
    file; ``tiny`` is registered as an in-memory Arrow table.
    """
    root = Path(root)
    sales_dir = root / "sales"
    sales_dir.mkdir(parents=True, exist_ok=True)
    sales = tables["sales"]
    for part, (lo, hi) in enumerate(
        zip(SALES_SHARD_BOUNDS[:-1], SALES_SHARD_BOUNDS[1:], strict=True)
    ):
        pq.write_table(
            sales.slice(lo, hi - lo), sales_dir / f"part-{part}.parquet",
            row_group_size=ROW_GROUP_SIZE,
        )  # fmt: skip
    pq.write_table(tables["sales_empty"], root / "sales_empty.parquet")
    pq.write_table(tables["people"], root / "people.parquet", row_group_size=ROW_GROUP_SIZE)
    pacsv.write_csv(tables["events"], root / "events.csv")
    return [
        Registration("sales", "parquet", str(sales_dir)),
        Registration("sales_glob", "parquet", str(sales_dir / "part-*.parquet")),
        Registration("sales_empty", "parquet", str(root / "sales_empty.parquet")),
        Registration("people", "parquet", str(root / "people.parquet")),
        Registration("events", "csv", str(root / "events.csv")),
        Registration("tiny", "arrow"),
    ]


def register_tables(
    con: Any, registrations: list[Registration], tables: dict[str, pa.Table]
) -> None:
    """Register each table with a shoal connection the way ``registrations`` say."""
    for reg in registrations:
        if reg.kind == "parquet":
            con.register_parquet(reg.name, reg.location)
        elif reg.kind == "csv":
            con.register_csv(reg.name, reg.location)
        elif reg.kind == "arrow":
            con.register_arrow(reg.name, tables[reg.name])
        else:  # pragma: no cover - a bug in the data modules
            raise ValueError(f"unknown registration kind {reg.kind!r}")
