"""SQL text to a sqlglot syntax tree, with syntax errors mapped to ``SqlSyntaxError``."""

from __future__ import annotations

import logging

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError, TokenError

from shoal.errors import SqlSyntaxError, UnsupportedError
from shoal.sql.validate import check_tokens

DIALECT = "duckdb"
_COMMANDS = ("EXPLAIN", "COPY")


class _NoCommandFallbackWarning(logging.Filter):
    """sqlglot logs a warning whenever it keeps a statement as a raw command (every
    EXPLAIN); parse_sql handles each such statement, so the warning says nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


logging.getLogger("sqlglot").addFilter(_NoCommandFallbackWarning())


def parse_sql(text: str) -> exp.Expr:
    """Parse exactly one statement (EXPLAIN comes back as an ``exp.Command``)."""
    if not text or not text.strip():
        raise SqlSyntaxError("empty query")
    try:
        dialect = Dialect.get_or_raise(DIALECT)
        tokens = dialect.tokenize(text)
        statements = [s for s in dialect.parser().parse(tokens, text) if s is not None]
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        desc = first.get("description", str(err))
        desc = desc.split(". Line")[0]
        # sqlglot prints tokens as <Token token_type: ..., text: X, ...>; keep the text.
        if "<Token" in desc:
            text_part = desc.split("text: ", 1)[-1].split(",", 1)[0]
            desc = desc.split("<Token", 1)[0] + f"'{text_part}'"
        raise SqlSyntaxError(desc, first.get("line"), first.get("col")) from None
    except TokenError as err:
        raise SqlSyntaxError(str(err)) from None
    check_tokens(tokens)
    if len(statements) != 1:
        raise SqlSyntaxError(f"expected one statement, got {len(statements)}")
    statement = statements[0]
    # sqlglot keeps EXPLAIN as a command holding the rest of the text (sql/explain.py
    # reads its options), and a COPY it cannot parse too (sql/statements.classify names
    # the syntax expected). Any other command is a statement sqlglot does not parse.
    if isinstance(statement, exp.Command) and str(statement.this).upper() not in _COMMANDS:
        raise UnsupportedError(f"statement {statement.name!s}")
    return statement
