"""Bad input gets a typed error that names the problem, and nothing breaks afterwards.

Every case checks that:

* the error is the documented class, a ``ShoalError`` and (for user errors) a ``UserError``;
* its message names the problem (the column, table, construct, path, stage and task ...);
* the same connection still answers a real query correctly afterwards;
* no ``shoal-`` task thread is left running.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import shoal
from shoal.errors import (
    AmbiguousColumnError,
    CatalogError,
    ExecutionError,
    ShoalError,
    SqlSyntaxError,
    TypeMismatchError,
    UnknownColumnError,
    UnknownTableError,
    UnsupportedError,
    UserError,
)

PARTITIONS = 3
ROW_GROUPS = 6
ROWS_PER_GROUP = 200

# --------------------------------------------------------------------------- data


def _lineitem() -> pa.Table:
    """A small lineitem-like table: column names that invite typos."""
    flags = ["A", "N", "R", "N", "A", "N"] * 10
    return pa.table(
        {
            "l_orderkey": pa.array(range(1, 61), type=pa.int64()),
            "l_returnflag": pa.array(flags),
            "l_linestatus": pa.array(["O", "F"] * 30),
            "l_quantity": pa.array([(i % 7) + 1 for i in range(60)], type=pa.int64()),
            "l_comment": pa.array([f"comment {i}" for i in range(60)]),
        }
    )


def _expected_flag_counts(table: pa.Table) -> dict[str, tuple[int, int]]:
    out: dict[str, tuple[int, int]] = {}
    for flag, qty in zip(
        table["l_returnflag"].to_pylist(), table["l_quantity"].to_pylist(), strict=True
    ):
        n, s = out.get(flag, (0, 0))
        out[flag] = (n + 1, s + qty)
    return out


def _strings_table() -> pa.Table:
    """Digit strings with a non-number ('abc') in every row group."""
    n = ROW_GROUPS * ROWS_PER_GROUP
    rng = np.random.default_rng(11)
    values = [str(int(v)) for v in rng.integers(0, 1000, n)]
    for g in range(ROW_GROUPS):
        values[g * ROWS_PER_GROUP + 17] = "abc"
    return pa.table(
        {
            "id": pa.array(range(n), type=pa.int64()),
            "g": pa.array([f"g{i % 4}" for i in range(n)]),
            "s": pa.array(values),
        }
    )


@pytest.fixture(scope="module")
def strings_parquet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("errors") / "strings.parquet"
    pq.write_table(_strings_table(), path, row_group_size=ROWS_PER_GROUP)
    return path


@pytest.fixture
def con(strings_parquet: Path) -> shoal.Connection:
    c = shoal.connect(partitions=PARTITIONS)
    c.register_arrow("lineitem", _lineitem())
    c.register_arrow("t", pa.table({"k": ["a", "b", "c"] * 10, "x": list(range(30))}))
    c.register_parquet("strs", strings_parquet)
    return c


# ------------------------------------------------------------------ the checks


def _shoal_threads() -> set[str]:
    return {th.name for th in threading.enumerate() if th.name.startswith("shoal-")}


def _assert_no_leaked_threads(before: set[str]) -> None:
    deadline = time.monotonic() + 1.0
    leaked = _shoal_threads() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.02)
        leaked = _shoal_threads() - before
    assert not leaked, f"task threads still running after the query ended: {sorted(leaked)}"


def _assert_connection_works(con: shoal.Connection) -> None:
    """A real query on the same connection, over an in-memory and a multi-task table."""
    before = _shoal_threads()
    rows = con.sql(
        "SELECT l_returnflag, count(*), sum(l_quantity) FROM lineitem GROUP BY l_returnflag"
    ).fetchall()
    assert {flag: (n, s) for flag, n, s in rows} == _expected_flag_counts(_lineitem())
    total = con.sql("SELECT count(*), min(g), max(g) FROM strs").fetchall()
    assert total == [(ROW_GROUPS * ROWS_PER_GROUP, "g0", "g3")]
    _assert_no_leaked_threads(before)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    before = _shoal_threads()
    yield
    _assert_no_leaked_threads(before)


def expect_error(
    con: shoal.Connection,
    sql: str,
    cls: type[ShoalError],
    *fragments: str,
    user: bool = True,
) -> ShoalError:
    """Run ``sql``; check the error's class and message, then that ``con`` still works."""
    before = _shoal_threads()
    with pytest.raises(cls) as info:
        con.sql(sql)
    err = info.value
    assert isinstance(err, ShoalError)
    if user:
        assert isinstance(err, UserError), f"{type(err).__name__} is not a UserError"
    message = str(err)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (
            f"the message does not mention {fragment!r}: {message!r}"
        )
    _assert_no_leaked_threads(before)
    _assert_connection_works(con)
    return err


