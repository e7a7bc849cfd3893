"""The SQL BI tools really generate over a metric table, each test named after the tool and
holding its SQL, each answer compared with hand-written SQL on the same DuckDB file. These
idioms need no rewrite of their own: the compiler reads them as what they mean (an aggregate
around a metric column is the metric; an ungrouped selection is a view)."""

from __future__ import annotations

from decimal import Decimal

import psycopg
import pytest

from tests.clients.support import truth
from tests.conftest import RunningServer


@pytest.fixture(scope="module")
def conn(server: RunningServer) -> psycopg.Connection:
    with psycopg.connect(server.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        yield conn


def rows(conn: psycopg.Connection, sql: str) -> set[tuple]:
    return set(conn.execute(sql).fetchall())


def test_tableau_cast_to_text_in_group_by(server: RunningServer, conn: psycopg.Connection) -> None:
    got = rows(
        conn,
        'SELECT CAST("orders"."region" AS TEXT) AS "region", SUM("orders"."revenue") AS "sum:revenue:ok" '
        'FROM "production"."orders" "orders" GROUP BY CAST("orders"."region" AS TEXT)',
    )
    assert got == set(truth(server, "SELECT region, sum(amount) FROM main.orders GROUP BY 1"))


def test_tableau_case_based_exclude_filter(server: RunningServer, conn: psycopg.Connection) -> None:
    got = rows(
        conn,
        'SELECT CAST("orders"."status" AS TEXT) AS "status", SUM("orders"."revenue") AS "sum:revenue:ok" '
        'FROM "production"."orders" "orders" '
        'WHERE (CASE WHEN ("orders"."region" IS NULL) THEN FALSE '
        "WHEN (\"orders\".\"region\" IN ('Europe', 'Asia Pacific')) THEN FALSE ELSE TRUE END) "
        'GROUP BY CAST("orders"."status" AS TEXT)',
    )
    expected = truth(
        server,
        "SELECT status, sum(amount) FROM main.orders "
        "WHERE region IS NOT NULL AND region NOT IN ('Europe', 'Asia Pacific') GROUP BY 1",
    )
    assert got == set(expected)


def test_tableau_exclude_keeping_nulls_and_month_truncation(
    server: RunningServer, conn: psycopg.Connection
) -> None:
    got = rows(
        conn,
        'SELECT CAST(DATE_TRUNC(\'MONTH\', CAST("orders"."order_date" AS DATE)) AS DATE) AS "tmn:order_date:ok", '
        'SUM("orders"."order_count") AS "sum:order_count:ok" FROM "production"."orders" "orders" '
        'WHERE ((NOT ("orders"."region" IN (\'Europe\'))) OR ("orders"."region" IS NULL)) GROUP BY 1',
    )
    expected = truth(
        server,
        "SELECT date_trunc('month', order_date)::date, count(order_id) FROM main.orders "
        "WHERE region IS DISTINCT FROM 'Europe' GROUP BY 1",
    )
    assert got == set(expected) and len(got) > 12


def test_powerbi_count_distinct_plus_null_flag(server: RunningServer, conn: psycopg.Connection) -> None:
    got = conn.execute(
        'select count(distinct("region")) + max(case when "region" is null then 1 else 0 end) as "C1" '
        'from "production"."orders"'
    ).fetchone()
    ((expected,),) = truth(
        server,
        "SELECT count(DISTINCT region) + max(CASE WHEN region IS NULL THEN 1 ELSE 0 END) FROM main.orders",
    )
    assert got == (expected,)


def test_powerbi_folded_query_with_its_row_limit(server: RunningServer, conn: psycopg.Connection) -> None:
    got = rows(
        conn,
        'select "_"."channel", "_"."a0" from (select "rows"."channel" as "channel", sum("rows"."revenue") as "a0" '
        'from (select "_"."channel", "_"."revenue" from "production"."orders" "_") "rows" group by "channel") "_" '
        'where not "_"."a0" is null limit 1000001',
    )
    assert got == set(truth(server, "SELECT channel, sum(amount) FROM main.orders GROUP BY 1"))


def test_metabase_table_preview_limit_2000(server: RunningServer, conn: psycopg.Connection) -> None:
    cur = conn.execute(
        'SELECT "production"."orders"."status" AS "status", "production"."orders"."channel" AS "channel", '
        '"production"."orders"."revenue" AS "revenue" FROM "production"."orders" LIMIT 2000'
    )
    got = set(cur.fetchall())
    assert [d.name for d in cur.description or []] == ["status", "channel", "revenue"]
    expected = truth(server, "SELECT status, channel, sum(amount) FROM main.orders GROUP BY 1, 2")
    assert got == set(expected) and len(expected) < 2000


def test_metabase_field_values(server: RunningServer, conn: psycopg.Connection) -> None:
    got = conn.execute(
        'SELECT "production"."orders"."channel" AS "channel" FROM "production"."orders" '
        'GROUP BY "production"."orders"."channel" ORDER BY "production"."orders"."channel" ASC LIMIT 1000'
    ).fetchall()
    assert got == truth(server, "SELECT DISTINCT channel FROM main.orders ORDER BY 1 LIMIT 1000")


def test_metabase_breakout_by_month(server: RunningServer, conn: psycopg.Connection) -> None:
    got = conn.execute(
        'SELECT DATE_TRUNC(\'month\', "production"."orders"."order_date") AS "order_date", '
        'SUM("production"."orders"."revenue") AS "sum" FROM "production"."orders" '
        'GROUP BY DATE_TRUNC(\'month\', "production"."orders"."order_date") '
        'ORDER BY DATE_TRUNC(\'month\', "production"."orders"."order_date") ASC'
    ).fetchall()
    expected = truth(
        server, "SELECT date_trunc('month', order_date), sum(amount) FROM main.orders GROUP BY 1 ORDER BY 1"
    )
    assert [(d.date(), Decimal(s)) for d, s in got] == [(d.date(), s) for d, s in expected]
