"""Rewrites of catalog SQL that older clients send to a newer catalog server, one function
each, named after the client. The text is changed only at the tokens concerned, so
everything else reaches PostgreSQL byte for byte as the client wrote it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot.tokens import Tokenizer, TokenType


def psql_before_17_icu_locale(sql: str) -> str:
    """psql 15 and 16 list databases (`\\l`) with `pg_database.daticulocale`, which
    PostgreSQL 17 renamed to `datlocale`; our catalog server is newer than Debian's psql."""
    if "daticulocale" not in sql:
        return sql
    return _rename_identifiers(sql, {"daticulocale": "datlocale"})


QUIRKS: tuple[Callable[[str], str], ...] = (psql_before_17_icu_locale,)


def apply(sql: str) -> str:
    for quirk in QUIRKS:
        sql = quirk(sql)
    return sql


def _rename_identifiers(sql: str, names: dict[str, str]) -> str:
    try:
        tokens = Tokenizer().tokenize(sql)
    except Exception:  # noqa: BLE001 - unparseable text goes to Postgres untouched
        return sql
    out, pos = [], 0
    for token in tokens:
        if token.token_type is TokenType.VAR and token.text in names:
            out += [sql[pos : token.start], names[token.text]]
            pos = token.end + 1
    return "".join(out) + sql[pos:] if out else sql