# -------------------------------------------------------------------- syntax


@pytest.mark.parametrize(
    ("sql", "line", "column"),
    [
        ("SELECT x\nFROM t\nWHERE x = = 1", 3, 11),
        ("SELECT x FROM t\nWHERE (x = 1", 2, None),
        ("SELEC 1", 1, None),
        ("SELECT x FROM t WHERE", 1, None),
    ],
    ids=["double_equals_line3", "unclosed_paren_line2", "misspelled_select", "empty_where"],
)
def test_syntax_error_has_line_and_column(
    con: shoal.Connection, sql: str, line: int, column: int | None
) -> None:
    err = expect_error(con, sql, SqlSyntaxError, "syntax error")
    assert isinstance(err, SqlSyntaxError)
    assert err.line == line
    assert isinstance(err.column, int)
    text_line = sql.split("\n")[line - 1]
    assert 1 <= err.column <= len(text_line) + 1, (err.column, text_line)
    if column is not None:
        assert err.column == column
    assert f"line {err.line}" in str(err)
    assert f"column {err.column}" in str(err)


# -------------------------------------------------------------- names: columns


@pytest.mark.parametrize(
    ("sql", "bad", "suggestion"),
    [
        ("SELECT l_returnflg FROM lineitem", "l_returnflg", "l_returnflag"),
        ("SELECT l_orderkey FROM lineitem WHERE l_quantty > 3", "l_quantty", "l_quantity"),
        (
            "SELECT l_linestatu, count(*) FROM lineitem GROUP BY l_linestatu",
            "l_linestatu",
            "l_linestatus",
        ),
        ("SELECT l_orderkey FROM lineitem ORDER BY l_comments", "l_comments", "l_comment"),
        ("SELECT sum(l_quantit) FROM lineitem", "l_quantit", "l_quantity"),
    ],
    ids=["select", "where", "group_by", "order_by", "aggregate_arg"],
)
def test_unknown_column_names_it_and_suggests(
    con: shoal.Connection, sql: str, bad: str, suggestion: str
) -> None:
    err = expect_error(con, sql, UnknownColumnError, "unknown column", f"'{bad}'", suggestion)
    assert isinstance(err, UnknownColumnError)
    assert err.name == bad


def test_unknown_column_without_close_match_lists_known(con: shoal.Connection) -> None:
    expect_error(con, "SELECT zzz FROM t", UnknownColumnError, "'zzz'", "k", "x")


def test_ambiguous_column(con: shoal.Connection) -> None:
    err = expect_error(
        con,
        "SELECT a FROM (SELECT x AS a, k AS a FROM t) AS s",
        AmbiguousColumnError,
        "'a'",
        "ambiguous",
    )
    assert isinstance(err, AmbiguousColumnError)


# --------------------------------------------------------------- names: tables


def test_unknown_table_names_it_and_suggests(con: shoal.Connection) -> None:
    err = expect_error(
        con, "SELECT count(*) FROM lineitm", UnknownTableError, "unknown table", "lineitm",
        "lineitem",
    )  # fmt: skip
    assert isinstance(err, UnknownTableError)
    assert err.name == "lineitm"


def test_unknown_table_after_unregister(con: shoal.Connection) -> None:
    con.unregister("t")
    expect_error(con, "SELECT * FROM t", UnknownTableError, "'t'")


