"""The HTTP port of the real server process: a model written through the API, or on disk,
is live for an open Postgres session (its next query, and pg_catalog) within a second."""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from semproxy.auth.tokens import User, issue_token
from semproxy.config import Settings
from tests.admin_support import private_tmp
from tests.conftest import MODELS, RunningServer, start_server, stop_server
from tests.test_admin_models import NEW

SECRET = "e2e-secret-key-that-is-long-enough-for-hs256"


@pytest.fixture(scope="module")
def served(demo_db: Path) -> Iterator[tuple[RunningServer, Path]]:
    with private_tmp() as tmp:
        models = tmp / "models"
        shutil.copytree(MODELS, models)
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SEMPROXY_SECRET_KEY", SECRET)
            running = start_server(tmp, models=models, database=demo_db)
        yield running, models
        stop_server(running)


def _token() -> str:
    return issue_token(User("e2e", None, ("admin",)), Settings(secret_key=SECRET))


def _post(
    server: RunningServer, path: str, body: dict[str, object], token: str
) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        f"http://{server.host}:{server.http_port}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.status, json.loads(answer.read())


def _live_within(conn: psycopg.Connection, sql: str, seconds: float) -> float:
    """How long until `sql` runs on `conn`, polling; fails past `seconds`."""
    started = time.monotonic()
    while True:
        try:
            conn.execute(sql).fetchall()
            return time.monotonic() - started
        except psycopg.errors.Error:
            if time.monotonic() - started > seconds:
                raise
            time.sleep(0.02)


def _columns(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'production' AND c.relname = %s AND a.attnum > 0 ORDER BY a.attnum",
        (table,),
    ).fetchall()
    return [r[0] for r in rows]


def test_a_model_created_through_the_api_is_live_for_an_open_session(
    served: tuple[RunningServer, Path],
) -> None:
    server, _ = served
    token = _token()
    with psycopg.connect(server.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        assert _columns(conn, "refund_stats") == []
        status, body = _post(server, "/api/models/", {"yaml": NEW}, token)
        assert status == 201 and body["served"] is True
        waited = _live_within(conn, "SELECT reason, MEASURE(refund_total) FROM refund_stats GROUP BY 1", 1.0)
        print(f"API write live after {waited:.3f} s")
        assert waited < 1.0
        assert _columns(conn, "refund_stats") == ["reason", "refund_stat", "refund_total"]
    assert token not in server.logs() and token.split(".")[2] not in server.logs()


def test_an_edit_on_disk_is_live_within_a_second(served: tuple[RunningServer, Path]) -> None:
    server, models = served
    text = NEW.replace("refund_stats", "disk_stats").replace("refund_stat,", "disk_stat,")
    text = text.replace("refund_total", "disk_total")
    with psycopg.connect(server.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        (models / "production" / "disk_stats.yaml").write_text(text)
        waited = _live_within(conn, "SELECT MEASURE(disk_total) FROM disk_stats", 2.0)
        print(f"disk edit live after {waited:.3f} s")
        assert waited < 2.0  # a 0.2 s poll, the reload (catalog specs and sync), the query; ~0.9 s here
        assert _columns(conn, "disk_stats") == ["reason", "disk_stat", "disk_total"]
