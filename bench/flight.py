"""Result streaming through the Flight SQL server on loopback: throughput and first batch.

Run: .venv/bin/python bench/flight.py [--rows 10000000] [--runs 3] [--partitions 2]
     [--format ipc|parquet]

Writes a table of ``--rows`` rows (int64 id, float64 value, int64 bucket, a short
string tag: about 33 bytes a row in Arrow) to a temporary folder as four Arrow IPC
files (default: memory-mapped, so the figures are about moving results, not decoding)
or four Parquet files (then Parquet decoding dominates), then, side by side in one run:

* ``engine``: ``Connection.stream("SELECT * FROM t")`` in this process, batches counted
  and dropped (what the server's DoGet has to send, without any network);
* ``flight-sql``: ``shoal serve`` as a subprocess on 127.0.0.1, the same query through
  the ADBC Flight SQL driver (``cursor.fetch_record_batch()``, batches dropped);
* ``flight-raw``: a bare ``pyarrow.flight`` server (subprocess) sending the same table
  from memory, read with ``pyarrow.flight.FlightClient``: the transport's own ceiling.

For each: the median of ``--runs`` runs of the seconds to the first batch and to the
last, and MiB/s = Arrow bytes received / seconds to the last batch. The servers are
stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))

from support.servers import start_shoal_server, stop_process  # noqa: E402

import shoal  # noqa: E402

MiB = 1 << 20


def make_table(rows: int) -> pa.Table:
    rng = np.random.default_rng(0)
    return pa.table(
        {
            "id": pa.array(np.arange(rows, dtype=np.int64)),
            "value": pa.array(rng.random(rows)),
            "bucket": pa.array(rng.integers(0, 1000, rows)),
            "tag": pa.array(
                np.array(["alpha", "beta", "gamma", "delta"])[rng.integers(0, 4, rows)]
            ),
        }
    )


def timed(batches: Callable[[], Iterator[pa.RecordBatch]]) -> tuple[float, float, int, int]:
    """(seconds to first batch, seconds to last, rows, Arrow bytes)."""
    started = time.perf_counter()
    first = None
    rows = nbytes = 0
    for batch in batches():
        if first is None:
            first = time.perf_counter() - started
        rows += batch.num_rows
        nbytes += batch.nbytes
    total = time.perf_counter() - started
    return first or total, total, rows, nbytes


RAW_SERVER = textwrap.dedent(
    """
    import sys
    import pyarrow.flight as fl, pyarrow.parquet as pq
    table = pq.read_table(sys.argv[1]).combine_chunks()
    batches = table.to_batches(max_chunksize=65536)
    class Server(fl.FlightServerBase):
        def do_get(self, context, ticket):
            return fl.GeneratorStream(table.schema, iter(batches))
    server = Server("grpc://127.0.0.1:0")
    print(f"raw flight server listening on grpc+tcp://127.0.0.1:{server.port}", flush=True)
    server.serve()
    """
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument("--format", choices=("ipc", "parquet"), default="ipc")
    args = ap.parse_args()

    import adbc_driver_flightsql.dbapi as fsql
    import pyarrow.flight as flight

    with tempfile.TemporaryDirectory(prefix="shoal-flight-bench-") as tmp:
        data = Path(tmp) / "t"
        data.mkdir()
        table = make_table(args.rows)
        quarter = args.rows // 4
        for i in range(4):
            part = table.slice(i * quarter, quarter + (args.rows % 4 if i == 3 else 0))
            if args.format == "ipc":
                with pa.ipc.new_file(data / f"part-{i}.arrow", part.schema) as writer:
                    writer.write_table(part, max_chunksize=1 << 17)
            else:
                pq.write_table(part, data / f"part-{i}.parquet", row_group_size=1 << 20)
        pq.write_table(table, Path(tmp) / "raw.parquet")  # for the bare Flight server
        sql = "SELECT * FROM t"

        con = shoal.connect(partitions=args.partitions)
        spec = f"ipc:{data}" if args.format == "ipc" else str(data)
        if args.format == "ipc":
            con.register_ipc("t", data)
        else:
            con.register_parquet("t", data)

        server = start_shoal_server(
            ["--auth", "none", f"--table=t={spec}", f"--partitions={args.partitions}"]
        )
        raw = subprocess.Popen(
            [sys.executable, "-c", RAW_SERVER, str(Path(tmp) / "raw.parquet")],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert raw.stdout is not None
            raw_uri = raw.stdout.readline().rsplit(" ", 1)[-1].strip().replace("grpc+tcp", "grpc")
            client = flight.FlightClient(raw_uri)
            conn = fsql.connect(server.uri, autocommit=True)

            def engine() -> Iterator[pa.RecordBatch]:
                yield from con.stream(sql)

            def flight_sql() -> Iterator[pa.RecordBatch]:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    yield from cur.fetch_record_batch()

            def flight_raw() -> Iterator[pa.RecordBatch]:
                for chunk in client.do_get(flight.Ticket(b"t")):
                    yield chunk.data

            runs: dict[str, list[tuple[float, float, int, int]]] = {
                "engine": [],
                "flight-sql": [],
                "flight-raw": [],
            }
            makers = {"engine": engine, "flight-sql": flight_sql, "flight-raw": flight_raw}
            for make in makers.values():  # warm-up (file cache, connections)
                timed(make)
            for _ in range(args.runs):
                for name, make in makers.items():
                    runs[name].append(timed(make))
            conn.close()
            client.close()
        finally:
            server.stop()
            stop_process(raw)

    print(
        f"{args.rows:,} rows from {args.format}, {args.runs} runs (medians), "
        f"partitions={args.partitions}"
    )
    print(f"{'path':<12} {'first batch':>12} {'total':>9} {'MiB':>8} {'MiB/s':>9}")
    for name, results in runs.items():
        first = statistics.median(r[0] for r in results)
        total = statistics.median(r[1] for r in results)
        rows, nbytes = results[0][2], results[0][3]
        assert rows == args.rows, (name, rows)
        print(
            f"{name:<12} {first * 1000:>10.1f}ms {total:>8.2f}s {nbytes / MiB:>8.0f} "
            f"{nbytes / MiB / total:>9.0f}"
        )


if __name__ == "__main__":
    main()
