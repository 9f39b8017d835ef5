"""What pyarrow's CSV reader lets through silently, caught and located.

pyarrow reads a column holding invalid UTF-8 as binary and lets an unterminated
quote swallow the rest of the file into one field. DuckDB rejects both; so does
shoal, naming the file and the line. Locating reads the file again, but only once
a defect is known to exist.
"""

from __future__ import annotations

import codecs

import pyarrow as pa
import pyarrow.compute as pc

from shoal.errors import CatalogError

QUOTE = b'"'
_CHUNK = 1 << 20


def check_delimiter(delimiter: object) -> str:
    """The delimiter, when it is one character other than a quote or a line break."""
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        raise CatalogError(f"a CSV delimiter must be a single character, got {delimiter!r}")
    if delimiter in '"\r\n':
        raise CatalogError(f"a CSV delimiter cannot be {delimiter!r}")
    return delimiter


def check_schema(path: str, schema: pa.Schema) -> None:
    """A column pyarrow inferred as binary means a value that is not UTF-8."""
    if any(pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type) for f in schema):
        raise invalid_utf8_error(path)


def check_table(path: str, table: pa.Table) -> None:
    """A line break inside a value that no balanced quote explains is an unterminated quote."""
    for column in table.columns:
        if not pa.types.is_string(column.type):
            continue
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            line = unterminated_quote_line(path)
            if line is not None:
                raise CatalogError(f"CSV file {path}, line {line}: unterminated quoted value")


def invalid_utf8_error(path: str) -> CatalogError:
    line = invalid_utf8_line(path)
    where = f", line {line}" if line is not None else ""
    return CatalogError(f"CSV file {path}{where}: invalid UTF-8 data")


def invalid_utf8_line(path: str) -> int | None:
    """The 1-based line of the first byte sequence that is not UTF-8 (None: all valid)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                return line + chunk.count(b"\n", 0, err.start)
            line += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return line
    return None


def unterminated_quote_line(path: str) -> int | None:
    """The 1-based line where a quote opens that is never closed (None: all closed).

    An escaped quote is doubled (``""``), so quotes come in pairs in a well-formed
    file: the parity of the quote count says whether a field is open.
    """
    open_since: int | None = None
    line = 1
    with open(path, "rb") as f:
        for raw in f:
            if raw.count(QUOTE) % 2:
                open_since = line if open_since is None else None
            line += 1
    return open_since
