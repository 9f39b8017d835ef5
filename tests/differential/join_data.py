"""Extra deterministic tables for the join and subquery differential tests.

These sit next to the tables of ``data.py`` (``sales``, ``people``, ``tiny``,
``events``, ``sales_empty``) and are made for joins:

* ``jl`` (12 rows) and ``jr`` (11 rows): small tables for outer joins, cross
  joins and nested loops. Keys have NULLs on both sides and duplicates on both
  sides (``k`` = 6 is many-to-many); ``jl.k`` is int32 and ``jr.k`` is int64;
  ``jr.kd`` is a DECIMAL(6,2) copy of ``jr.k`` except that one value (2.50)
  matches no integer. ``id`` is unique on both.
* ``stores`` (16 rows): a dimension for ``sales.store`` (int64). Store 5 has two
  rows (many-to-many with ``sales``), stores 13 and 14 have no sales, one row
  has a NULL ``store_id``. ``code`` is the store id as DECIMAL(6,0) (decimal vs
  int keys); ``manager_id`` is int32 and refers to ``people.person_id`` (int64),
  with a NULL and a dangling id.
* ``orders`` (200 rows), ``lines`` (~800 rows) and ``supp`` (30 rows): a small
  order/line/supplier schema for TPC-H style semi/anti joins (Q4, Q18, Q21).
  ``lines.order_id`` is int32 (``orders.order_id`` is int64), has NULLs and
  dangling ids; ``lines.supp_id`` has NULLs; orders 191..200 have no lines and
  suppliers 26..30 have none either.

:func:`materialize_join_tables` writes some of them to Parquet; every table
keeps a unique ``id``-like column so that an ORDER BY can be made total.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .data import Registration

ORDERS_ROWS = 200
SUPP_ROWS = 30
LINES_ROW_GROUP = 100


def _dec(values: list[str | None], type_: pa.DataType) -> pa.Array:
    return pa.array([None if v is None else Decimal(v) for v in values], type=type_)


def jl_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, 13), type=pa.int64()),
            "k": pa.array([1, 1, 2, 3, None, 5, 6, 6, None, 9, 10, 12], type=pa.int32()),
            "g": pa.array(["a", "b", "a", None, "c", "a", "b", "b", "a", "", "c", "d"]),
            "v": pa.array([10, 20, 30, 40, 50, 60, None, 80, 90, 100, 110, 120], type=pa.int64()),
            "dv": _dec(
                [
                    "1.50",
                    "-2.25",
                    None,
                    "4.00",
                    "0.00",
                    "6.75",
                    "7.10",
                    None,
                    "9.99",
                    "-10.00",
                    "11.00",
                    "12.50",
                ],
                pa.decimal128(8, 2),
            ),
        }
    )


def jr_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array(range(1, 12), type=pa.int64()),
            "k": pa.array([1, 2, 2, 4, None, 6, 6, 7, None, 10, 11], type=pa.int64()),
            "g": pa.array(["a", "a", "b", "x", "c", "b", "b", None, "a", "c", ""]),
            "w": pa.array([5, 25, 35, 45, 55, None, 75, 85, 95, 105, 115], type=pa.int64()),
            "kd": _dec(
                [
                    "1.00",
                    "2.00",
                    "2.50",
                    "4.00",
                    None,
                    "6.00",
                    "6.00",
                    "7.00",
                    None,
                    "10.00",
                    "11.00",
                ],
                pa.decimal128(6, 2),
            ),
        }
    )


def stores_table() -> pa.Table:
    d = dt.date
    rows: list[tuple[Any, ...]] = [
        # store_id, name, region, manager_id, area, opened
        (1, "Main St", "north", 17, "1200.50", d(1990, 1, 1)),
        (2, "Harbor", "south", 42, "800.00", d(1991, 6, 15)),
        (3, "Old Town", "east", None, "950.25", d(1992, 3, 3)),
        (4, "Airport", "west", 120, "2000.00", None),
        (5, "Mall A", "North", 7, "1500.00", d(1993, 7, 1)),
        (5, "Mall B", "north", 8, "1499.99", d(1994, 2, 28)),
        (6, "Station", "EAST", 250, "640.10", d(1995, 9, 9)),
        (7, "Riverside", "south west", 999, "720.00", d(1996, 1, 31)),
        (8, "Hilltop", "", 3, "300.00", d(1992, 12, 31)),
        (9, "Campus", None, 150, "455.55", d(1997, 5, 5)),
        (10, "Docks", "west", 299, None, d(1998, 8, 8)),
        (11, "Market", "north", 1, "1000.00", d(1990, 1, 1)),
        (12, "Plaza", "mars", 300, "1111.11", d(1999, 9, 30)),
        (13, "Closed North", "north", 17, "500.00", d(1989, 4, 1)),
        (14, "Closed South", "south", 42, "0.00", d(1988, 2, 2)),
        (None, "Unassigned", "east", 64, "10.00", None),
    ]
    cols = list(zip(*rows, strict=True))
    store_id = pa.array(cols[0], type=pa.int64())
    return pa.table(
        {
            "store_id": store_id,
            "name": pa.array(cols[1]),
            "region": pa.array(cols[2], type=pa.string()),
            "manager_id": pa.array(cols[3], type=pa.int32()),
            "area": _dec(list(cols[4]), pa.decimal128(10, 2)),
            "opened": pa.array(cols[5], type=pa.date32()),
            "code": pa.array(
                [None if s is None else Decimal(s) for s in cols[0]], type=pa.decimal128(6, 0)
            ),
        }
    )


def supp_table() -> pa.Table:
    rng = np.random.default_rng(31)
    n = SUPP_ROWS
    nations = ["FRANCE", "GERMANY", "PERU", "JAPAN", "KENYA"]
    nation_idx = rng.integers(0, len(nations), n)
    nation_null = rng.random(n) < 0.1
    balance = rng.integers(-50_000, 1_000_001, n)
    return pa.table(
        {
            "supp_id": pa.array(np.arange(1, n + 1), type=pa.int64()),
            "name": pa.array([f"Supplier#{i:03d}" for i in range(1, n + 1)]),
            "nation": pa.array(
                [None if m else nations[i] for i, m in zip(nation_idx, nation_null, strict=True)],
                type=pa.string(),
            ),
            "balance": _dec([f"{b / 100:.2f}" for b in balance], pa.decimal128(12, 2)),
        }
    )


def orders_table() -> pa.Table:
    rng = np.random.default_rng(41)
    n = ORDERS_ROWS
    epoch = dt.date(1970, 1, 1)
    lo = (dt.date(1993, 1, 1) - epoch).days
    days = rng.integers(lo, lo + 6 * 365, n)
    cust = rng.integers(1, 321, n)
    cust_null = rng.random(n) < 0.05
    return pa.table(
        {
            "order_id": pa.array(np.arange(1, n + 1), type=pa.int64()),
            "cust_id": pa.array(cust, type=pa.int32(), mask=cust_null),
            "status": pa.array([["F", "O", "P"][i] for i in rng.integers(0, 3, n)]),
            "priority": pa.array(
                [
                    ["1-URGENT", "2-HIGH", "3-MEDIUM", "4-NOT SPECIFIED"][i]
                    for i in rng.integers(0, 4, n)
                ]
            ),
            "order_date": pa.array(days.astype(np.int32), type=pa.int32()).cast(pa.date32()),
            "total": _dec(
                [f"{t / 100:.2f}" for t in rng.integers(1_000, 5_000_000, n)],
                pa.decimal128(12, 2),
            ),
        }
    )


def lines_table() -> pa.Table:
    rng = np.random.default_rng(43)
    epoch = dt.date(1970, 1, 1)
    order_ids: list[int | None] = []
    line_nos: list[int] = []
    # orders 1..190 get 1..7 lines; 191..200 get none; 201..210 are dangling
    for order in list(range(1, 191)) + list(range(201, 211)):
        count = int(rng.integers(1, 8))
        order_ids.extend([order] * count)
        line_nos.extend(range(1, count + 1))
    n = len(order_ids)
    for i in np.nonzero(rng.random(n) < 0.02)[0]:
        order_ids[int(i)] = None
    lo = (dt.date(1993, 1, 1) - epoch).days
    commit = rng.integers(lo, lo + 6 * 365, n)
    receipt = commit + rng.integers(-20, 21, n)
    supp_null = rng.random(n) < 0.03
    modes = ["AIR", "MAIL", "SHIP", "TRUCK", "RAIL"]
    return pa.table(
        {
            "line_id": pa.array(np.arange(1, n + 1), type=pa.int64()),
            "order_id": pa.array(order_ids, type=pa.int32()),
            "line_no": pa.array(line_nos, type=pa.int32()),
            # suppliers 1..25 only (26..30 have no lines); NULLs for the Q21-style <> checks
            "supp_id": pa.array(rng.integers(1, 26, n), type=pa.int64(), mask=supp_null),
            "qty": pa.array(rng.integers(1, 51, n), type=pa.int32()),
            "price": _dec(
                [f"{p / 100:.2f}" for p in rng.integers(100, 100_000, n)], pa.decimal128(12, 2)
            ),
            "commit_date": pa.array(commit.astype(np.int32), type=pa.int32()).cast(pa.date32()),
            "receipt_date": pa.array(receipt.astype(np.int32), type=pa.int32()).cast(pa.date32()),
            "ship_mode": pa.array([modes[i] for i in rng.integers(0, len(modes), n)]),
        }
    )


def join_tables() -> dict[str, pa.Table]:
    """The extra tables by the name queries use."""
    return {
        "jl": jl_table(),
        "jr": jr_table(),
        "stores": stores_table(),
        "supp": supp_table(),
        "orders": orders_table(),
        "lines": lines_table(),
    }


def materialize_join_tables(root: Path, tables: dict[str, pa.Table]) -> list[Registration]:
    """Write some tables to Parquet under ``root``; say how to register each one.

    ``jr`` is one Parquet file, ``orders`` one file with row groups of 50 rows,
    ``lines`` a folder of 2 files with row groups of 100 rows; ``jl``,
    ``stores`` and ``supp`` are registered as in-memory Arrow tables.
    """
    root = Path(root)
    pq.write_table(tables["jr"], root / "jr.parquet")
    pq.write_table(tables["orders"], root / "orders.parquet", row_group_size=50)
    lines_dir = root / "lines"
    lines_dir.mkdir(parents=True, exist_ok=True)
    lines = tables["lines"]
    half = lines.num_rows // 2
    pq.write_table(
        lines.slice(0, half), lines_dir / "part-0.parquet", row_group_size=LINES_ROW_GROUP
    )
    pq.write_table(lines.slice(half), lines_dir / "part-1.parquet", row_group_size=LINES_ROW_GROUP)
    return [
        Registration("jl", "arrow"),
        Registration("jr", "parquet", str(root / "jr.parquet")),
        Registration("stores", "arrow"),
        Registration("supp", "arrow"),
        Registration("orders", "parquet", str(root / "orders.parquet")),
        Registration("lines", "parquet", str(lines_dir)),
    ]