# -------------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("sql", "fragments"),
    [
        ("SELECT 'a' + 1", ("+", "VARCHAR")),
        ("SELECT 'a' + 1 FROM t", ("+", "VARCHAR")),
        ("SELECT x FROM t WHERE x LIKE 3", ("LIKE",)),
        ("SELECT SUM(l_returnflag) FROM lineitem", ("SUM", "VARCHAR")),
        ("SELECT AVG(l_comment) FROM lineitem", ("AVG", "VARCHAR")),
        ("SELECT x FROM t WHERE k = 1", ("VARCHAR", "INTEGER")),
        ("SELECT x FROM t WHERE x", ("WHERE", "BOOLEAN")),
        ("SELECT CASE WHEN x > 1 THEN 'a' ELSE 1 END FROM t", ("CASE",)),
        ("SELECT k FROM t UNION ALL SELECT x FROM t", ("UNION", "VARCHAR", "BIGINT")),
        ("SELECT upper(x) FROM t", ("UPPER",)),
    ],
    ids=[
        "string_plus_int",
        "string_plus_int_from_table",
        "like_number",
        "sum_string",
        "avg_string",
        "string_eq_int",
        "where_not_boolean",
        "case_branches",
        "union_column_types",
        "upper_number",
    ],
)
def test_type_mismatch(con: shoal.Connection, sql: str, fragments: tuple[str, ...]) -> None:
    expect_error(con, sql, TypeMismatchError, *fragments)


# ------------------------------------------------------------------ catalog


def test_register_parquet_missing_file(con: shoal.Connection, tmp_path: Path) -> None:
    before = _shoal_threads()
    missing = tmp_path / "no_such_file.parquet"
    with pytest.raises(CatalogError) as info:
        con.register_parquet("missing", missing)
    assert isinstance(info.value, UserError)
    assert str(missing) in str(info.value)
    assert "missing" not in [n.lower() for n in con.tables()]
    _assert_no_leaked_threads(before)
    _assert_connection_works(con)


