"""Splitting typed input into statements: each ends at a ``;`` outside quotes and comments."""

from __future__ import annotations


class StatementBuffer:
    """Collects input lines; ``feed`` returns the statements they complete.

    Quotes ('...', "...") and comments (-- to end of line, /* ... */) are tracked
    across lines, so a ``;`` inside them ends nothing.
    """

    def __init__(self) -> None:
        self._text = ""

    @property
    def pending(self) -> bool:
        """True while a statement has begun but not ended."""
        return bool(self._text.strip())

    def clear(self) -> None:
        self._text = ""

    def feed(self, line: str) -> list[str]:
        self._text += line + "\n"
        statements, rest = split_statements(self._text)
        self._text = rest if rest.strip() else ""
        return statements


def split_statements(text: str) -> tuple[list[str], str]:
    """The complete statements in ``text`` (without their ``;``) and the unfinished rest."""
    out: list[str] = []
    start = 0
    i = 0
    n = len(text)
    quote: str | None = None
    while i < n:
        c = text[i]
        if quote is not None:
            if c == quote:
                # A doubled quote is an escaped quote inside the literal.
                if i + 1 < n and text[i + 1] == quote:
                    i += 1
                else:
                    quote = None
        elif c in ("'", '"'):
            quote = c
        elif c == "-" and text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif c == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                break  # unfinished comment: the rest is pending
            i = end + 2
            continue
        elif c == ";":
            statement = text[start:i].strip()
            if statement:
                out.append(statement)
            start = i + 1
        i += 1
    return out, text[start:]
