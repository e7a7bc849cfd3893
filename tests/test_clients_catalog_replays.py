"""Replays of the catalog SQL that BI tools send before their first metric query, kept as
fixture files named after the tool and version (tests/clients/catalog/). Each message goes
to the real server in the protocol the tool speaks (simple Query for Npgsql, psqlODBC and
Grafana; Parse/Bind/Execute for the pgjdbc-based tools) and must answer without error,
with the columns the tool reads."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from psycopg import pq

from tests.clients.support import CLIENTS, Message, messages
from tests.conftest import RunningServer

FIXTURES = sorted((CLIENTS / "catalog").glob("*.sql"))
# the tools that reach PostgreSQL through pgjdbc send every statement as Parse/Bind/Execute
EXTENDED = {"metabase-0.50-sync.sql", "tableau-2023.3-jdbc.sql"}


def simple(conn: psycopg.Connection, message: Message) -> list[list[str]]:
    """Column names of each result of one simple Query."""
    cur = psycopg.ClientCursor(conn)
    cur.execute(message.sql.encode(), prepare=False)
    results = []
    while True:
        results.append([d.name for d in cur.description or []])
        if not cur.nextset():
            return results


def extended(conn: psycopg.Connection, message: Message) -> list[list[str]]:
    """Column names of one statement sent as Parse/Bind/Describe/Execute/Sync with $n parameters."""
    params = [p.encode() for p in message.params or []]
    result = conn.pgconn.exec_params(message.sql.encode(), params)
    if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        raise AssertionError(f"{message.label}: {(result.error_message or b'').decode()}")
    return [[(result.fname(i) or b"").decode() for i in range(result.nfields)]]


def test_every_fixture_is_read() -> None:
    assert {p.name.split("-")[0] for p in FIXTURES} >= {"metabase", "npgsql", "tableau", "grafana"}
    assert all(messages(p) for p in FIXTURES)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_tool_catalog_sql_replays(server: RunningServer, fixture: Path) -> None:
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        for message in messages(fixture):
            run = extended if fixture.name in EXTENDED else simple
            got = run(conn, message)
            assert got == message.columns, message.label
        assert conn.execute("SELECT MEASURE(order_count) FROM orders").fetchone()[0] > 0  # type: ignore[index]


def test_npgsql_type_loading_finds_the_types_it_maps(server: RunningServer) -> None:
    (message,) = [
        m for m in messages(CLIENTS / "catalog" / "npgsql-8.0-type-loading.sql") if m.label == "type loading"
    ]
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute(message.sql.encode(), prepare=False)
        assert cur.fetchone()[0].startswith("PostgreSQL ")  # type: ignore[index]
        assert cur.nextset()
        names = {row[2] for row in cur.fetchall()}
    assert {"int8", "numeric", "text", "date", "timestamp", "bool", "float8", "_text"} <= names


def test_metabase_sync_sees_the_metric_tables_and_comments(server: RunningServer) -> None:
    fixture = messages(CLIENTS / "catalog" / "metabase-0.50-sync.sql")
    tables, fields = fixture[1], fixture[3]
    with psycopg.connect(server.dsn, autocommit=True) as conn:
        listed = conn.pgconn.exec_params(tables.sql.encode(), [p.encode() for p in tables.params or []])
        names = {(listed.get_value(i, 1) or b"").decode() for i in range(listed.ntuples)}
        described = conn.pgconn.exec_params(fields.sql.encode(), [p.encode() for p in fields.params or []])
        columns = {
            (described.get_value(i, 0) or b"").decode(): (
                (described.get_value(i, 1) or b"").decode(),
                (described.get_value(i, 6) or b"").decode(),
            )
            for i in range(described.ntuples)
        }
    assert {"orders", "customers", "metrics"} <= names
    assert columns["revenue"][0] == "numeric" and columns["revenue"][1].startswith("Revenue")
    assert columns["order_date"][0] == "date"
