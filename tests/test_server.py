"""The Flight SQL server through the ADBC Flight SQL driver: ``shoal serve`` as a subprocess.

Every server here is a real ``shoal serve`` process on 127.0.0.1 and a free port,
started by its fixture or test and stopped by its PID.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import adbc_driver_flightsql as afs
import adbc_driver_flightsql.dbapi as fsql
import pyarrow as pa
import pyarrow.flight as flight
import pytest
from google.protobuf import any_pb2
from support.servers import ShoalServer, start_shoal_server
from support.tpch import TPCH_TABLES, assert_matches_answer, query_text, tpch_connection

import shoal

TOKEN = "test-token-0123456789"

#: A representative subset for the fast suite: aggregation, joins with top-k, a left
#: join, NOT IN / DISTINCT aggregates, correlated and uncorrelated subqueries.
FAST_QUERIES = [1, 3, 13, 16, 22]


def _table_args(data_dir: Path, tables: tuple[str, ...] = TPCH_TABLES) -> list[str]:
    return [f"--table={t}={data_dir / t}" for t in tables]


def connect(server: ShoalServer, token: str | None = TOKEN, **db: str) -> Any:
    kwargs = dict(db)
    if token is not None:
        kwargs[afs.DatabaseOptions.AUTHORIZATION_HEADER.value] = f"Bearer {token}"
    return fsql.connect(server.uri, db_kwargs=kwargs, autocommit=True)


@pytest.fixture(scope="module")
def server(tpch_sf01_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ShoalServer]:
    exports = tmp_path_factory.mktemp("exports")
    srv = start_shoal_server(
        [*_table_args(tpch_sf01_dir), "--token", TOKEN, f"--allow-dir={exports}"],
        token=TOKEN,
    )
    srv.extra["exports"] = exports
    try:
        yield srv
    finally:
        srv.stop()


def _wait_for(predicate: Any, seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


# --------------------------------------------------------------------------- queries


@pytest.mark.parametrize("q", FAST_QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_through_the_driver(server: ShoalServer, q: int) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(query_text(q))
        assert_matches_answer(cur.fetch_arrow_table(), "0.1", q)


@pytest.mark.slow
@pytest.mark.parametrize("q", range(1, 23), ids=lambda q: f"q{q:02d}")
def test_all_tpch_through_the_driver(server: ShoalServer, q: int) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(query_text(q))
        assert_matches_answer(cur.fetch_arrow_table(), "0.1", q)


def test_results_stream_in_batches(server: ShoalServer) -> None:
    """A large result arrives as several batches, read one by one."""
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute("SELECT l_orderkey, l_quantity FROM lineitem")
        reader = cur.fetch_record_batch()
        rows = batches = 0
        for batch in reader:
            rows += batch.num_rows
            batches += 1
    assert rows == 600_572  # lineitem at SF 0.1
    assert batches > 1


def test_prepared_statement_with_parameters(server: ShoalServer, tpch_sf01_dir: Path) -> None:
    sql = (
        "SELECT o_orderpriority, count(*) AS n FROM orders "
        "WHERE o_orderdate >= ? AND o_orderdate < ? AND o_orderstatus = ? "
        "GROUP BY o_orderpriority ORDER BY o_orderpriority"
    )
    local = tpch_connection(tpch_sf01_dir, partitions=2)
    with connect(server) as conn, conn.cursor() as cur:
        for start, status in [(datetime.date(1994, 1, 1), "F"), (datetime.date(1996, 1, 1), "O")]:
            end = start.replace(year=start.year + 1)
            cur.execute(sql, (start, end, status))
            got = cur.fetch_arrow_table()
            expected = local.sql(sql, [start, end, status]).to_arrow()
            assert got.to_pylist() == expected.to_pylist()
            assert got.num_rows == 5
        # Numbered placeholders, one used twice; the values stay values (no injection).
        cur.execute(
            "SELECT count(*) AS n FROM nation WHERE n_name = $1 OR n_comment = $1",
            ("x' OR '1'='1",),
        )
        assert cur.fetchall() == [(0,)]
        cur.execute("SELECT n_name FROM nation WHERE n_nationkey = ?", (7,))
        assert cur.fetchall() == [("GERMANY",)]


def test_prepare_returns_the_parameter_schema(server: ShoalServer) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        params = cur.adbc_prepare(
            "SELECT n_name FROM nation WHERE n_nationkey = ? AND n_regionkey = ?"
        )
        assert len(params) == 2
        assert cur.adbc_prepare("SELECT n_name FROM nation").names == []


def test_schema_of_a_query_without_running_it(server: ShoalServer) -> None:
    sql = "SELECT n_name, n_nationkey * 2 AS twice, sum(n_regionkey) AS s FROM nation GROUP BY 1, 2"
    with connect(server) as conn, conn.cursor() as cur:
        schema = cur.adbc_execute_schema(sql)
        assert schema.names == ["n_name", "twice", "s"]
        assert schema.field("n_name").type == pa.string()
        assert pa.types.is_integer(schema.field("twice").type)
        before = server.status()["queries_started"]
        cur.adbc_execute_schema("SELECT * FROM lineitem")
        assert server.status()["queries_started"] == before  # planned, not run
        cur.execute(sql)
        assert cur.fetch_arrow_table().schema.names == schema.names


def test_catalog_calls(server: ShoalServer, tpch_sf01_dir: Path) -> None:
    local = tpch_connection(tpch_sf01_dir, partitions=1)
    with connect(server) as conn:
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "shoal"
        assert info["vendor_version"] == shoal.__version__
        assert conn.adbc_get_table_types() == ["TABLE"]
        objects = conn.adbc_get_objects().read_all().to_pylist()
        (catalog,) = objects
        assert catalog["catalog_name"] == "shoal"
        (schema,) = catalog["catalog_db_schemas"]
        assert schema["db_schema_name"] == "main"
        tables = {t["table_name"]: t for t in schema["db_schema_tables"]}
        assert sorted(tables) == sorted(TPCH_TABLES)
        columns = [c["column_name"] for c in tables["nation"]["table_columns"]]
        assert columns == local.catalog.get("nation").schema.names
        filtered = conn.adbc_get_objects(table_name_filter="part%").read_all().to_pylist()
        names = [t["table_name"] for t in filtered[0]["catalog_db_schemas"][0]["db_schema_tables"]]
        assert sorted(names) == ["part", "partsupp"]
        assert conn.adbc_get_table_schema("lineitem") == local.catalog.get("lineitem").schema


# -------------------------------------------------------------------------- security


def test_wrong_or_missing_token_is_refused(server: ShoalServer) -> None:
    for token in ("not-the-token-at-all", None):
        with pytest.raises(Exception, match="(?i)unauthenticated") as info:
            with connect(server, token=token) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
        assert "nation" not in str(info.value)


def test_password_handshake(tpch_sf01_dir: Path) -> None:
    srv = start_shoal_server(
        [
            *_table_args(tpch_sf01_dir, ("nation",)),
            "--auth",
            "password",
            "--user",
            "alice=wonder-land",
        ]
    )
    try:
        with connect(srv, token=None, username="alice", password="wonder-land") as conn:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) AS n FROM nation")
                assert cur.fetchall() == [(25,)]
        with pytest.raises(Exception, match="(?i)unauthenticated|invalid username"):
            with connect(srv, token=None, username="alice", password="wrong") as conn:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1")
    finally:
        srv.stop()


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "server.pem", tmp_path / "server.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls_from_a_config_file(tpch_sf01_dir: Path, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    config = tmp_path / "shoal.toml"
    config.write_text(
        f'tokens = ["{TOKEN}"]\ntls_cert = "server.pem"\ntls_key = "server.key"\n'
        f'timeout = 30\n\n[tables]\nnation = "{tpch_sf01_dir / "nation"}"\n'
    )
    srv = start_shoal_server(["--config", str(config)], token=TOKEN)
    try:
        assert srv.uri.startswith("grpc+tls://")
        root = cert.read_text()
        opts = {afs.DatabaseOptions.TLS_ROOT_CERTS.value: root}
        with connect(srv, **opts) as conn, conn.cursor() as cur:
            cur.execute("SELECT n_name FROM nation WHERE n_nationkey = 0")
            assert cur.fetchall() == [("ALGERIA",)]
        # A client that does not trust the certificate gets nowhere.
        with pytest.raises(Exception, match="(?i)unavailable|certificate|handshake|tls"):
            with connect(srv) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
        # Nor does one speaking plain gRPC to the TLS port.
        plain = ShoalServer(srv.proc, srv.uri.replace("grpc+tls://", "grpc://"), srv.stderr_path)
        with pytest.raises(Exception):  # noqa: B017 - any transport failure
            with connect(plain) as conn, conn.cursor() as cur:
                cur.execute("SELECT 1")
                cur.fetchall()
        assert srv.status(tls_root=cert.read_bytes())["queries_finished"] == 1
    finally:
        srv.stop()


def test_copy_is_confined_to_allowed_dirs(server: ShoalServer, tmp_path: Path) -> None:
    exports: Path = server.extra["exports"]
    with connect(server) as conn, conn.cursor() as cur:
        cur.execute(
            f"COPY (SELECT * FROM nation) TO '{exports / 'nation'}' "
            "(PARTITION BY HASH (n_regionkey) INTO 2)"
        )
        assert cur.fetchall() == [(str(exports / "nation"), 25, 2)]
        assert (exports / "nation" / "_shoal_layout.json").is_file()
        for target in (tmp_path / "elsewhere", exports / ".." / "escaped"):
            with pytest.raises(Exception, match="AccessDeniedError") as info:
                cur.execute(f"COPY nation TO '{target}' (PARTITION BY HASH (n_regionkey) INTO 2)")
            assert "PERMISSION_DENIED" in str(info.value) or "Unauthorized" in str(info.value)
            assert not target.exists()


# ---------------------------------------------------------------------- errors, limits


def test_errors_carry_shoal_type_and_message(server: ShoalServer) -> None:
    with connect(server) as conn, conn.cursor() as cur:
        with pytest.raises(Exception, match="UnknownTableError: unknown table 'nations'") as info:
            cur.execute("SELECT * FROM nations")
        assert "did you mean 'nation'" in str(info.value)
        assert "Traceback" not in str(info.value)  # no server internals leak
        with pytest.raises(Exception, match="SqlSyntaxError"):
            cur.execute("SELEC 1")
        cur.execute("SELECT count(*) FROM region")  # the connection still works
        assert cur.fetchall() == [(5,)]


def test_unsupported_commands_answer_unimplemented(server: ShoalServer) -> None:
    client = flight.FlightClient(server.uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
    try:
        command = any_pb2.Any(
            type_url="type.googleapis.com/arrow.flight.protocol.sql.CommandGetPrimaryKeys",
            value=b"",
        )
        descriptor = flight.FlightDescriptor.for_command(command.SerializeToString())
        with pytest.raises(pa.ArrowNotImplementedError, match="CommandGetPrimaryKeys"):
            client.get_flight_info(descriptor, options)
        with pytest.raises(pa.ArrowNotImplementedError, match="BeginTransaction"):
            list(client.do_action(flight.Action("BeginTransaction", b""), options))
    finally:
        client.close()


def test_row_limit_fails_clearly_and_the_server_keeps_serving(tpch_sf01_dir: Path) -> None:
    srv = start_shoal_server(
        [
            *_table_args(tpch_sf01_dir, ("nation", "lineitem")),
            "--auth",
            "none",
            "--max-result-rows",
            "1000",
        ]
    )
    try:
        with connect(srv, token=None) as conn, conn.cursor() as cur:
            with pytest.raises(Exception, match="ResultLimitError: .*more than 1000 rows"):
                cur.execute("SELECT l_orderkey FROM lineitem")
                cur.fetch_arrow_table()
            cur.execute("SELECT count(*) AS n FROM lineitem")
            assert cur.fetchall() == [(600_572,)]
        status = srv.status()
        assert status["queries_over_limit"] == 1
        assert status["queries_finished"] == 1
        assert _wait_for(lambda: srv.status()["queries_running"] == 0)
    finally:
        srv.stop()


def test_a_client_dropping_its_stream_cancels_the_query(server: ShoalServer) -> None:
    before = server.status()
    conn = connect(server)
    cur = conn.cursor()
    # 15 million rows: still running long after the first batch arrives.
    cur.execute("SELECT l_orderkey, n_name FROM lineitem CROSS JOIN nation")
    reader = cur.fetch_record_batch()
    first = reader.read_next_batch()
    assert first.num_rows > 0
    reader.close()
    cur.close()
    conn.close()

    def cancelled() -> bool:
        now = server.status()
        return (
            now["queries_cancelled_by_client"] == before["queries_cancelled_by_client"] + 1
            and now["queries_running"] == before["queries_running"]
        )

    assert _wait_for(cancelled), server.status()
    assert server.status()["rows_sent"] - before["rows_sent"] < 15_000_000


# ----------------------------------------------------------------------- concurrency

CONCURRENT_QUERIES = [1, 3, 5, 6, 10, 12, 14, 19]


def test_eight_concurrent_clients(server: ShoalServer) -> None:
    """8 clients at once, each its own query, all correct; a failing client and a huge
    one running alongside stall none of them."""
    errors: dict[str, BaseException] = {}
    results: dict[int, pa.Table] = {}
    huge_done = threading.Event()

    def run(q: int) -> None:
        try:
            with connect(server) as conn, conn.cursor() as cur:
                cur.execute(query_text(q))
                results[q] = cur.fetch_arrow_table()
        except BaseException as err:  # reported below
            errors[f"q{q}"] = err

    def failing() -> None:
        with connect(server) as conn, conn.cursor() as cur:
            for _ in range(5):
                try:
                    cur.execute("SELECT no_such_column FROM lineitem")
                except Exception:
                    continue
                errors["failing"] = AssertionError("a bad query succeeded")

    def huge() -> None:
        # Reads a 15 M-row result slowly (~90 messages, 0.5 s each): no one waits on it.
        try:
            with connect(server) as conn, conn.cursor() as cur:
                cur.execute("SELECT l_orderkey, n_name FROM lineitem CROSS JOIN nation")
                reader = cur.fetch_record_batch()
                while not huge_done.is_set():
                    if reader.read_next_batch() is None:
                        break
                    time.sleep(0.5)
                reader.close()
        except StopIteration:
            pass
        except BaseException as err:
            errors["huge"] = err

    slow = threading.Thread(target=huge)
    slow.start()
    threads = [threading.Thread(target=run, args=(q,)) for q in CONCURRENT_QUERIES]
    threads.append(threading.Thread(target=failing))
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    still_huge = slow.is_alive()
    huge_done.set()
    slow.join(60)
    assert not errors, errors
    assert still_huge, "the huge query ended before the others: it did not run alongside"
    for q in CONCURRENT_QUERIES:
        assert_matches_answer(results[q], "0.1", q)


def test_timeout(tpch_sf01_dir: Path) -> None:
    """A query past the server's timeout is stopped, even while its reader dawdles."""
    con = shoal.connect(partitions=2)
    for table in ("lineitem", "nation"):
        con.register_parquet(table, tpch_sf01_dir / table)
    srv = shoal.serve(con, auth="none", timeout=1.5)
    try:
        uri = f"grpc://127.0.0.1:{srv.port}"
        with fsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            started = time.monotonic()
            with pytest.raises(Exception, match="QueryTimeoutError") as info:
                cur.execute("SELECT l_orderkey, n_name FROM lineitem CROSS JOIN nation")
                reader = cur.fetch_record_batch()
                while reader.read_next_batch() is not None:
                    time.sleep(0.25)
            assert "DEADLINE_EXCEEDED" in str(info.value) or "TimedOut" in str(info.value)
            assert time.monotonic() - started < 30
            cur.execute("SELECT count(*) AS n FROM nation")
            assert cur.fetchall() == [(25,)]
        assert srv.status()["queries_timed_out"] == 1
    finally:
        srv.shutdown()