def test_register_csv_missing_file(con: shoal.Connection, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "data.csv"
    with pytest.raises(CatalogError) as info:
        con.register_csv("missing", str(missing))
    assert isinstance(info.value, UserError)
    assert str(missing) in str(info.value)
    assert "missing" not in [n.lower() for n in con.tables()]
    _assert_connection_works(con)


def test_register_parquet_empty_folder(con: shoal.Connection, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CatalogError) as info:
        con.register_parquet("missing", empty)
    assert isinstance(info.value, UserError)
    assert str(empty) in str(info.value)
    _assert_connection_works(con)


def test_register_unsupported_object(con: shoal.Connection) -> None:
    with pytest.raises(CatalogError) as info:
        con.register_arrow("bad", [1, 2, 3])
    assert isinstance(info.value, UserError)
    assert "list" in str(info.value)
    _assert_connection_works(con)


@pytest.mark.parametrize(
    "kwargs",
    [{"partitions": 0}, {"partitions": -2}, {"no_such_setting": 1}],
    ids=["zero_partitions", "negative_partitions", "unknown_setting"],
)
def test_bad_connection_settings(kwargs: dict[str, int]) -> None:
    with pytest.raises(UserError) as info:
        shoal.connect(**kwargs)
    assert isinstance(info.value, ShoalError)
    name, value = next(iter(kwargs.items()))
    assert name in str(info.value) or str(value) in str(info.value)


# -------------------------------------------------------------- unsupported


@pytest.mark.parametrize(
    ("sql", "construct"),
    [
        ("SELECT x, sum(x IGNORE NULLS) OVER () FROM t", "IGNORE NULLS"),
        ("SELECT k, count(*) FROM t GROUP BY GROUPING SETS (ROLLUP (k))", "ROLLUP"),
        ("SELECT kurtosis(x) FROM t", "kurtosis"),
        ("SELECT * FROM t, LATERAL (SELECT x + 1 AS y)", "LATERAL"),
        ("INSERT INTO t VALUES ('z', 1)", "INSERT"),
        ("CREATE TABLE u (a INTEGER)", "CREATE"),
    ],
    ids=[
        "window_ignore_nulls",
        "rollup",
        "unknown_aggregate",
        "lateral",
        "insert",
        "create_table",
    ],
)
def test_unsupported_construct_is_named(con: shoal.Connection, sql: str, construct: str) -> None:
    err = expect_error(con, sql, UnsupportedError, "unsupported", construct)
    assert isinstance(err, UnsupportedError)
    assert construct.lower() in err.construct.lower()


_ONLY_EXCLUDING = "(not arg_min / arg_max nor an ORDER BY inside first / last)"


@pytest.mark.parametrize(
    ("sql", "cls", "message"),
    [
        (
            "SELECT k, count(DISTINCT k, x) OVER (PARTITION BY k) FROM t",
            UnsupportedError,
            "unsupported: DISTINCT with several arguments: count(DISTINCT k, x) "
            "(line 1, column 11)",
        ),
        (
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) OVER () FROM t",
            UnsupportedError,
            "unsupported: percentile_cont(0.5) WITHIN GROUP (ORDER BY x) (line 1, column 8) "
            "as a window function: an ordered-set aggregate has no window form "
            "(quantile_cont(x, q) OVER (...) is one)",
        ),
        (
            "SELECT arg_max(k, x) OVER (ORDER BY x ROWS 1 PRECEDING EXCLUDE CURRENT ROW) FROM t",
            UnsupportedError,
            "unsupported: EXCLUDE CURRENT ROW in the frame of window function arg_max(k, x) "
            f"(line 1, column 8) {_ONLY_EXCLUDING}",
        ),
        (
            "SELECT k,\n  first(k\n     ORDER BY x DESC) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING "
            "AND 1 FOLLOWING EXCLUDE TIES) FROM t",
            UnsupportedError,
            "unsupported: EXCLUDE TIES in the frame of window function first(k ORDER BY x DESC) "
            f"(line 2, column 3) {_ONLY_EXCLUDING}",
        ),
        (
            "SELECT x, sum(x IGNORE NULLS) OVER () FROM t",
            UnsupportedError,
            "unsupported: IGNORE NULLS in window function sum(x IGNORE NULLS) (line 1, column 11)",
        ),
        (
            "SELECT lag(x) FILTER (WHERE x > 1) OVER (ORDER BY x) FROM t",
            UserError,
            "FILTER (WHERE ...) applies to aggregates, not to window function lag(x) "
            "(line 1, column 8)",
        ),
        (
            "SELECT min_by(k, x, 0) OVER () FROM t",
            UserError,
            "the count of min_by(k, x, 0) (line 1, column 8) must be at least 1",
        ),
        (
            "SELECT min_by(k, x, x) OVER () FROM t",
            UnsupportedError,
            "unsupported: a count that is not a whole constant: min_by(k, x, x) (line 1, column 8)",
        ),
        (
            "SELECT k, max_by(k, x, 2 ORDER BY x) FROM t GROUP BY k",
            UnsupportedError,
            "unsupported: ORDER BY inside max_by(k, x, 2 ORDER BY x) (line 1, column 11)",
        ),
        (
            "SELECT sum(x) OVER (w ORDER BY k) FROM t WINDOW w AS (ORDER BY x)",
            UserError,
            "a window based on 'w' cannot override its ORDER BY",
        ),
        (
            "SELECT sum(x) OVER (w ORDER BY k) FROM t WINDOW w AS (PARTITION BY k ROWS 2 PRECEDING)",
            UserError,
            "window 'w' has a frame: a window based on it can add nothing",
        ),
        (
            "SELECT sum(x) OVER v FROM t WINDOW v AS (w ORDER BY k), w AS (PARTITION BY k)",
            UserError,
            "window 'w' is not defined (WINDOW w AS ...)",
        ),
        (
            "SELECT sum(x) OVER (ORDER BY x ROWS BETWEEN 1 FOLLOWING AND 1 PRECEDING) FROM t",
            UserError,
            "window frame ROWS BETWEEN 1 FOLLOWING AND 1 PRECEDING: a frame starting after "
            "the current row cannot end before it",
        ),
        (
            "SELECT sum(x) OVER (ORDER BY x GROUPS BETWEEN CURRENT ROW AND 2 PRECEDING) FROM t",
            UserError,
            "window frame GROUPS BETWEEN CURRENT ROW AND 2 PRECEDING: a frame starting at the "
            "current row cannot end before it",
        ),
        (
            "SELECT sum(x) OVER (ORDER BY x GROUPS 1.5 PRECEDING) FROM t",
            UserError,
            "window frame offset 1.5 must be a non-negative constant whole number",
        ),
        (
            "SELECT lag(x ORDER BY k) OVER (ORDER BY x) FROM t",
            UnsupportedError,
            "unsupported: ORDER BY inside window function lag(x ORDER BY k) (line 1, column 8)",
        ),
        (
            "SELECT lead(x, k) OVER (ORDER BY x) FROM t",
            UnsupportedError,
            "unsupported: an offset that is not a whole constant: lead(x, k) (line 1, column 8)",
        ),
    ],
    ids=[
        "count_distinct_two_arguments",
        "within_group_over",
        "exclude_arg_max",
        "exclude_multiline_call",
        "ignore_nulls_aggregate",
        "filter_on_lag",
        "count_zero",
        "count_not_constant",
        "counted_with_order_by",
        "named_window_order_override",
        "named_window_with_frame_extended",
        "named_window_defined_later",
        "frame_following_to_preceding",
        "frame_current_to_preceding",
        "groups_fractional_offset",
        "lag_order_by",
        "lead_column_offset",
    ],
)
def test_window_construct_errors_quote_the_text(
    con: shoal.Connection, sql: str, cls: type[ShoalError], message: str
) -> None:
    """Window constructs shoal rejects name what the user wrote and where, never a
    rewritten syntax node (sqlglot shows count(DISTINCT a, b) as a CASE)."""
    err = expect_error(con, sql, cls)
    assert str(err) == message


