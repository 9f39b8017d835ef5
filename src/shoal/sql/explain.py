"""The EXPLAIN prefix: ``EXPLAIN [ANALYZE] [(option [, ...])] statement``.

sqlglot parses EXPLAIN as an opaque command holding the text after the keyword;
once ``sql/statements.classify`` has recognised that command, its options are read
here, by hand (the explained statement is then parsed on its own):
options are ``FORMAT TEXT|JSON|HTML`` and ``ANALYZE [TRUE|FALSE]`` (PostgreSQL's
spelling), e.g. ``EXPLAIN (ANALYZE, FORMAT HTML) SELECT ...``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from sqlglot import exp

from shoal.errors import SqlSyntaxError, UserError


class ExplainFormat(enum.Enum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"


def explain_format(value: ExplainFormat | str) -> ExplainFormat:
    """``value`` as a format: a member, or its name in any case (``"html"``, ``"HTML"``)."""
    if isinstance(value, ExplainFormat):
        return value
    try:
        return ExplainFormat(str(value).lower())
    except ValueError:
        known = ", ".join(f.value for f in ExplainFormat)
        raise UserError(f"unknown explain format {value!r}; known: {known}") from None


@dataclass(frozen=True)
class ExplainRequest:
    analyze: bool
    format: ExplainFormat
    statement: str  # the SQL text being explained


_ANALYZE = re.compile(r"\s*ANALYZE\b", re.IGNORECASE)
_OPTIONS = re.compile(r"\s*\(([^()]*)\)", re.DOTALL)


def parse_explain(command: exp.Command) -> ExplainRequest:
    """The EXPLAIN request of a parsed EXPLAIN command (``parse_sql`` returns it)."""
    rest = command.expression
    text = str(rest.this) if isinstance(rest, exp.Literal) else ""
    pos = 0
    analyze = False
    fmt = ExplainFormat.TEXT
    word = _ANALYZE.match(text, pos)
    if word is not None:
        analyze, pos = True, word.end()
    options = _OPTIONS.match(text, pos)
    # "(SELECT ...)" after EXPLAIN is a parenthesised query, not an option list.
    if options is not None and not re.match(r"\s*(SELECT|WITH|VALUES)\b", options.group(1), re.I):
        for option in options.group(1).split(","):
            parts = option.split()
            if not parts:
                raise SqlSyntaxError("empty EXPLAIN option")
            name, args = parts[0].upper(), [a.upper() for a in parts[1:]]
            if name == "FORMAT" and len(args) == 1:
                try:
                    fmt = ExplainFormat(args[0].lower())
                except ValueError:
                    known = ", ".join(f.name for f in ExplainFormat)
                    raise SqlSyntaxError(
                        f"unknown EXPLAIN format {parts[1]!r}; known: {known}"
                    ) from None
            elif name == "ANALYZE" and len(args) <= 1 and (not args or args[0] in _BOOLS):
                analyze = not args or _BOOLS[args[0]]
            else:
                raise SqlSyntaxError(
                    f"unknown EXPLAIN option {option.strip()!r}; "
                    "known: FORMAT TEXT|JSON|HTML, ANALYZE [TRUE|FALSE]"
                )
        pos = options.end()
    return ExplainRequest(analyze, fmt, text[pos:])


_BOOLS = {"TRUE": True, "ON": True, "1": True, "FALSE": False, "OFF": False, "0": False}
