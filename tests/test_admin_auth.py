"""Sign-in and the guards: tokens from the shared users file, 401 for missing, expired,
tampered or unsigned tokens, 403 for a missing permission, nothing secret in the logs."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import replace

import jwt
import pytest
import structlog

from semproxy.auth.tokens import User, issue_token, verify_token
from semproxy.config import DEFAULT_SECRET_KEY, Settings
from semproxy.errors import ConfigError, InvalidPassword
from tests.admin_support import *  # noqa: F403
from tests.admin_support import PASSWORD, Admin

GUARDED = [
    ("GET", "/api/models/"),
    ("GET", "/api/models/orders"),
    ("POST", "/api/models/reload"),
    ("GET", "/api/metadata/catalogs"),
    ("POST", "/api/queries/execute"),
    ("GET", "/api/auth/me"),
]


async def test_login_answers_a_token_with_roles_and_permissions(admin: Admin) -> None:
    r = await admin.client.post("/api/auth/login", json={"username": "analyst", "password": PASSWORD})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 30 * 60
    assert body["user"] == {
        "id": "analyst",
        "email": None,
        "roles": ["analyst"],
        "permissions": ["execute", "read"],
    }
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == "analyst" and claims["exp"] - claims["iat"] == 30 * 60
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await admin.client.get("/api/auth/me", headers=headers)
    assert me.json()["id"] == "analyst"
    perms = await admin.client.get("/api/auth/permissions", headers=headers)
    assert perms.json()["roles_permissions"]["admin"] == ["delete", "execute", "read", "write"]
    fresh = await admin.client.post("/api/auth/refresh", headers=headers)
    assert (
        fresh.status_code == 200
        and verify_token(fresh.json()["access_token"], admin.settings).id == "analyst"
    )


async def test_wrong_password_and_unknown_user_are_401(admin: Admin) -> None:
    for body in ({"username": "analyst", "password": "nope"}, {"username": "ghost", "password": PASSWORD}):
        r = await admin.client.post("/api/auth/login", json=body)
        assert r.status_code == 401 and r.json()["detail"] == "wrong user name or password"
    r = await admin.client.post("/api/auth/login", json={"username": "analyst"})
    assert r.status_code == 422


async def test_databricks_token_needs_the_databricks_engine(admin: Admin) -> None:
    r = await admin.client.post("/api/auth/login", json={"databricks_token": "dapi123"})
    assert r.status_code == 400 and "duckdb" in r.json()["detail"]


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_no_token_is_401(admin: Admin, method: str, path: str) -> None:
    r = await admin.client.request(method, path)
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert set(r.json()) == {"detail", "status_code", "timestamp"}


async def test_expired_tampered_and_unsigned_tokens_are_401(admin: Admin) -> None:
    settings = admin.settings
    past = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    expired = issue_token(User("admin", None, ("admin",)), settings, now=past)
    good = issue_token(User("reader", None, ("user",)), settings)
    head, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False}) | {"roles": ["admin"]}
    forged_payload = jwt.encode(claims, "another-secret-key-of-enough-length!", algorithm="HS256").split(".")[
        1
    ]
    unsigned = jwt.encode(claims, None, algorithm="none")
    other_key = jwt.encode(claims, "another-secret-key-of-enough-length!", algorithm="HS256")
    for token, why in [
        (expired, "expired"),
        (f"{head}.{forged_payload}.{sig}", "invalid"),
        (unsigned, "invalid"),
        (other_key, "invalid"),
        ("not-a-token", "invalid"),
    ]:
        r = await admin.client.get("/api/models/", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert why in r.json()["detail"]
        assert token not in r.text


async def test_missing_permission_is_403(admin: Admin) -> None:
    reader, engineer = admin.headers("reader"), admin.headers("engineer")
    new = "name: x1\nmodel: main.orders\nmeasures: [{name: x1_count, agg: count, expr: order_id}]\n"
    assert (await admin.client.post("/api/models/", headers=reader, json={"yaml": new})).status_code == 403
    assert (await admin.client.post("/api/models/reload", headers=reader)).status_code == 403
    r = await admin.client.post(
        "/api/queries/execute", headers=reader, json={"query": "SELECT MEASURE(revenue) FROM orders"}
    )
    assert r.status_code == 403 and "execute" in r.json()["detail"]
    assert (await admin.client.delete("/api/models/refunds", headers=engineer)).status_code == 403
    assert (admin.root / "production" / "refunds.yaml").exists()
    files = {"file": ("x1.yaml", new.encode(), "application/yaml")}
    assert (await admin.client.post("/api/models/upload", headers=reader, files=files)).status_code == 403
    assert not (admin.root / "production" / "x1.yaml").exists()
    assert (await admin.client.post("/api/models/", headers=engineer, json={"yaml": new})).status_code == 201


def test_permissions_follow_the_configuration_at_verification() -> None:
    settings = Settings(secret_key="k" * 40)
    token = issue_token(User("bob", None, ("analyst",)), settings)
    narrowed = replace(settings, role_permissions="analyst=read")
    assert verify_token(token, narrowed).permissions(narrowed) == {"read"}
    with pytest.raises(InvalidPassword):
        verify_token(token, replace(settings, secret_key="z" * 40))


def test_default_secret_key_refused_outside_development() -> None:
    with pytest.raises(ConfigError, match="default secret key"):
        Settings.load(env={"ENVIRONMENT": "production"})
    assert Settings.load(env={"ENVIRONMENT": "production", "SECRET_KEY": "s" * 40}).secret_key == "s" * 40
    assert Settings.load(env={}).secret_key == DEFAULT_SECRET_KEY
    assert Settings.load(env={"ACCESS_TOKEN_EXPIRE_MINUTES": "5"}).access_token_expire_minutes == 5
    with pytest.raises(ConfigError, match="role_permissions"):
        Settings.load(env={"SEMPROXY_ROLE_PERMISSIONS": "admin=everything"})


async def test_tokens_and_passwords_never_reach_the_logs(
    admin: Admin, capsys: pytest.CaptureFixture[str]
) -> None:
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    structlog.configure(
        processors=[structlog.processors.KeyValueRenderer()], logger_factory=structlog.PrintLoggerFactory()
    )
    try:
        r = await admin.client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD})
        token = r.json()["access_token"]
        await admin.client.post("/api/auth/login", json={"username": "admin", "password": PASSWORD + "x"})
        headers = {"Authorization": f"Bearer {token}"}
        await admin.client.post(
            "/api/queries/execute", headers=headers, json={"query": "SELECT MEASURE(revenue) FROM orders"}
        )
        await admin.client.get("/api/models/", headers={"Authorization": f"Bearer {token}x"})
    finally:
        logging.getLogger().removeHandler(handler)
        structlog.reset_defaults()
    out = capsys.readouterr()
    logged = out.out + out.err + "\n".join(records)
    assert "signed in" in logged and "sign-in refused" in logged  # the logs were captured
    assert PASSWORD not in logged and token not in logged and token.split(".")[2] not in logged
