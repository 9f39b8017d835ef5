"""The answers to Flight SQL's metadata commands, as Arrow tables of the protocol's schemas.

shoal has one catalog (``shoal``) with one schema (``main``) holding every registered
table, all of type ``TABLE``. The binder ignores qualifiers, so ``shoal.main.t`` (what
JDBC tools write) names the table ``t``. Name filters are Flight SQL's patterns:
``%`` any run of characters, ``_`` any one character, matched case-sensitively.
"""

from __future__ import annotations

import enum
import importlib.metadata
import re
from collections.abc import Iterable, Sequence

import pyarrow as pa

from shoal.catalog.catalog import Catalog

CATALOG = "shoal"
SCHEMA = "main"
TABLE_TYPE = "TABLE"


class SqlInfo(enum.IntEnum):
    """The GetSqlInfo ids this server answers (numbers from the Flight SQL protocol)."""

    SERVER_NAME = 0
    SERVER_VERSION = 1
    SERVER_ARROW_VERSION = 2
    SERVER_READ_ONLY = 3
    SERVER_SQL = 4
    SERVER_SUBSTRAIT = 5
    SERVER_TRANSACTION = 8
    SERVER_CANCEL = 9
    SERVER_STATEMENT_TIMEOUT = 100
    SQL_DDL_CATALOG = 500
    SQL_DDL_SCHEMA = 501
    SQL_DDL_TABLE = 502
    SQL_IDENTIFIER_CASE = 503
    SQL_IDENTIFIER_QUOTE_CHAR = 504
    SQL_QUOTED_IDENTIFIER_CASE = 505
    SQL_ALL_TABLES_ARE_SELECTABLE = 506
    SQL_NULL_ORDERING = 507
    SQL_TRANSACTIONS_SUPPORTED = 563


# Union member positions of the GetSqlInfo ``value`` column.
_STRING, _BOOL, _BIGINT, _INT32 = 0, 1, 2, 3

SQL_INFO_SCHEMA = pa.schema(
    [
        pa.field("info_name", pa.uint32(), nullable=False),
        pa.field(
            "value",
            pa.dense_union(
                [
                    pa.field("string_value", pa.string()),
                    pa.field("bool_value", pa.bool_()),
                    pa.field("bigint_value", pa.int64()),
                    pa.field("int32_bitmask", pa.int32()),
                    pa.field("string_list", pa.list_(pa.string())),
                    pa.field(
                        "int32_to_int32_list_map",
                        pa.map_(pa.int32(), pa.list_(pa.int32())),
                    ),
                ]
            ),
            nullable=False,
        ),
    ]
)

CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.string(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [pa.field("catalog_name", pa.string()), pa.field("db_schema_name", pa.string(), False)]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.string()),
        pa.field("db_schema_name", pa.string()),
        pa.field("table_name", pa.string(), nullable=False),
        pa.field("table_type", pa.string(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(
    pa.field("table_schema", pa.binary(), nullable=False)
)
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.string(), nullable=False)])


