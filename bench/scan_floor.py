"""The scan floor: DuckDB's whole scan-and-aggregate of a query's columns against
pyarrow's Parquet decode alone of the same columns, on the same files and threads.

A query whose time is mostly its scan cannot run faster in shoal than pyarrow decodes
its columns (shoal reads Parquet through pyarrow; see docs/performance.md). This puts
that floor beside DuckDB: for each column set (the Parquet columns a TPC-H query reads
from its largest table), DuckDB aggregates every column (``sum`` of a number, ``max``
of a date or string: every value decoded, the cheapest fold per value), and pyarrow
decodes the same row
groups the way shoal's scan does (``iter_batches`` of 128 Ki rows, no reader threads,
no pre-buffering, a 4 MiB read buffer, low-cardinality strings as dictionaries), row groups dealt round-robin to ``--threads``
threads, with no work after the decode. Both take the best of ``--runs`` after a
warm-up; the two alternate run by run.

    .venv/bin/python bench/scan_floor.py [--sf 1] [--threads 2] [--runs 5] [--sets q01,q05]

Printed per column set: DuckDB's time, pyarrow's, and pyarrow over DuckDB. A ratio
near or above the query's ratio in ``make bench`` says where its gap is: in the decode,
not in the operators above the scan.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "src"))

import duckdb  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from shoal.datagen import ensure_tpch, tpch_tables  # noqa: E402
from shoal.physical.operators.scan import _low_cardinality_columns  # noqa: E402

#: The Parquet columns of each query's largest table (what its scan decodes).
COLUMN_SETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "q01": (
        "lineitem",
        (
            "l_quantity",
            "l_extendedprice",
            "l_discount",
            "l_tax",
            "l_returnflag",
            "l_linestatus",
            "l_shipdate",
        ),
    ),
    "q03": ("lineitem", ("l_orderkey", "l_extendedprice", "l_discount", "l_shipdate")),
    "q05": ("lineitem", ("l_orderkey", "l_suppkey", "l_extendedprice", "l_discount")),
    "q06": ("lineitem", ("l_quantity", "l_extendedprice", "l_discount", "l_shipdate")),
    "q21": ("lineitem", ("l_orderkey", "l_suppkey", "l_commitdate", "l_receiptdate")),
    "q13": ("orders", ("o_orderkey", "o_custkey", "o_comment")),
}

_BATCH_ROWS = 1 << 17
_READ_BUFFER_BYTES = 4 << 20


def _fold(t: pa.DataType) -> str:
    """DuckDB's cheapest aggregate that still reads every value of a column."""
    return "sum" if pa.types.is_integer(t) or pa.types.is_decimal(t) else "max"


def _is_string(schema: pq.ParquetSchema, column: str) -> bool:
    t = schema.to_arrow_schema().field(column).type
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


def _files(table: Path) -> list[str]:
    return sorted(str(p) for p in table.glob("*.parquet")) if table.is_dir() else [str(table)]


def _seconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _decode_all(files: list[str], columns: list[str], threads: int) -> Callable[[], None]:
    # Footers and the dictionary choice once, outside the timed runs (shoal's scan caches
    # both per file version).
    footers = {f: pq.read_metadata(f) for f in files}
    dictionary = {
        f: _low_cardinality_columns(m, tuple(c for c in columns if _is_string(m.schema, c)))
        for f, m in footers.items()
    }
    units = [(f, rg) for f, m in footers.items() for rg in range(m.num_row_groups)]

    def decode(share: list[tuple[str, int]]) -> None:
        readers: dict[str, pq.ParquetFile] = {}
        for path, rg in share:
            reader = readers.get(path)
            if reader is None:
                reader = readers[path] = pq.ParquetFile(
                    path,
                    metadata=footers[path],
                    read_dictionary=dictionary[path] or None,
                    pre_buffer=False,
                    buffer_size=_READ_BUFFER_BYTES,
                )
            for _ in reader.iter_batches(
                batch_size=_BATCH_ROWS, row_groups=[rg], columns=columns, use_threads=False
            ):
                pass

    shares = [units[k::threads] for k in range(threads)]

    def run() -> None:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(decode, shares))

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sf", type=float, default=1.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sets", default=",".join(COLUMN_SETS))
    args = parser.parse_args()
    unknown = [s for s in args.sets.split(",") if s not in COLUMN_SETS]
    if unknown:
        raise SystemExit(f"unknown column sets {unknown}; known: {', '.join(COLUMN_SETS)}")

    root = Path(os.environ.get("SHOAL_DATA_DIR") or REPO_ROOT / "data")
    tables = tpch_tables(ensure_tpch(args.sf, root))
    pa.set_cpu_count(args.threads)
    con = duckdb.connect()
    con.execute(f"SET threads = {args.threads}")
    print(f"TPC-H SF {args.sf:g}, threads {args.threads}, best of {args.runs} runs")
    print("| columns | DuckDB scan + aggregate ms | pyarrow decode ms | pyarrow / DuckDB |")
    print("|---|---:|---:|---:|")
    for name in args.sets.split(","):
        table, columns = COLUMN_SETS[name]
        files = _files(tables[table])
        schema = pq.ParquetFile(files[0]).schema_arrow
        folds = ", ".join(f"{_fold(schema.field(c).type)}({c})" for c in columns)
        query = f"SELECT {folds} FROM read_parquet({files!r})"

        def duck(query: str = query) -> object:
            return con.execute(query).fetchall()

        arrow = _decode_all(files, list(columns), args.threads)
        duck(), arrow()  # warm-up: page cache, footers, thread pools
        best_duck = best_arrow = float("inf")
        for _ in range(args.runs):  # alternated, so both see the same minutes
            best_duck = min(best_duck, _seconds(duck))
            best_arrow = min(best_arrow, _seconds(arrow))
        print(
            f"| {name}: {table} {', '.join(columns)} | {best_duck * 1e3:.1f} |"
            f" {best_arrow * 1e3:.1f} | {best_arrow / best_duck:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
