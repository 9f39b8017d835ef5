"""Per-column Parquet decode time, and the string_view -> string cast after it.

Reads each named column of a table's files the way the scan does (``iter_batches``,
64Ki-row batches, no reader threads, no pre-buffering) and times the decode and the
cast the scan's ``_conform`` applies to plain ``string_view`` columns.

    .venv/bin/python bench/scan_decode.py --table lineitem --columns l_comment,l_extendedprice
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import pyarrow as pa
import pyarrow.parquet as pq


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sf", default="1")
    parser.add_argument("--table", default="lineitem")
    parser.add_argument("--columns", default="l_comment,l_extendedprice")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    root = os.environ.get("SHOAL_DATA_DIR", "data")
    files = sorted(glob.glob(f"{root}/sf{args.sf}/{args.table}/*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {root}/sf{args.sf}/{args.table}")
    for run in range(args.runs):
        for column in args.columns.split(","):
            decode = cast = 0.0
            for path in files:
                reader = pq.ParquetFile(path, pre_buffer=False, buffer_size=4 << 20)
                started = time.perf_counter()
                batches = list(
                    reader.iter_batches(batch_size=65536, columns=[column], use_threads=False)
                )
                decoded = time.perf_counter()
                for batch in batches:
                    if pa.types.is_string_view(batch.column(0).type):
                        batch.column(0).cast(pa.string())
                decode += decoded - started
                cast += time.perf_counter() - decoded
            print(f"run {run + 1} {column}: decode {decode:.3f} s, cast {cast:.3f} s")


if __name__ == "__main__":
    main()
