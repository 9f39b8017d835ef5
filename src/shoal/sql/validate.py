"""Syntax that sqlglot accepts but DuckDB rejects, found in the token stream.

sqlglot is lenient: it drops an empty list item (``a , , b``), parses
``a < b < c`` as a chain, reads ``DATE 0`` as a cast and ``x IN 300`` as a
membership test. shoal follows DuckDB and rejects each with a ``SqlSyntaxError``
at the offending token.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot.tokens import Token, TokenType

from shoal.errors import SqlSyntaxError

_COMPARISONS = {
    TokenType.EQ,
    TokenType.NEQ,
    TokenType.LT,
    TokenType.LTE,
    TokenType.GT,
    TokenType.GTE,
}
# Tokens that may sit inside one comparison operand; anything else (AND, THEN,
# BETWEEN, IS, a type name…) ends the operand, so only true chains are flagged.
_OPERAND = {
    TokenType.VAR,
    TokenType.IDENTIFIER,
    TokenType.NUMBER,
    TokenType.STRING,
    TokenType.DOT,
    TokenType.PLUS,
    TokenType.DASH,
    TokenType.STAR,
    TokenType.SLASH,
    TokenType.MOD,
    TokenType.DPIPE,
}
_TYPED_LITERAL = {TokenType.DATE, TokenType.TIMESTAMP, TokenType.TIMESTAMPNTZ, TokenType.TIME}
_LIST_START = {TokenType.COMMA, TokenType.L_PAREN, TokenType.SELECT}
_SELECT_END = {TokenType.FROM, TokenType.WHERE, TokenType.R_PAREN, TokenType.SEMICOLON}


def check_tokens(tokens: Sequence[Token]) -> None:
    """Raise ``SqlSyntaxError`` at the first construct DuckDB would not parse."""
    depth_of_last_comparison: dict[int, int] = {}  # paren depth -> token index
    depth = 0
    # For each open parenthesis, the word before it: POSITION(x IN s) takes a bare IN.
    opened_by: list[str] = []
    for i, tok in enumerate(tokens):
        kind = tok.token_type
        prev = tokens[i - 1].token_type if i else None
        nxt = tokens[i + 1].token_type if i + 1 < len(tokens) else None
        if kind == TokenType.COMMA and (prev in _LIST_START or _is_by(tokens, i - 1)):
            _fail(tok, "empty item in a list")
        if kind == TokenType.SELECT:
            after = _skip_quantifier(tokens, i + 1)
            if after is None or tokens[after].token_type in _SELECT_END:
                _fail(tok, "SELECT clause without selection list")
        if kind in _TYPED_LITERAL and nxt == TokenType.NUMBER:
            _fail(tokens[i + 1], f"{tok.text.upper()} must be followed by a quoted string")
        in_position = bool(opened_by) and opened_by[-1] == "POSITION"
        if kind == TokenType.IN and nxt not in (TokenType.L_PAREN, None) and not in_position:
            _fail(tokens[i + 1], "IN needs a parenthesized list or subquery")
        if kind == TokenType.STAR and prev in (TokenType.PLUS, TokenType.DASH):
            _fail(tok, "'*' is only allowed as a whole select item or inside count(*)")
        if kind == TokenType.L_PAREN:
            depth += 1
            opened_by.append(tokens[i - 1].text.upper() if i else "")
        elif kind == TokenType.R_PAREN:
            depth_of_last_comparison.pop(depth, None)
            depth -= 1
            if opened_by:
                opened_by.pop()
        elif kind in _COMPARISONS:
            last = depth_of_last_comparison.get(depth)
            if last is not None and _one_operand(tokens, last + 1, i):
                _fail(tok, "chained comparisons are not supported; combine them with AND")
            depth_of_last_comparison[depth] = i


def _one_operand(tokens: Sequence[Token], start: int, stop: int) -> bool:
    """Whether tokens[start:stop] are a single operand (parenthesized groups count whole)."""
    depth = 0
    for tok in tokens[start:stop]:
        kind = tok.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
        elif kind == TokenType.R_PAREN:
            depth -= 1
        elif depth == 0 and kind not in _OPERAND:
            return False
    return start < stop


def _is_by(tokens: Sequence[Token], i: int) -> bool:
    """``GROUP BY`` / ``ORDER BY`` / ``PARTITION BY`` right before a comma."""
    if i < 0:
        return False
    tok = tokens[i]
    return tok.token_type in (TokenType.GROUP_BY, TokenType.ORDER_BY) or tok.text.upper() == "BY"


def _skip_quantifier(tokens: Sequence[Token], i: int) -> int | None:
    while i < len(tokens) and tokens[i].token_type in (TokenType.DISTINCT, TokenType.ALL):
        i += 1
    return i if i < len(tokens) else None


def _fail(tok: Token, message: str) -> None:
    # sqlglot's column is where the token ends; report where it starts.
    column = max(1, tok.col - len(tok.text) + 1)
    raise SqlSyntaxError(f"{message}, at '{tok.text}'", tok.line, column)