def test_tablesample_is_rejected_not_ignored(con: shoal.Connection) -> None:
    """A sample the engine cannot take must not silently return every row."""
    expect_error(
        con, "SELECT x FROM t TABLESAMPLE BERNOULLI (10 PERCENT)", UnsupportedError, "sample"
    )


def test_unknown_function_is_named(con: shoal.Connection) -> None:
    """The message names the function the user wrote, not sqlglot's node class."""
    expect_error(con, "SELECT no_such_fn(x) FROM t", UserError, "no_such_fn")


# ------------------------------------------------------------ grouping rules


@pytest.mark.parametrize(
    ("sql", "column"),
    [
        ("SELECT l_returnflag, l_quantity FROM lineitem GROUP BY l_returnflag", "l_quantity"),
        ("SELECT l_returnflag, count(*) FROM lineitem", "l_returnflag"),
        (
            "SELECT l_returnflag FROM lineitem GROUP BY l_returnflag HAVING l_quantity > 1",
            "l_quantity",
        ),
        (
            "SELECT l_returnflag, count(*) FROM lineitem GROUP BY l_returnflag ORDER BY l_orderkey",
            "l_orderkey",
        ),
    ],
    ids=["select_list", "aggregate_without_group_by", "having", "order_by"],
)
def test_non_aggregated_column(con: shoal.Connection, sql: str, column: str) -> None:
    expect_error(con, sql, UserError, f"'{column}'", "GROUP BY")


@pytest.mark.parametrize(
    ("sql", "fragments"),
    [
        ("SELECT SUM(SUM(x)) FROM t", ("nested",)),
        ("SELECT x FROM t WHERE SUM(x) > 1", ("WHERE",)),
    ],
    ids=["nested_aggregate", "aggregate_in_where"],
)
def test_misplaced_aggregate(con: shoal.Connection, sql: str, fragments: tuple[str, ...]) -> None:
    expect_error(con, sql, UserError, *fragments)


