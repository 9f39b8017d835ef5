"""SQL typing rules over Arrow types: which types flow, and what an operator returns.

Decimal rules follow DuckDB (and the SQL standard's spirit): results stay exact,
precision is capped at 38 (decimal128), and AVG / division leave decimals for
doubles. String columns flow as ``pa.string()`` whatever the file held
(``string_view``/``large_string`` are cast once, at the scan).
"""

from __future__ import annotations

import pyarrow as pa

from shoal.errors import TypeMismatchError

MAX_DECIMAL_PRECISION = 38

# The engine's canonical types for kinds that come in several physical flavours.
_CANONICAL = {
    pa.string_view(): pa.string(),
    pa.large_string(): pa.string(),
    pa.binary_view(): pa.binary(),
    pa.large_binary(): pa.binary(),
}


def canonical_type(t: pa.DataType) -> pa.DataType:
    """The type a column of type ``t`` has once it is inside the engine."""
    if pa.types.is_dictionary(t):
        return canonical_type(t.value_type)
    if pa.types.is_decimal256(t) and t.precision <= MAX_DECIMAL_PRECISION:
        return pa.decimal128(t.precision, t.scale)
    return _CANONICAL.get(t, t)


def canonical_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every field's type made canonical and metadata dropped."""
    return pa.schema([pa.field(f.name, canonical_type(f.type), f.nullable) for f in schema])


def is_integer(t: pa.DataType) -> bool:
    return pa.types.is_integer(t)


def is_decimal(t: pa.DataType) -> bool:
    return pa.types.is_decimal(t)


def is_float(t: pa.DataType) -> bool:
    return pa.types.is_floating(t)


def is_numeric(t: pa.DataType) -> bool:
    return is_integer(t) or is_decimal(t) or is_float(t) or pa.types.is_null(t)


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def is_temporal(t: pa.DataType) -> bool:
    return pa.types.is_date(t) or pa.types.is_timestamp(t)


def decimal(precision: int, scale: int) -> pa.DataType:
    """A decimal128 with precision capped at 38 (scale kept, at most the precision)."""
    precision = min(max(precision, 1), MAX_DECIMAL_PRECISION)
    return pa.decimal128(precision, min(scale, precision))


def integer_as_decimal(t: pa.DataType) -> pa.DataType:
    """The decimal an integer type widens to when mixed with decimals."""
    digits = {8: 3, 16: 5, 32: 10, 64: 19}[t.bit_width]
    return pa.decimal128(digits, 0)


def as_decimal(t: pa.DataType) -> pa.DataType:
    if is_decimal(t):
        return t
    if is_integer(t):
        return integer_as_decimal(t)
    raise TypeMismatchError(f"{t} is not an exact numeric type")


def common_type(a: pa.DataType, b: pa.DataType, context: str = "expression") -> pa.DataType:
    """The type two values are compared, unioned or coalesced as."""
    if a == b:
        return a
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if is_numeric(a) and is_numeric(b):
        if is_float(a) or is_float(b):
            return pa.float64()
        if is_integer(a) and is_integer(b):
            return pa.int64() if max(a.bit_width, b.bit_width) > 32 else pa.int32()
        da, db = as_decimal(a), as_decimal(b)
        scale = max(da.scale, db.scale)
        whole = max(da.precision - da.scale, db.precision - db.scale)
        return decimal(whole + scale, scale)
    if is_string(a) and is_string(b):
        return pa.string()
    if is_temporal(a) and is_temporal(b):
        return pa.timestamp("us") if pa.types.is_timestamp(a) or pa.types.is_timestamp(b) else a
    # A string literal compared with a date reads as a date (DuckDB does the same).
    if is_string(a) and is_temporal(b):
        return b
    if is_temporal(a) and is_string(b):
        return a
    if pa.types.is_boolean(a) and pa.types.is_boolean(b):
        return a
    if pa.types.is_list(a) and pa.types.is_list(b):
        return pa.list_(common_type(a.value_type, b.value_type, context))
    raise TypeMismatchError(
        f"cannot combine {sql_type_name(a)} and {sql_type_name(b)} in {context}"
    )


