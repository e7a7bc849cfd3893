"""`/api/models` on an in-process Server: CRUD, upload, download, search, batch, validate,
reload; validation of the whole category, atomic writes with backups, serialized writers,
names that cannot escape the models folder, hostile YAML, and edits made on disk."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import yaml

from semproxy.admin.watch import ModelWatcher
from tests.admin_support import *  # noqa: F403
from tests.admin_support import Admin

NEW = """name: refund_stats
description: Refunds by reason.
tags: [finance, refunds]
model: main.refunds
entities:
  - {name: refund_stat, type: primary, expr: refund_id}
dimensions:
  - {name: reason, type: categorical}
measures:
  - {name: refund_total, agg: sum, expr: refund_amount}
"""
BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]"
        for i in range(9)
    ]  # fmt: skip
)


async def _query(admin: Admin, sql: str) -> list[list[object]]:
    r = await admin.client.post("/api/queries/execute", headers=admin.headers(), json={"query": sql})
    assert r.status_code == 200, r.text
    return r.json()["rows"]  # type: ignore[no-any-return]


async def test_list_paginates_and_filters(admin: Admin) -> None:
    r = await admin.client.get(
        "/api/models/", headers=admin.headers("reader"), params={"page_size": 2, "page": 2}
    )
    body = r.json()
    assert r.status_code == 200
    assert body["pagination"] == {"total": 5, "page": 2, "page_size": 2, "total_pages": 3}
    assert [m["id"] for m in body["data"]] == ["orders", "products"]
    r = await admin.client.get(
        "/api/models/", headers=admin.headers("reader"), params={"category": "staging"}
    )
    assert r.json()["data"] == [] and r.json()["pagination"]["total"] == 0


async def test_get_and_download(admin: Admin) -> None:
    r = await admin.client.get("/api/models/orders", headers=admin.headers("reader"))
    body = r.json()
    assert r.status_code == 200
    assert body["category"] == "production" and body["file"] == "production/orders.yaml"
    assert "net_revenue" in body["metrics"] and body["definition"]["model"] == "main.orders"
    assert body["updated_at"].endswith("Z")
    r = await admin.client.get("/api/models/orders/download", headers=admin.headers("reader"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/yaml")
    assert r.text == (admin.root / "production" / "orders.yaml").read_text()
    r = await admin.client.get("/api/models/nosuch", headers=admin.headers("reader"))
    assert r.status_code == 404 and r.json()["status_code"] == 404


async def test_create_is_served_at_once(admin: Admin) -> None:
    r = await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": NEW})
    assert r.status_code == 201, r.text
    assert r.json()["served"] is True and r.json()["file"] == "production/refund_stats.yaml"
    assert (admin.root / "production" / "refund_stats.yaml").read_text() == NEW
    rows = await _query(admin, "SELECT MEASURE(refund_total) FROM refund_stats")
    assert rows[0][0] > 0
    assert ("production", "refund_stats") in admin.server.column_types  # the catalog relations too
    again = await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": NEW})
    assert again.status_code == 409


async def test_create_from_a_json_object(admin: Admin) -> None:
    model = yaml.safe_load(NEW) | {"name": "refund_json"}
    r = await admin.client.post("/api/models/", headers=admin.headers(), json={"model": model})
    assert r.status_code == 201, r.text
    assert (await _query(admin, "SELECT MEASURE(refund_total) FROM refund_json"))[0][0] > 0


async def test_update_keeps_a_backup(admin: Admin) -> None:
    before = (admin.root / "production" / "refunds.yaml").read_text()
    changed = before.replace("description: Total amount paid back.", "description: Money returned.")
    r = await admin.client.put("/api/models/refunds", headers=admin.headers(), json={"yaml": changed})
    assert r.status_code == 200, r.text
    assert (admin.root / "production" / "refunds.yaml").read_text() == changed
    backups = list((admin.root / "backups" / "production").glob("refunds.*.yaml"))
    assert len(backups) == 1 and backups[0].read_text() == before
    assert not list((admin.root / "production").glob(".*"))  # no temporary file left behind
    r = await admin.client.put("/api/models/nosuch", headers=admin.headers(), json={"yaml": NEW})
    assert r.status_code == 422  # the name inside differs from the id
    r = await admin.client.put("/api/models/refund_stats", headers=admin.headers(), json={"yaml": NEW})
    assert r.status_code == 404


async def test_a_change_that_breaks_another_model_is_refused_with_file_and_line(admin: Admin) -> None:
    path = admin.root / "production" / "refunds.yaml"
    before = path.read_text()
    renamed = before.replace("name: refunded_amount", "name: refunds_paid")
    r = await admin.client.put("/api/models/refunds", headers=admin.headers(), json={"yaml": renamed})
    assert r.status_code == 422
    body = r.json()
    assert body["status_code"] == 422 and body["timestamp"].endswith("Z")
    issue = next(e for e in body["errors"] if "refunded_amount" in e["message"])
    assert issue["file"] == "production/orders.yaml" and isinstance(issue["line"], int) and issue["field"]
    assert path.read_text() == before  # an invalid model never replaces a valid one
    assert admin.server.registry.model("production", "refunds") is not None
    r = await admin.client.delete("/api/models/refunds", headers=admin.headers())
    assert r.status_code == 422 and path.exists()


async def test_invalid_yaml_points_at_the_line(admin: Admin) -> None:
    broken = NEW.replace("agg: sum", "agg: total")
    r = await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": broken})
    assert r.status_code == 422
    (issue,) = r.json()["errors"]
    assert issue["file"] == "production/refund_stats.yaml" and issue["line"] == 10 and "agg" in issue["field"]
    assert not (admin.root / "production" / "refund_stats.yaml").exists()


async def test_delete_backs_up_and_unserves(admin: Admin) -> None:
    await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": NEW})
    r = await admin.client.delete("/api/models/refund_stats", headers=admin.headers())
    assert r.status_code == 200 and r.json()["deleted"] == "refund_stats"
    assert not (admin.root / "production" / "refund_stats.yaml").exists()
    assert list((admin.root / "backups" / "production").glob("refund_stats.*.yaml"))
    assert admin.server.registry.model("production", "refund_stats") is None
    r = await admin.client.delete("/api/models/refund_stats", headers=admin.headers())
    assert r.status_code == 404


async def test_upload(admin: Admin) -> None:
    files = {"file": ("refund_stats.yaml", NEW.encode(), "application/yaml")}
    r = await admin.client.post("/api/models/upload", headers=admin.headers(), files=files)
    assert r.status_code == 201, r.text
    r = await admin.client.post("/api/models/upload", headers=admin.headers(), files=files)
    assert r.status_code == 409
    r = await admin.client.post(
        "/api/models/upload",
        headers=admin.headers(),
        files=files,
        data={"overwrite": "true", "category": "production"},
    )
    assert r.status_code == 201
    wrong = {"file": ("other.yaml", NEW.encode(), "application/yaml")}
    r = await admin.client.post("/api/models/upload", headers=admin.headers(), files=wrong)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"


async def test_upload_names_cannot_escape(admin: Admin) -> None:
    for name in (
        "../../evil.yaml",
        "..\\evil.yaml",
        "/etc/evil.yaml",
        "Evil.yaml",
        "evil.txt",
        ".hidden.yaml",
    ):
        files = {"file": (name, NEW.replace("refund_stats", "evil").encode(), "application/yaml")}
        r = await admin.client.post("/api/models/upload", headers=admin.headers(), files=files)
        assert r.status_code == 400, (name, r.text)
    for category in ("../etc", "backups", "templates", "pg_catalog", "Prod"):
        files = {"file": ("refund_stats.yaml", NEW.encode(), "application/yaml")}
        r = await admin.client.post(
            "/api/models/upload", headers=admin.headers(), files=files, data={"category": category}
        )
        assert r.status_code == 400, (category, r.text)
    r = await admin.client.post(
        "/api/models/", headers=admin.headers(), json={"yaml": NEW, "category": "../x"}
    )
    assert r.status_code == 400
    r = await admin.client.get("/api/models/..%2f..%2fetc%2fpasswd", headers=admin.headers())
    assert r.status_code in (400, 404)
    assert not list(admin.root.parent.glob("**/evil*"))


async def test_upload_size_limit(admin: Admin) -> None:
    big = NEW + "# " + "x" * (admin.settings.max_upload_bytes + 10) + "\n"
    files = {"file": ("refund_stats.yaml", big.encode(), "application/yaml")}
    r = await admin.client.post("/api/models/upload", headers=admin.headers(), files=files)
    assert r.status_code == 413 and r.json()["status_code"] == 413
    huge = "x" * (admin.settings.max_upload_bytes * 2)
    r = await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": huge})
    assert r.status_code == 413


async def test_billion_laughs_is_refused_fast(admin: Admin) -> None:
    started = time.perf_counter()
    files = {"file": ("refund_stats.yaml", BILLION_LAUGHS.encode(), "application/yaml")}
    r = await admin.client.post("/api/models/upload", headers=admin.headers(), files=files)
    assert time.perf_counter() - started < 1
    assert r.status_code == 422
    assert any("alias" in e["message"] for e in r.json()["errors"])
    r = await admin.client.post(
        "/api/models/validate", headers=admin.headers(), json={"yaml": BILLION_LAUGHS}
    )
    assert r.json()["is_valid"] is False


async def test_search(admin: Admin) -> None:
    await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": NEW})

    async def ids(**params: object) -> list[str]:
        r = await admin.client.get("/api/models/search", headers=admin.headers("reader"), params=params)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()["data"]]

    assert await ids(query="refund") == [
        "orders",
        "refund_stats",
        "refunds",
    ]  # orders: metric net_revenue's inputs
    assert await ids(query="REASON") == ["refund_stats"]
    assert await ids(tags="finance,refunds") == ["refund_stats"]
    assert await ids(tags="finance,nosuch") == []
    assert "refund_stats" in await ids(has_metrics=True)
    assert await ids(has_metrics=False) == []
    assert await ids(created_after="2999-01-01T00:00:00Z") == []
    assert len(await ids(created_after="2000-01-01T00:00:00")) == 6


async def test_batch_reports_each_operation(admin: Admin) -> None:
    ops = [
        {"action": "create", "yaml": NEW},
        {"action": "create", "yaml": NEW},  # exists by now
        {"action": "update", "id": "refund_stats", "yaml": NEW.replace("Refunds by reason.", "By reason.")},
        {"action": "delete", "id": "refunds"},  # breaks orders.net_revenue
        {"action": "delete", "id": "refund_stats"},
    ]
    r = await admin.client.post("/api/models/batch", headers=admin.headers(), json={"operations": ops})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [x["success"] for x in body["results"]] == [True, False, True, False, True]
    assert [x["status_code"] for x in body["results"]] == [201, 409, 200, 422, 200]
    assert body["summary"] == {"total": 5, "succeeded": 3, "failed": 2}
    r = await admin.client.post(
        "/api/models/batch", headers=admin.headers("engineer"), json={"operations": ops[4:]}
    )
    assert r.json()["results"][0]["status_code"] == 403  # engineers write but do not delete


async def test_validate_writes_nothing(admin: Admin) -> None:
    r = await admin.client.post("/api/models/validate", headers=admin.headers("reader"), json={"yaml": NEW})
    assert r.json() == {"is_valid": True, "errors": [], "warnings": []}
    assert not (admin.root / "production" / "refund_stats.yaml").exists()
    r = await admin.client.post(
        "/api/models/validate",
        headers=admin.headers("reader"),
        json={"yaml": NEW.replace("agg: sum", "agg: x")},
    )
    assert r.json()["is_valid"] is False and r.json()["errors"][0]["line"] == 10
    r = await admin.client.post("/api/models/validate", headers=admin.headers("reader"))
    assert r.json()["is_valid"] is True


async def test_reload_keeps_the_last_good_models(admin: Admin) -> None:
    (admin.root / "production" / "broken.yaml").write_text(
        "name: broken\nmodel: main.orders\nmeasures: [{name: x}]\n"
    )
    r = await admin.client.post("/api/models/reload", headers=admin.headers())
    assert r.status_code == 422 and r.json()["status"] == "failed"
    assert r.json()["errors"][0]["file"].endswith("broken.yaml")
    assert (await _query(admin, "SELECT MEASURE(revenue) FROM orders"))[0][0] > 0
    ready = await admin.client.get("/api/health/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["models"]["status"] == "error"
    (admin.root / "production" / "broken.yaml").unlink()
    r = await admin.client.post("/api/models/reload", headers=admin.headers())
    assert r.status_code == 200 and r.json()["model_count"] == 5
    assert (await admin.client.get("/api/health/ready")).status_code == 200


async def test_concurrent_writers_are_serialized(admin: Admin) -> None:
    # each with its own entity and measure: those names are unique in a category
    texts = [
        NEW.replace("refund_stats", f"rstats_{i}")
        .replace("refund_stat,", f"rstat_{i},")
        .replace("refund_total", f"total_{i}")
        for i in range(6)
    ]
    answers = await asyncio.gather(
        *(admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": t}) for t in texts),
        *(admin.client.put("/api/models/refunds", headers=admin.headers(),
                           json={"yaml": (admin.root / "production" / "refunds.yaml").read_text() + f"# {i}\n"})
          for i in range(4)),
    )  # fmt: skip
    assert [a.status_code for a in answers] == [201] * 6 + [200] * 4
    served = admin.server.registry.categories["production"].models
    assert {f"rstats_{i}" for i in range(6)} <= set(served)
    assert len(list((admin.root / "backups" / "production").glob("refunds.*.yaml"))) == 4
    for i in range(6):
        assert (await _query(admin, f"SELECT MEASURE(total_{i}) FROM rstats_{i}"))[0][0] > 0


async def test_an_edit_on_disk_goes_live(admin: Admin) -> None:
    watcher = ModelWatcher(admin.root, admin.server.reload_models, poll_s=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        (admin.root / "production" / "refund_stats.yaml").write_text(NEW)
        assert await _eventually(
            lambda: admin.server.registry.model("production", "refund_stats") is not None
        )
        bad = admin.root / "production" / "refund_stats.yaml"
        bad.write_text(NEW.replace("agg: sum", "agg: nope"))
        assert await _eventually(lambda: bool(admin.server.model_errors))
        assert (
            admin.server.registry.model("production", "refund_stats") is not None
        )  # last good still serving
    finally:
        stop.set()
        await task


async def _eventually(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


def test_backups_and_temporary_files_are_never_served(tmp_path: Path) -> None:
    from semproxy.admin.watch import snapshot

    (tmp_path / "production").mkdir()
    (tmp_path / "backups" / "production").mkdir(parents=True)
    (tmp_path / "production" / "a.yaml").write_text("x")
    (tmp_path / "production" / ".a.yaml.123.tmp").write_text("x")
    (tmp_path / "backups" / "production" / "a.2024.yaml").write_text("x")
    names = {Path(p).name for p, _, _ in snapshot(tmp_path)}
    assert names == {"production", "a.yaml"}


async def test_text_yaml_cannot_read_is_a_clear_422(admin: Admin) -> None:
    r = await admin.client.post("/api/models/", headers=admin.headers(), json={"yaml": NEW + "# \x00\n"})
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["line"] == 11 and "#x0000" in r.json()["errors"][0]["message"]
    for body in ({"yaml": "name: a\udc00\n"}, {"model": {"name": "a", "x\udc00": 1}}):
        raw = json.dumps(body)  # ASCII with \u escapes: JSON may carry lone surrogates
        headers = admin.headers() | {"Content-Type": "application/json"}
        r = await admin.client.post("/api/models/", headers=headers, content=raw)
        assert r.status_code == 422 and r.json()["status_code"] == 422


async def test_the_watcher_outlives_a_failing_reload(tmp_path: Path) -> None:
    calls = 0

    async def failing() -> list[object]:
        nonlocal calls
        calls += 1
        raise RuntimeError("boom")

    (tmp_path / "production").mkdir()
    watcher = ModelWatcher(tmp_path, failing, poll_s=0.01)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    (tmp_path / "production" / "a.yaml").write_text("a")
    assert await _eventually(lambda: calls == 1)
    (tmp_path / "production" / "b.yaml").write_text("b")
    assert await _eventually(lambda: calls == 2)
    stop.set()
    await task
