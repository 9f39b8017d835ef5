"""LIKE patterns: DuckDB's rules, written in the syntax pyarrow's ``match_like`` reads.

DuckDB has no default escape character (``'\\'`` is an ordinary character) and
takes one with ``LIKE … ESCAPE 'c'``; pyarrow always treats ``\\`` as an escape.
``arrow_pattern`` rewrites a pattern so that pyarrow matches what DuckDB matches.
"""

from __future__ import annotations

from shoal.errors import SqlSyntaxError

_ARROW_ESCAPE = "\\"


def arrow_pattern(pattern: str, escape: str | None) -> str:
    """``pattern`` (with ``escape``, or none) in pyarrow's LIKE syntax."""
    if escape is not None and len(escape) > 1:
        raise SqlSyntaxError(
            f"invalid ESCAPE {escape!r}: an escape string must be empty or one character"
        )
    escape = escape or None
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if escape is not None and ch == escape:
            if i + 1 == len(pattern):
                raise SqlSyntaxError(
                    f"LIKE pattern {pattern!r} must not end with its escape character"
                )
            out.append(_literal(pattern[i + 1]))
            i += 2
            continue
        out.append(_ARROW_ESCAPE + ch if ch == _ARROW_ESCAPE else ch)
        i += 1
    return "".join(out)


def _literal(ch: str) -> str:
    """``ch`` matched as itself by pyarrow."""
    return _ARROW_ESCAPE + ch if ch in "%_\\" else ch