def arithmetic_type(op: str, a: pa.DataType, b: pa.DataType) -> pa.DataType:
    """Result type of ``a op b`` for op in + - * / %."""
    if not (is_numeric(a) and is_numeric(b)):
        raise TypeMismatchError(
            f"operator '{op}' needs numbers, got {sql_type_name(a)} and {sql_type_name(b)}"
        )
    if pa.types.is_null(a):
        a = b
    if pa.types.is_null(b):
        b = a
    if pa.types.is_null(a):
        return pa.int64()
    if op == "/" or is_float(a) or is_float(b):
        return pa.float64()
    if is_integer(a) and is_integer(b):
        return pa.int64()
    da, db = as_decimal(a), as_decimal(b)
    if op == "*":
        # One digit more than DuckDB's p1 + p2: pyarrow's own result type, so no cast.
        return decimal(da.precision + db.precision + 1, da.scale + db.scale)
    scale = max(da.scale, db.scale)
    whole = max(da.precision - da.scale, db.precision - db.scale)
    if op == "%":
        return decimal(whole + scale, scale)
    return decimal(whole + scale + 1, scale)


def sum_type(t: pa.DataType) -> pa.DataType:
    if is_integer(t) or pa.types.is_boolean(t):
        # Exact like DuckDB's HUGEINT sums: a BIGINT sum would wrap silently.
        return pa.decimal128(MAX_DECIMAL_PRECISION, 0)
    if is_decimal(t):
        return pa.decimal128(MAX_DECIMAL_PRECISION, t.scale)
    if is_float(t):
        return pa.float64()
    raise TypeMismatchError(f"SUM needs a number, got {sql_type_name(t)}")


_SQL_NAMES = {
    "int8": "TINYINT",
    "int16": "SMALLINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "uint8": "UTINYINT",
    "uint16": "USMALLINT",
    "uint32": "UINTEGER",
    "uint64": "UBIGINT",
    "float": "FLOAT",
    "double": "DOUBLE",
    "string": "VARCHAR",
    "large_string": "VARCHAR",
    "string_view": "VARCHAR",
    "bool": "BOOLEAN",
    "date32[day]": "DATE",
    "null": "NULL",
}


def sql_type_name(t: pa.DataType) -> str:
    """How a type is spelled in messages and EXPLAIN (SQL names where there is one)."""
    if is_decimal(t):
        return f"DECIMAL({t.precision},{t.scale})"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    return _SQL_NAMES.get(str(t), str(t).upper())


def parse_sql_type(name: str, params: list[int]) -> pa.DataType:
    """The Arrow type for a SQL type name as sqlglot spells it (``DECIMAL``, ``VARCHAR``...)."""
    n = name.upper()
    if n in ("INT", "INTEGER", "INT4"):
        return pa.int32()
    if n in ("BIGINT", "INT8", "LONG"):
        return pa.int64()
    if n in ("SMALLINT", "INT2"):
        return pa.int16()
    if n in ("TINYINT",):
        return pa.int8()
    if n in ("DOUBLE", "FLOAT8", "DOUBLE PRECISION"):
        return pa.float64()
    if n in ("FLOAT", "REAL", "FLOAT4"):
        return pa.float32() if n != "FLOAT" else pa.float64()
    if n in ("DECIMAL", "NUMERIC"):
        precision = params[0] if params else 18
        scale = params[1] if len(params) > 1 else (0 if params else 3)
        if not 1 <= precision <= MAX_DECIMAL_PRECISION or not 0 <= scale <= precision:
            raise TypeMismatchError(f"invalid DECIMAL({precision},{scale})")
        return pa.decimal128(precision, scale)
    if n in ("VARCHAR", "TEXT", "STRING", "CHAR", "NVARCHAR", "NCHAR", "BPCHAR"):
        return pa.string()
    if n in ("BOOLEAN", "BOOL"):
        return pa.bool_()
    if n == "DATE":
        return pa.date32()
    if n in ("TIMESTAMP", "DATETIME", "TIMESTAMPNTZ", "TIMESTAMP_US"):
        return pa.timestamp("us")
    raise TypeMismatchError(f"unknown type {name}")
