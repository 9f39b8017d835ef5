"""Tables on object storage (a moto S3 server on 127.0.0.1), Arrow IPC sources, COPY TO s3://.

The moto server is a subprocess started by the module's fixture and stopped by its PID.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.fs as pafs
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
from support.servers import S3_ENVIRONMENT, MotoServer, start_moto_server
from support.tpch import TPCH_TABLES, assert_matches_answer, query_text, tpch_connection

import shoal
from shoal.catalog.files import within
from shoal.catalog.sources import ParquetSource
from shoal.errors import AccessDeniedError, CatalogError
from shoal.storage.writer import TargetExistsError

BUCKET = "shoal-test"

#: Queries run from S3 in the fast suite; the rest are marked slow.
FAST_QUERIES = [1, 3, 5, 6, 9, 13, 18, 21]


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    saved = {k: os.environ.get(k) for k in S3_ENVIRONMENT}
    os.environ.update(S3_ENVIRONMENT)
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def s3(moto: MotoServer) -> pafs.S3FileSystem:
    fs = pafs.S3FileSystem(
        endpoint_override=moto.endpoint,
        scheme="http",
        region="us-east-1",
        allow_bucket_creation=True,
    )
    fs.create_dir(BUCKET)
    return fs


@pytest.fixture(scope="module")
def tpch_on_s3(s3: pafs.S3FileSystem, tpch_sf01_dir: Path) -> str:
    """TPC-H SF 0.1 uploaded to the bucket; returns the prefix."""
    prefix = f"{BUCKET}/tpch/sf0.1"
    pafs.copy_files(str(tpch_sf01_dir), prefix, destination_filesystem=s3)
    return prefix


@pytest.fixture(scope="module")
def s3_con(moto: MotoServer, tpch_on_s3: str) -> shoal.Connection:
    con = shoal.connect(partitions=2)
    for table in TPCH_TABLES:
        con.register_parquet(table, moto.uri(f"{tpch_on_s3}/{table}"))
    return con


@pytest.mark.parametrize("q", FAST_QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_from_s3(s3_con: shoal.Connection, q: int) -> None:
    assert_matches_answer(s3_con.sql(query_text(q)).to_arrow(), "0.1", q)


@pytest.mark.slow
@pytest.mark.parametrize(
    "q", [q for q in range(1, 23) if q not in FAST_QUERIES], ids=lambda q: f"q{q:02d}"
)
def test_tpch_from_s3_rest(s3_con: shoal.Connection, q: int) -> None:
    assert_matches_answer(s3_con.sql(query_text(q)).to_arrow(), "0.1", q)


def test_s3_tables_split_and_prune_like_local(
    s3_con: shoal.Connection, tpch_sf01_dir: Path
) -> None:
    """Same splits, footer statistics and row-group pruning as the local files."""
    local = tpch_connection(tpch_sf01_dir, partitions=2)
    remote_src = s3_con.catalog.get("lineitem")
    local_src = local.catalog.get("lineitem")
    assert isinstance(remote_src, ParquetSource) and remote_src.filesystem is not None
    assert [(s.row_groups, s.num_rows) for s in remote_src.splits()] == [
        (s.row_groups, s.num_rows) for s in local_src.splits()
    ]
    assert remote_src.statistics() == local_src.statistics()
    # Footers are read once, at registration, and kept.
    path = remote_src.files[0]
    assert remote_src.footer(path) is remote_src.footer(path)
    sql = "SELECT count(*) AS n FROM orders WHERE o_orderkey < 1000"
    assert s3_con.explain(sql) == local.explain(sql)
    assert s3_con.sql(sql).fetchall() == local.sql(sql).fetchall()


def test_a_pyarrow_filesystem_and_a_missing_prefix(
    s3: pafs.S3FileSystem, tpch_on_s3: str, moto: MotoServer
) -> None:
    con = shoal.connect(partitions=2)
    con.register_parquet("nation", f"{tpch_on_s3}/nation", filesystem=s3)
    assert con.sql("SELECT count(*) FROM nation").fetchall() == [(25,)]
    with pytest.raises(CatalogError, match="no such file or folder: s3://"):
        con.register_parquet("gone", moto.uri(f"{BUCKET}/no/such/prefix"))


def test_csv_and_ipc_on_s3(s3: pafs.S3FileSystem, moto: MotoServer, tpch_sf01_dir: Path) -> None:
    orders = pq.read_table(tpch_sf01_dir / "orders")
    expected = (
        tpch_connection(tpch_sf01_dir, partitions=2)
        .sql(
            "SELECT o_orderstatus, count(*) AS n, sum(o_totalprice) AS t FROM orders GROUP BY 1 ORDER BY 1"
        )
        .fetchall()
    )
    halves = [orders.slice(0, 70_000), orders.slice(70_000)]
    written = 0
    for i, part in enumerate(halves):
        with s3.open_output_stream(f"{BUCKET}/csv/orders/part-{i}.csv") as out:
            pcsv.write_csv(
                part.cast(
                    pa.schema(
                        [
                            f.with_type(pa.string()) if pa.types.is_string_view(f.type) else f
                            for f in part.schema
                        ]
                    )
                ),
                out,
            )
        with s3.open_output_stream(f"{BUCKET}/ipc/orders/part-{i}.arrow") as out:
            with ipc.new_file(out, part.schema) as writer:
                for batch in part.to_batches(max_chunksize=20_000):
                    writer.write_batch(batch)
                    written += 1
    con = shoal.connect(partitions=2)
    con.register_csv("orders_csv", moto.uri(f"{BUCKET}/csv/orders"))
    ipc_source = con.register_ipc("orders", moto.uri(f"{BUCKET}/ipc/orders"))
    assert len(ipc_source.splits()) == written  # one split per record batch
    sql = (
        "SELECT o_orderstatus, count(*) AS n, sum(o_totalprice) AS t FROM {} GROUP BY 1 ORDER BY 1"
    )
    assert con.sql(sql.format("orders")).fetchall() == expected
    csv_rows = con.sql(sql.format("orders_csv")).fetchall()
    assert [(s, n) for s, n, _ in csv_rows] == [(s, n) for s, n, _ in expected]


def test_ipc_files_locally(tmp_path: Path, tpch_sf01_dir: Path) -> None:
    customer = pq.read_table(tpch_sf01_dir / "customer")
    folder = tmp_path / "customer"
    folder.mkdir()
    with ipc.new_file(folder / "c.arrow", customer.schema) as writer:
        for batch in customer.to_batches(max_chunksize=4096):
            writer.write_batch(batch)
    con = shoal.connect(partitions=3)
    source = con.register_ipc("customer", folder)
    assert source.statistics().num_rows == customer.num_rows  # exact, from the batches
    assert len(source.splits()) > 3
    local = tpch_connection(tpch_sf01_dir, partitions=2)
    sql = "SELECT c_mktsegment, count(*), min(c_acctbal) FROM customer WHERE c_nationkey < 10 GROUP BY 1 ORDER BY 1"
    assert con.sql(sql).fetchall() == local.sql(sql).fetchall()
    with pytest.raises(CatalogError, match="cannot read Arrow IPC file"):
        (tmp_path / "bad").mkdir()
        (tmp_path / "bad" / "x.arrow").write_bytes(b"not arrow at all")
        con.register_ipc("bad", tmp_path / "bad")


def test_copy_to_s3_partitioned_and_read_back_prunes_like_locally(
    s3_con: shoal.Connection, moto: MotoServer, tpch_sf01_dir: Path, tmp_path: Path
) -> None:
    target = moto.uri(f"{BUCKET}/exports/orders_by_cust")
    copy = "COPY (SELECT * FROM orders) TO '{}' (PARTITION BY HASH (o_custkey) INTO 8)"
    assert s3_con.sql(copy.format(target)).fetchall() == [(target.split("?")[0], 150_000, 8)]
    with pytest.raises(TargetExistsError):
        s3_con.sql(copy.format(target))
    s3_con.sql(copy.format(target)[:-1] + ", OVERWRITE)")  # replaces it

    local = tpch_connection(tpch_sf01_dir, partitions=2)
    local.sql(copy.format(tmp_path / "orders_by_cust"))

    remote = shoal.connect(partitions=2)
    remote.register_parquet("o", target)
    local.register_parquet("o", tmp_path / "orders_by_cust")
    src = remote.catalog.get("o")
    assert src.layout is not None and src.layout.describe() == "hash[o_custkey]x8"
    sql = "SELECT count(*) AS n, sum(o_totalprice) AS t FROM o WHERE o_custkey = 1234"
    plan = remote.explain(sql)
    assert "shards=1/8" in plan
    assert plan == local.explain(sql)
    assert remote.sql(sql).fetchall() == local.sql(sql).fetchall()
    # A join on the layout key needs no exchange on the laid-out side, as locally.
    remote.register_parquet("customer", moto.uri(f"{BUCKET}/tpch/sf0.1/customer"))
    local_join = "SELECT count(*) FROM o JOIN customer ON o_custkey = c_custkey"
    assert remote.sql(local_join).fetchall() == [(150_000,)]


def test_copy_respects_allowed_prefixes(s3_con: shoal.Connection, moto: MotoServer) -> None:
    con = shoal.connect()
    con.register_parquet("nation", moto.uri(f"{BUCKET}/tpch/sf0.1/nation"))
    con.restrict_writes([f"s3://{BUCKET}/allowed"])
    ok = moto.uri(f"{BUCKET}/allowed/nation")
    con.sql(f"COPY nation TO '{ok}' (PARTITION BY HASH (n_nationkey) INTO 2)")
    for bad in (
        f"{BUCKET}/elsewhere/nation",
        f"{BUCKET}/allowed/../escape",
        "other-bucket/allowed/x",
    ):
        with pytest.raises(AccessDeniedError, match="outside the allowed directories"):
            con.sql(f"COPY nation TO '{moto.uri(bad)}' (PARTITION BY HASH (n_nationkey) INTO 2)")


def test_within() -> None:
    assert within("s3://b/x/y", ("s3://b/x",))
    assert not within("s3://b/xy", ("s3://b/x",))
    assert not within("s3://c/x/y", ("s3://b/x",))
    assert not within("/tmp/a", ("s3://b/x",))
    assert within("/srv/out/a", ("/srv/out",))
    assert not within("/srv/out/../etc", ("/srv/out",))
    assert not within("/srv/outside", ("/srv/out",))
    assert not within("/srv/out", ())