def sql_info(requested: Sequence[int], read_only: bool, timeout: float | None) -> pa.Table:
    """One row per requested id that this server knows (all of them when none are asked)."""
    values: dict[int, tuple[int, object]] = {
        SqlInfo.SERVER_NAME: (_STRING, "shoal"),
        SqlInfo.SERVER_VERSION: (_STRING, _version()),
        SqlInfo.SERVER_ARROW_VERSION: (_STRING, pa.__version__),
        SqlInfo.SERVER_READ_ONLY: (_BOOL, read_only),
        SqlInfo.SERVER_SQL: (_BOOL, True),
        SqlInfo.SERVER_SUBSTRAIT: (_BOOL, False),
        SqlInfo.SERVER_TRANSACTION: (_INT32, 0),  # SQL_SUPPORTED_TRANSACTION_NONE
        SqlInfo.SERVER_CANCEL: (_BOOL, False),
        SqlInfo.SERVER_STATEMENT_TIMEOUT: (_INT32, int(timeout or 0)),
        SqlInfo.SQL_DDL_CATALOG: (_BOOL, False),
        SqlInfo.SQL_DDL_SCHEMA: (_BOOL, False),
        SqlInfo.SQL_DDL_TABLE: (_BOOL, False),
        SqlInfo.SQL_IDENTIFIER_CASE: (_INT32, 1),  # case-insensitive
        SqlInfo.SQL_IDENTIFIER_QUOTE_CHAR: (_STRING, '"'),
        SqlInfo.SQL_QUOTED_IDENTIFIER_CASE: (_INT32, 1),
        SqlInfo.SQL_ALL_TABLES_ARE_SELECTABLE: (_BOOL, True),
        SqlInfo.SQL_NULL_ORDERING: (_INT32, 3),  # NULLs sorted at the end
        SqlInfo.SQL_TRANSACTIONS_SUPPORTED: (_BOOL, False),
    }
    ids = [i for i in requested if i in values] if requested else sorted(values)
    children: list[list[object]] = [[] for _ in range(6)]
    type_ids: list[int] = []
    offsets: list[int] = []
    for i in ids:
        member, value = values[i]
        type_ids.append(member)
        offsets.append(len(children[member]))
        children[member].append(value)
    union_type = SQL_INFO_SCHEMA.field("value").type
    arrays = [pa.array(c, union_type.field(k).type) for k, c in enumerate(children)]
    value = pa.UnionArray.from_dense(
        pa.array(type_ids, pa.int8()),
        pa.array(offsets, pa.int32()),
        arrays,
        [union_type.field(k).name for k in range(6)],
    )
    return pa.Table.from_arrays([pa.array(ids, pa.uint32()), value], schema=SQL_INFO_SCHEMA)


def _version() -> str:
    try:
        return importlib.metadata.version("shoal")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown"


def catalogs() -> pa.Table:
    return pa.Table.from_pylist([{"catalog_name": CATALOG}], schema=CATALOGS_SCHEMA)


def db_schemas(catalog: str | None, pattern: str | None) -> pa.Table:
    rows = []
    if _catalog_matches(catalog) and _like(pattern, SCHEMA):
        rows.append({"catalog_name": CATALOG, "db_schema_name": SCHEMA})
    return pa.Table.from_pylist(rows, schema=DB_SCHEMAS_SCHEMA)


def tables(
    cat: Catalog,
    catalog: str | None,
    schema_pattern: str | None,
    table_pattern: str | None,
    table_types: Iterable[str],
    include_schema: bool,
) -> pa.Table:
    types = set(table_types)
    rows: list[dict[str, object]] = []
    if _catalog_matches(catalog) and _like(schema_pattern, SCHEMA):
        if not types or TABLE_TYPE in types:
            for name in cat.names():
                if not _like(table_pattern, name):
                    continue
                row: dict[str, object] = {
                    "catalog_name": CATALOG,
                    "db_schema_name": SCHEMA,
                    "table_name": name,
                    "table_type": TABLE_TYPE,
                }
                if include_schema:
                    row["table_schema"] = cat.get(name).schema.serialize().to_pybytes()
                rows.append(row)
    schema = TABLES_WITH_SCHEMA_SCHEMA if include_schema else TABLES_SCHEMA
    return pa.Table.from_pylist(rows, schema=schema)


def table_types() -> pa.Table:
    return pa.Table.from_pylist([{"table_type": TABLE_TYPE}], schema=TABLE_TYPES_SCHEMA)


def _catalog_matches(catalog: str | None) -> bool:
    # None: do not filter on the catalog; "": only tables without one (none here).
    return catalog is None or catalog == CATALOG


def _like(pattern: str | None, name: str) -> bool:
    if pattern is None:
        return True
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, name, flags=re.DOTALL) is not None
