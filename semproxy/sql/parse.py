"""Parse client SQL as Postgres does: statements by token position, names folded the
Postgres way, output column names as Postgres figures them, positions for errors.

    >>> text = "SET x = 1; SELECT ';'"
    >>> [text[s:e] for s, e in split_statements(text)]
    ['SET x = 1', "SELECT ';'"]
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from typing import NamedTuple

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

POSTGRES = Dialect.get_or_raise("postgres")
OPENERS = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE}
CLOSERS = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE}


def split_statements(text: str) -> list[tuple[int, int]]:
    """(start, end) of each non-empty statement in `text`, split at top-level `;`.

    The slices keep the client's text exactly (comments included); a text the tokenizer
    cannot read is one statement, for the catalog server to judge."""
    try:
        tokens = POSTGRES.tokenize(text)
    except SqlglotError:
        return [(0, len(text))] if text.strip() else []
    spans: list[tuple[int, int]] = []
    depth, start, seen = 0, 0, False
    for tok in tokens:
        if tok.token_type in OPENERS:
            depth += 1
        elif tok.token_type in CLOSERS:
            depth = max(0, depth - 1)
        elif tok.token_type is TokenType.SEMICOLON and depth == 0:
            if seen:
                spans.append(_trim(text, start, tok.start))
            start, seen = tok.end + 1, False
            continue
        seen = True
    if seen:
        spans.append(_trim(text, start, len(text)))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


# What the plan cache masks: string and number literals. Quoted identifiers and comments are
# matched only to be skipped; anything whose lexing could depend on a literal's content
# (escape strings E'..', U&'..', backslashes, dollar quotes, block comments, NUL) is
# not masked at all, so such a text is cached by its exact text only.
_LEXEMES = re.compile(
    r"""(?=["\-/\\\x00$'\d])  # a cheap first-character test before the alternatives
      (?:(?P<ident>"(?:[^"]|"")*")
      | (?P<comment>--[^\n]*)
      | (?P<bail>/\*|\\|\x00|\$(?!\d)|(?<=[\w&])')
      | (?P<string>'(?:[^'\\]|'')*')
      | (?P<number>(?<![\w$.])\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.$])))""",
    re.X,
)


class MaskedLiteral(NamedTuple):  # a tuple: thousands are made per second on cache hits
    start: int  # offset of its first character (the opening quote of a string)
    is_string: bool
    value: str  # a string's content ('' unescaped), or a number as written


class Masked(NamedTuple):
    """A statement with its string and number literals masked: `key` is equal for texts
    that differ only in those literals' values."""

    key: str
    literals: tuple[MaskedLiteral, ...]


def mask_literals(text: str) -> Masked | None:
    """The statement's shape and its literals, or None when it cannot be masked safely.

    >>> shape = mask_literals("SELECT a FROM t WHERE s = 'x' LIMIT 5")
    >>> shape.key == mask_literals("SELECT a FROM t WHERE s = 'it''s' LIMIT 10").key
    True
    >>> [lit.value for lit in shape.literals]
    ['x', '5']
    """
    pieces: list[str] = []
    literals: list[MaskedLiteral] = []
    last = 0
    for found in _LEXEMES.finditer(text):
        kind = found.lastgroup
        if kind == "bail":
            return None
        if kind in ("ident", "comment"):
            continue
        start, end = found.span()
        is_string = kind == "string"
        raw = found.group()
        value = raw[1:-1].replace("''", "'") if is_string else raw
        pieces += [text[last:start], "\x00S" if is_string else "\x00N"]
        literals.append(MaskedLiteral(start, is_string, value))
        last = end
    pieces.append(text[last:])
    return Masked("".join(pieces), tuple(literals))


def parse_statement(text: str) -> exp.Expr | None:
    """One statement as a Postgres tree, or None when sqlglot cannot read it."""
    try:
        tree = sqlglot.parse_one(text, read=POSTGRES)
    except SqlglotError:
        return None
    return tree


@lru_cache(maxsize=4096)
def parse_expr(text: str) -> exp.Expr:
    """A model's SQL expression (dimension, entity, measure, filter). Cached: copy before changing."""
    return sqlglot.parse_one(text, read=POSTGRES)


def ident_name(ident: exp.Expr | str | None) -> str:
    """A name as Postgres sees it: unquoted identifiers fold to lower case."""
    if ident is None:
        return ""
    if isinstance(ident, str):
        return ident.lower()
    if isinstance(ident, exp.Identifier):
        return ident.this if ident.quoted else ident.this.lower()
    if isinstance(ident, exp.TableAlias):
        return ident_name(ident.this)
    return ident.name.lower()


def table_parts(table: exp.Table) -> tuple[str | None, str]:
    """(schema or None, name) of a relation, folded."""
    db = table.args.get("db")
    return (ident_name(db) if db is not None else None, ident_name(table.this))


def position(node: exp.Expr | None) -> int | None:
    """1-based offset into the statement where `node` starts (its earliest token we know)."""
    if node is None:
        return None
    starts = [n.meta["start"] for n in node.walk() if n.meta and "start" in n.meta]
    return min(starts) + 1 if starts else None


def did_you_mean(name: str, names: tuple[str, ...] | list[str]) -> str | None:
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.6)
    return " or ".join(f'"{c}"' for c in close) if close else None


def output_name(item: exp.Expr) -> str:
    """The column name Postgres gives a select item (`?column?` when it has none).

    `MEASURE(revenue)` is named `revenue`, as a metric view names it."""
    if isinstance(item, exp.Alias):
        return ident_name(item.args["alias"])
    if isinstance(item, exp.Column):
        return ident_name(item.this)
    if isinstance(item, exp.Cast):
        inner = output_name(item.this)
        return inner if inner != "?column?" else item.to.sql(POSTGRES).lower()
    if isinstance(item, exp.Filter):
        return output_name(item.this)
    if isinstance(item, exp.Anonymous) and item.name.upper() == "MEASURE" and len(item.expressions) == 1:
        return output_name(item.expressions[0])
    if isinstance(item, exp.Case):
        return "case"
    if isinstance(item, exp.Func):
        text = item.sql(POSTGRES)
        head = text.split("(", 1)[0]
        return head.lower() if head.replace("_", "").isalnum() else "?column?"
    return "?column?"