# ------------------------------------------------------- arity and positions


@pytest.mark.parametrize(
    ("sql", "fragments"),
    [
        ("SELECT k, x FROM t UNION ALL SELECT k FROM t", ("UNION", "2", "1")),
        ("SELECT k FROM t UNION SELECT k, x FROM t", ("UNION", "1", "2")),
        ("SELECT * FROM (VALUES (1, 2), (3)) AS v(a, b)", ("VALUES",)),
        ("SELECT k, count(*) FROM t GROUP BY 3", ("GROUP BY", "3")),
        ("SELECT k, x FROM t ORDER BY 5", ("ORDER BY", "5")),
        ("SELECT abs(x, 1) FROM t", ("argument",)),
    ],
    ids=[
        "union_all_column_count",
        "union_column_count",
        "values_row_width",
        "group_by_position",
        "order_by_position",
        "abs_two_arguments",
    ],
)
def test_wrong_arity_or_position(
    con: shoal.Connection, sql: str, fragments: tuple[str, ...]
) -> None:
    expect_error(con, sql, UserError, *fragments)


@pytest.mark.parametrize(
    ("sql", "function"),
    [
        ("SELECT count(x, k) FROM t", "count"),
        ("SELECT substring(k) FROM t", "substring"),
    ],
    ids=["count_two_arguments", "substring_one_argument"],
)
def test_function_arity_is_checked(con: shoal.Connection, sql: str, function: str) -> None:
    """A call with the wrong number of arguments is a user error, not a silent guess."""
    expect_error(con, sql, UserError, function)


# ------------------------------------------------------------------ execution


def _stage_with(con: shoal.Connection, sql: str, needle: str) -> int:
    graph = con.prepare(sql).graph
    found = [
        s.id
        for s in graph.stages
        if any(needle in node.explain_line() for node in s.fragment.walk())
    ]
    assert len(found) == 1, f"expected one stage with {needle!r}, got {found}"
    stage = graph.stage(found[0])
    assert stage.num_partitions == PARTITIONS, "the failing stage should run several tasks"
    return found[0]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT id, CAST(s AS INTEGER) FROM strs",
        "SELECT CAST(s AS INTEGER) AS v, count(*) FROM strs GROUP BY v",
        "SELECT g, CAST(max(s) AS INTEGER) FROM strs GROUP BY g",
    ],
    ids=["single_stage", "producer_stage_of_hash_exchange", "consumer_stage"],
)
def test_execution_error_names_stage_and_task(con: shoal.Connection, sql: str) -> None:
    stage = _stage_with(con, sql, "CAST(")
    err = expect_error(con, sql, ExecutionError, "abc", user=False)
    assert isinstance(err, ExecutionError)
    assert not isinstance(err, UserError)
    assert err.stage == stage
    assert err.partition is not None and 0 <= err.partition < PARTITIONS
    assert f"stage {err.stage}" in str(err)
    assert f"task {err.partition}" in str(err)
    assert err.__cause__ is not None, "the root cause should be chained"


def test_execution_error_then_same_query_fixed(con: shoal.Connection) -> None:
    """After a failed query, a corrected one over the same table runs on all tasks."""
    expect_error(con, "SELECT CAST(s AS INTEGER) FROM strs", ExecutionError, user=False)
    rows = con.sql("SELECT count(*), sum(CAST(s AS INTEGER)) FROM strs WHERE s <> 'abc'").fetchall()
    table = _strings_table()
    good = [int(v) for v in table["s"].to_pylist() if v != "abc"]
    assert rows == [(len(good), sum(good))]


def test_many_errors_in_a_row_leave_no_threads(con: shoal.Connection) -> None:
    before = _shoal_threads()
    for _ in range(5):
        with pytest.raises(ExecutionError):
            con.sql("SELECT CAST(s AS INTEGER) AS v, count(*) FROM strs GROUP BY v")
        with pytest.raises(UnknownColumnError):
            con.sql("SELECT nope FROM strs")
    _assert_no_leaked_threads(before)
    _assert_connection_works(con)