def test_byte_limit(tpch_sf01_dir: Path) -> None:
    con = shoal.connect(partitions=2)
    con.register_parquet("lineitem", tpch_sf01_dir / "lineitem")
    srv = shoal.serve(con, auth="none", max_result_bytes=20_000)
    try:
        uri = f"grpc://127.0.0.1:{srv.port}"
        with fsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            with pytest.raises(Exception, match="ResultLimitError: .*larger than 20000 bytes"):
                cur.execute("SELECT * FROM lineitem LIMIT 1000")
                cur.fetchall()
            cur.execute("SELECT l_orderkey FROM lineitem LIMIT 10")
            assert len(cur.fetchall()) == 10
    finally:
        srv.shutdown()


# --------------------------------------------------------- in-process and config file


def test_serve_in_process(tpch_sf01_dir: Path) -> None:
    con = shoal.connect(partitions=2)
    con.register_parquet("region", tpch_sf01_dir / "region")
    srv = shoal.serve(con, auth="none", max_result_rows=100)
    try:
        assert srv.port > 0 and srv.location.startswith("grpc+tcp://127.0.0.1:")
        uri = f"grpc://127.0.0.1:{srv.port}"
        with fsql.connect(uri, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT r_name FROM region ORDER BY r_regionkey LIMIT 2")
            assert cur.fetchall() == [("AFRICA",), ("AMERICA",)]
        assert srv.status()["queries_finished"] == 1
    finally:
        srv.shutdown()


def test_bad_settings_are_refused_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    from shoal.cli import main

    assert main(["serve", "--port", "0"]) == 1  # refused before anything listens
    assert "needs at least one token" in capsys.readouterr().err
    assert main(["serve", "--auth", "none", "--max-result-rows", "0"]) == 1
    assert "max_result_rows must be a positive integer" in capsys.readouterr().err
    # Refused while checking the settings: nothing is bound to the wildcard address.
    with pytest.raises(shoal.UserError, match="only allowed on a loopback address"):
        shoal.serve(shoal.connect(), auth="none", host="0.0.0.0")
    with pytest.raises(shoal.UserError, match="unknown auth mode"):
        shoal.serve(shoal.connect(), auth="kerberos")


def test_an_internal_failure_is_internal_and_hides_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    con = shoal.connect()
    srv = shoal.serve(con, auth="none")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the planner broke")

    monkeypatch.setattr(con, "prepare", broken)
    try:
        with fsql.connect(f"grpc://127.0.0.1:{srv.port}", autocommit=True) as conn:
            with conn.cursor() as cur, pytest.raises(Exception, match="INTERNAL") as info:
                cur.execute("SELECT 1")
        assert "internal error: RuntimeError: the planner broke" in str(info.value)
        assert "Traceback" not in str(info.value)
    finally:
        srv.shutdown()
