"""Parse client SQL as Postgres does: statements by token position, names folded the
Postgres way, output column names as Postgres figures them, positions for errors.

    >>> [text[s:e] for s, e in split_statements(text := "SET x = 1; SELECT ';'")]
    ['SET x = 1', "SELECT ';'"]
"""

from __future__ import annotations

import difflib
from functools import lru_cache

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
