"""Binding the scalar functions beyond the core set, with DuckDB's result types.

One handler per sqlglot node (or per name, for functions sqlglot leaves anonymous): it
binds the arguments with the expression binder it is handed, checks their types and
constant options, and returns a typed ``Call`` whose kernel is in
``expr/functions.py``. ``sql/expressions.py`` looks handlers up here before it gives
up on a node; nothing here calls back into it except through that binder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlglot import exp
from sqlglot.optimizer.annotate_types import annotate_types

from shoal.errors import TypeMismatchError, UnsupportedError, UserError
from shoal.expr.nodes import Expr, Literal
from shoal.sql import typing as t
from shoal.sql.source_text import as_written, statement_time
from shoal.types import is_decimal, is_string, sql_type_name

if TYPE_CHECKING:
    from shoal.sql.expressions import ExpressionBinder

Handler = Callable[["ExpressionBinder", exp.Expr], Expr]


def _constant(b: ExpressionBinder, node: exp.Expr | None, kind: type, what: str) -> object:
    if node is None:
        raise UserError(f"{what} is missing")
    value = b.bind(node)
    if not (isinstance(value, Literal) and isinstance(value.value, kind)):
        raise UnsupportedError(f"{what} that is not a constant {kind.__name__}: {as_written(node)}")
    return value.value


def _text(b: ExpressionBinder, node: exp.Expr | None, what: str) -> str:
    return str(_constant(b, node, str, what))


def _int(b: ExpressionBinder, node: exp.Expr | None, what: str) -> int:
    value = _constant(b, node, int, what)
    assert isinstance(value, int)
    return value


def _numeric(b: ExpressionBinder, node: exp.Expr, what: str) -> Expr:
    arg = b.bind(node)
    if pa.types.is_null(arg.type):
        return Literal(None, pa.float64())
    t.require_numeric(arg, what)
    return arg


def _string(b: ExpressionBinder, node: exp.Expr, what: str) -> Expr:
    return t.require_string(b.bind(node), what)


# ------------------------------------------------------------------ numbers


def _rounding(fn: str) -> Handler:
    def run(b: ExpressionBinder, node: exp.Expr) -> Expr:
        arg = _numeric(b, node.this, fn.upper())
        if node.args.get("decimals") is not None:
            raise UnsupportedError(f"{fn.upper()} with a number of digits: {as_written(node)}")
        out = pa.decimal128(arg.type.precision, 0) if is_decimal(arg.type) else pa.float64()
        return t.call(fn, [arg], out)

    return run


def _double(fn: str) -> Handler:
    def run(b: ExpressionBinder, node: exp.Expr) -> Expr:
        return t.call(fn, [_numeric(b, node.this, fn.upper())], pa.float64())

    return run


def _log(b: ExpressionBinder, node: exp.Expr) -> Expr:
    # log(x) is the base-10 logarithm in DuckDB; log(b, x) the base-b one.
    if node.args.get("expression") is None:
        return t.call("log", [_numeric(b, node.this, "LOG")], pa.float64(), (10,))
    base = _constant(b, node.this, int | float, "LOG base")  # type: ignore[arg-type]
    return t.call("log", [_numeric(b, node.expression, "LOG")], pa.float64(), (base,))


def _power(b: ExpressionBinder, node: exp.Expr) -> Expr:
    args = [_numeric(b, node.this, "POWER"), _numeric(b, node.expression, "POWER")]
    return t.call("power", args, pa.float64())


def _sign(b: ExpressionBinder, node: exp.Expr) -> Expr:
    return t.call("sign", [_numeric(b, node.this, "SIGN")], pa.int8())


def _extreme(fn: str) -> Handler:
    def run(b: ExpressionBinder, node: exp.Expr) -> Expr:
        args = [b.bind(node.this), *[b.bind(a) for a in node.expressions]]
        unified, target = t.unify(args, fn.upper())
        return t.call(fn, unified, target)

    return run


# ------------------------------------------------------------------ strings


def _left_right(fn: str) -> Handler:
    def run(b: ExpressionBinder, node: exp.Expr) -> Expr:
        arg = _string(b, node.this, fn.upper())
        n = _int(b, node.expression, f"{fn.upper()} length")
        return t.call(fn, [arg], pa.string(), (n,))

    return run


def _pad(b: ExpressionBinder, node: exp.Expr) -> Expr:
    left = bool(node.args.get("is_left"))
    name = "LPAD" if left else "RPAD"
    arg = _string(b, node.this, name)
    width = _int(b, node.expression, f"{name} width")
    fill = _text(b, node.args.get("fill_pattern"), f"{name} fill")
    if len(fill) != 1:
        raise UnsupportedError(f"{name} with a fill of {len(fill)} characters: {as_written(node)}")
    return t.call("pad", [arg], pa.string(), (max(width, 0), fill, left))


def _repeat(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "REPEAT")
    times = b.bind(node.args["times"])
    if not (pa.types.is_integer(times.type) or pa.types.is_null(times.type)):
        raise TypeMismatchError(f"REPEAT needs a whole number of times, got {times}")
    return t.call("repeat", [arg, times], pa.string())


def _reverse(b: ExpressionBinder, node: exp.Expr) -> Expr:
    return t.call("reverse", [_string(b, node.this, "REVERSE")], pa.string())


def _replace(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "REPLACE")
    pattern = _text(b, node.expression, "REPLACE pattern")
    replacement = _text(b, node.args.get("replacement"), "REPLACE replacement")
    return t.call("replace", [arg], pa.string(), (pattern, replacement))


def _strpos(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "STRPOS")
    needle = _text(b, node.args.get("substr"), "STRPOS substring")
    if node.args.get("position") is not None or node.args.get("occurrence") is not None:
        raise UnsupportedError(f"STRPOS with a start position: {as_written(node)}")
    return t.call("strpos", [arg], pa.int64(), (needle,))


def _match(fn: str) -> Handler:
    def run(b: ExpressionBinder, node: exp.Expr) -> Expr:
        arg = _string(b, node.this, fn.upper())
        pattern = _text(b, node.expression, f"{fn.upper()} pattern")
        if node.args.get("flag") is not None:
            raise UnsupportedError(f"{fn.upper()} options: {as_written(node)}")
        return t.call(fn, [arg], pa.bool_(), (pattern,))

    return run


def _regexp_replace(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "REGEXP_REPLACE")
    pattern = _text(b, node.expression, "REGEXP_REPLACE pattern")
    replacement = _text(b, node.args.get("replacement"), "REGEXP_REPLACE replacement")
    modifiers = node.args.get("modifiers")
    flags = _text(b, modifiers, "REGEXP_REPLACE options") if modifiers is not None else ""
    if set(flags) - {"g"}:
        raise UnsupportedError(f"REGEXP_REPLACE options '{flags}' (only 'g')")
    return t.call("regexp_replace", [arg], pa.string(), (pattern, replacement, "g" in flags))


def _split_part(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "SPLIT_PART")
    separator = _text(b, node.args.get("delimiter"), "SPLIT_PART separator")
    n = _int(b, node.args.get("part_index"), "SPLIT_PART index")
    if n < 1 or not separator:
        raise UnsupportedError(f"SPLIT_PART with index {n} or an empty separator")
    return t.call("split_part", [arg], pa.string(), (separator, n))


# -------------------------------------------------------------------- dates

_DATE_UNITS = ("year", "quarter", "month", "week", "day")


def _unit(node: exp.Expr | None, what: str, allowed: tuple[str, ...]) -> str:
    text = (node.name if node is not None else "").lower().rstrip("s")
    if text not in allowed:
        raise UnsupportedError(f"{what} unit '{text}' (one of {', '.join(allowed)})")
    return text


def _temporal(b: ExpressionBinder, node: exp.Expr, what: str) -> Expr:
    arg = b.bind(node)
    if is_string(arg.type) and isinstance(arg, Literal):
        arg = t.literal_as(arg, pa.date32())
    if not (pa.types.is_date(arg.type) or pa.types.is_timestamp(arg.type)):
        raise TypeMismatchError(f"{what} needs a DATE or TIMESTAMP, got {sql_type_name(arg.type)}")
    return arg


def _date_trunc(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _temporal(b, node.this, "DATE_TRUNC")
    units = (
        _DATE_UNITS if pa.types.is_date(arg.type) else (*_DATE_UNITS, "hour", "minute", "second")
    )
    unit = _unit(node.args.get("unit"), "DATE_TRUNC", units)
    return t.call("date_trunc", [arg], pa.timestamp("us"), (unit,))


def _date_diff(b: ExpressionBinder, node: exp.Expr) -> Expr:
    # sqlglot: DateDiff(this=end, expression=start) for date_diff(unit, start, end).
    end = _temporal(b, node.this, "DATE_DIFF")
    start = _temporal(b, node.expression, "DATE_DIFF")
    if not (pa.types.is_date(start.type) and pa.types.is_date(end.type)):
        raise UnsupportedError("DATE_DIFF of TIMESTAMP values")
    unit = _unit(node.args.get("unit"), "DATE_DIFF", _DATE_UNITS)
    return t.call("date_diff", [start, end], pa.int64(), (unit,))


def _date_part(b: ExpressionBinder, node: exp.Expr) -> Expr:
    args = list(node.expressions)
    if len(args) != 2:
        raise UserError(f"DATE_PART needs a part and a date: {node.sql()}")
    part = _text(b, args[0], "DATE_PART part").lower()
    part = {"dayofweek": "dow", "dayofyear": "doy", "years": "year"}.get(part, part)
    if part not in ("year", "month", "day", "quarter", "dow", "doy", "week"):
        raise UnsupportedError(f"DATE_PART('{part}')")
    return t.call("extract", [_temporal(b, args[1], "DATE_PART")], pa.int64(), (part,))


def _integer(b: ExpressionBinder, node: exp.Expr | None, what: str) -> Expr:
    if node is None:
        raise UserError(f"{what} is missing")
    arg = b.bind(node)
    if pa.types.is_null(arg.type):
        return Literal(None, pa.int64())
    if not pa.types.is_integer(arg.type):
        raise TypeMismatchError(f"{what} needs a whole number, got {sql_type_name(arg.type)}")
    return arg


def _make_date(b: ExpressionBinder, node: exp.Expr) -> Expr:
    parts = [_integer(b, node.args.get(p), f"MAKE_DATE {p}") for p in ("year", "month", "day")]
    return t.call("make_date", parts, pa.date32())


def _strftime(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _temporal(b, node.this, "STRFTIME")
    fmt = _text(b, node.args.get("format"), "STRFTIME format")
    return t.call("strftime", [arg], pa.string(), (fmt,))


def _strptime(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "STRPTIME")
    fmt = _text(b, node.args.get("format"), "STRPTIME format")
    return t.call("strptime", [arg], pa.timestamp("us"), (fmt,))


def _regexp_extract(b: ExpressionBinder, node: exp.Expr) -> Expr:
    arg = _string(b, node.this, "REGEXP_EXTRACT")
    pattern = _text(b, node.expression, "REGEXP_EXTRACT pattern")
    group_node = node.args.get("group")
    group = 0 if group_node is None else _int(b, group_node, "REGEXP_EXTRACT group")
    for option in ("parameters", "position", "occurrence"):
        if node.args.get(option) is not None:
            raise UnsupportedError(f"REGEXP_EXTRACT {option}: {as_written(node)}")
    named, groups = _name_groups(pattern)
    if not 0 <= group <= groups:
        raise UserError(
            f"REGEXP_EXTRACT group {group}: the pattern has {groups} group(s): {pattern!r}"
        )
    return t.call("regexp_extract", [arg], pa.string(), (f"(?P<g0>{named})", group))


def _name_groups(pattern: str) -> tuple[str, int]:
    """``pattern`` with its capturing groups named ``g1``, ``g2``, … (Arrow extracts only
    named groups) and their count. Escapes and character classes are skipped; ``(?…``
    groups other than named ones do not capture."""
    out: list[str] = []
    count = 0
    i, n = 0, len(pattern)
    in_class = False
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            out.append(ch)
            i += 1
            # A ']' first in the class (after an optional '^') is a literal.
            if i < n and pattern[i] == "^":
                out.append("^")
                i += 1
            if i < n and pattern[i] == "]":
                out.append("]")
                i += 1
            continue
        elif ch == "(":
            rest = pattern[i + 1 :]
            named = rest.startswith("?P<") or (rest.startswith("?<") and rest[2:3] not in "=!")
            if named:
                count += 1
                close = pattern.index(">", i)
                out.append(f"(?P<g{count}>")
                i = close + 1
                continue
            if not rest.startswith("?"):
                count += 1
                out.append(f"(?P<g{count}>")
                i += 1
                continue
        out.append(ch)
        i += 1
    return "".join(out), count


def _current_date(b: ExpressionBinder, node: exp.Expr) -> Expr:
    # The session's local date, as DuckDB's default time zone is the machine's.
    return Literal(statement_time().astimezone().date(), pa.date32())


def _current_timestamp(b: ExpressionBinder, node: exp.Expr) -> Expr:
    given = node.expressions if isinstance(node, exp.Anonymous) else [node.args.get("this")]
    if any(a is not None for a in given):
        raise UnsupportedError(f"{as_written(node)} with a precision")
    return Literal(statement_time(), pa.timestamp("us", tz="UTC"))


def _date_add(b: ExpressionBinder, node: exp.Expr) -> Expr:
    """date_add(d, INTERVAL …) / date_add(d, n days): the ``+`` of the two."""
    amount = node.expression
    unit = node.args.get("unit")
    if unit is not None and not isinstance(amount, exp.Interval):
        amount = exp.Interval(this=amount.copy(), unit=unit.copy())
    return b.bind(exp.Add(this=node.this.copy(), expression=amount.copy()))


# ------------------------------------------------------------------ lists


def _list(b: ExpressionBinder, node: exp.Expr | None, what: str) -> Expr:
    if node is None:
        raise UserError(f"{what} needs a list")
    arg = b.bind(node)
    if not pa.types.is_list(arg.type):
        raise TypeMismatchError(f"{what} needs a list, got {sql_type_name(arg.type)}")
    return arg


def _length(b: ExpressionBinder, node: exp.Expr) -> Expr:
    """length / len: of a string its characters, of a list its elements."""
    arg = b.bind(node.this)
    if pa.types.is_list(arg.type):
        return t.call("list_length", [arg], pa.int64())
    return t.call("length", [t.require_string(arg, "LENGTH")], pa.int64())


def _array_size(b: ExpressionBinder, node: exp.Expr) -> Expr:
    return t.call("list_length", [_list(b, node.this, "ARRAY_LENGTH")], pa.int64())


def _index(b: ExpressionBinder, node: exp.Expr) -> Expr:
    """A list index as written (1-based). sqlglot shifts indices of integer type to
    0-based when it parses DuckDB (``l[1]`` arrives as ``l[0]``) and leaves others (a
    column) alone; the shift is undone here."""
    index = b.bind(node)
    if not (pa.types.is_integer(index.type) or pa.types.is_null(index.type)):
        raise TypeMismatchError(f"a list index must be an integer, got {as_written(node)}")
    annotated = annotate_types(node.copy(), dialect="duckdb")
    if annotated.type is not None and annotated.type.this in exp.DataType.INTEGER_TYPES:
        one = Literal(1, pa.int64())
        return t.arithmetic("add", "+", t.coerce(index, pa.int64()), one)
    return index


def _bracket(b: ExpressionBinder, node: exp.Expr) -> Expr:
    """``l[i]``: the i-th element (1-based; negative counts from the end)."""
    keys = node.expressions
    if len(keys) != 1 or isinstance(keys[0], exp.Slice):
        raise UnsupportedError(f"a subscript range (from:to) {as_written(node)}")
    lists = _list(b, node.this, "a subscript")
    return t.call("list_element", [lists, _index(b, keys[0])], lists.type.value_type)


def _list_element(b: ExpressionBinder, node: exp.Expr) -> Expr:
    args = node.expressions
    if len(args) != 2:
        raise UserError(f"LIST_ELEMENT takes a list and an index: {as_written(node)}")
    lists = _list(b, args[0], "LIST_ELEMENT")
    index = b.bind(args[1])
    if not pa.types.is_integer(index.type):
        raise TypeMismatchError(f"a list index must be an integer, got {as_written(args[1])}")
    return t.call("list_element", [lists, index], lists.type.value_type)


def _array_contains(b: ExpressionBinder, node: exp.Expr) -> Expr:
    lists = _list(b, node.this, "LIST_CONTAINS")
    needle = b.bind(node.expression)
    element = lists.type.value_type
    if pa.types.is_null(needle.type):
        needle = Literal(None, element)
    target = t.common_type(element, needle.type, "LIST_CONTAINS")
    if target != element:
        lists = t.coerce(lists, pa.list_(target))
    return t.call("list_contains", [lists, t.coerce(needle, target)], pa.bool_())


def _array_sort(b: ExpressionBinder, node: exp.Expr) -> Expr:
    lists = _list(b, node.this, "LIST_SORT")
    flags = []
    for key, default in (("asc", True), ("nulls_first", False)):
        given = node.args.get(key)
        if given is None:
            flags.append(default)
        elif isinstance(given, exp.Boolean):
            flags.append(bool(given.this))
        else:
            raise UnsupportedError(
                f"LIST_SORT with an order that is not a constant: {as_written(node)}"
            )
    return t.call("list_sort", [lists], lists.type, tuple(flags))


FUNCTION_HANDLERS: dict[type[exp.Expr], Handler] = {
    exp.Floor: _rounding("floor"),
    exp.Ceil: _rounding("ceil"),
    exp.Trunc: _rounding("trunc"),
    exp.Ln: _double("ln"),
    exp.Sqrt: _double("sqrt"),
    exp.Exp: _double("exp"),
    exp.Log: _log,
    exp.Pow: _power,
    exp.Sign: _sign,
    exp.Greatest: _extreme("greatest"),
    exp.Least: _extreme("least"),
    exp.Left: _left_right("left"),
    exp.Right: _left_right("right"),
    exp.Pad: _pad,
    exp.Repeat: _repeat,
    exp.Reverse: _reverse,
    exp.Replace: _replace,
    exp.StrPosition: _strpos,
    exp.StartsWith: _match("starts_with"),
    exp.EndsWith: _match("ends_with"),
    exp.Contains: _match("contains"),
    exp.RegexpLike: _match("regexp_matches"),
    exp.RegexpReplace: _regexp_replace,
    exp.SplitPart: _split_part,
    exp.TimestampTrunc: _date_trunc,
    exp.DateTrunc: _date_trunc,
    exp.DateDiff: _date_diff,
    exp.DateFromParts: _make_date,
    exp.DateAdd: _date_add,
    exp.TimeToStr: _strftime,
    exp.StrToTime: _strptime,
    exp.RegexpExtract: _regexp_extract,
    exp.CurrentDate: _current_date,
    exp.CurrentTimestamp: _current_timestamp,
    exp.Length: _length,
    exp.ArraySize: _array_size,
    exp.Bracket: _bracket,
    exp.ArrayContains: _array_contains,
    exp.ArraySort: _array_sort,
}

#: Functions sqlglot leaves as ``Anonymous``, by lower-cased name.
NAMED_HANDLERS: dict[str, Handler] = {
    "date_part": _date_part,
    "now": _current_timestamp,
    "get_current_timestamp": _current_timestamp,
    "today": _current_date,
    "list_element": _list_element,
    "list_extract": _list_element,
}
