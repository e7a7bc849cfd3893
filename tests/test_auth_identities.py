"""The HTTP port's identities on the Postgres side.

- auth `jwt`: the password is a sign-in token of `POST /api/auth/login`, against the real
  server process, from psql and asyncpg: good, expired, tampered and other-user tokens,
  refused with 28P01 and nothing said of why; cleartext only over TLS off loopback.
- auth `databricks`: the password is a Databricks personal access token, verified once
  (then cached) and run with: a real server in this process (`semproxy.server.serve`),
  its DatabricksEngine given the connector fake, which knows whose each token is and
  records which token ran each statement.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import importlib
import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from structlog.testing import capture_logs

from semproxy.auth.databricks import DatabricksTokens
from semproxy.auth.tokens import User, issue_token
from semproxy.config import Settings
from semproxy.engines.databricks import DatabricksEngine, DatabricksTarget
from semproxy.errors import InvalidPassword
from semproxy.semantic.registry import Registry
from semproxy.server import serve
from tests.conftest import DEMO_DB, MODELS, RunningServer, free_port
from tests.engine_fixtures import FakeDatabricks
from tests.protocol_support import PASSWORD, add_user, make_cert, psql, running

SECRET = "identities-test-secret-0123456789abcdef"
REFUSED = 'password authentication failed for user "{}"'
METRIC = "SELECT MEASURE(order_count) > 0 FROM orders"


def conninfo(host: str, port: int, user: str, password: str, sslmode: str = "disable") -> str:
    parts = {"host": host, "port": str(port), "user": user, "password": password, "dbname": "semantic",
             "sslmode": sslmode}  # fmt: skip
    return " ".join(f"{k}='{v}'" for k, v in parts.items())


async def refusal(host: str, port: int, user: str, password: str) -> asyncpg.InvalidPasswordError:
    with pytest.raises(asyncpg.InvalidPasswordError) as caught:
        await asyncpg.connect(
            host=host, port=port, user=user, password=password, database="semantic", ssl=False
        )
    return caught.value


def assert_says_nothing(error: asyncpg.InvalidPasswordError, user: str) -> None:
    assert error.sqlstate == "28P01"
    assert error.args[0] == REFUSED.format(user)
    assert error.detail is None and error.hint is None


# ---- jwt: the real server process ----


def outside_address() -> str | None:
    """This machine's own non-loopback IPv4 address, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.254", 9))  # no packet is sent: this only picks a route
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") or address == "0.0.0.0" else address


@pytest.fixture(scope="module")
def jwt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("jwt")
    add_user(directory / "users", "alice")
    make_cert(directory)
    return directory


@pytest.fixture(scope="module")
def jwt_server(jwt_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    flags = ("--auth", "jwt", "--users", str(jwt_dir / "users"), "--host", "0.0.0.0",
             "--tls-cert", str(jwt_dir / "server.crt"), "--tls-key", str(jwt_dir / "server.key"))  # fmt: skip
    with running(tmp_path_factory.mktemp("jwt-server"), *flags, env={"SECRET_KEY": SECRET}) as server:
        yield server


def sign_in(server: RunningServer, user: str = "alice", password: str = PASSWORD) -> str:
    answer = httpx.post(
        f"http://127.0.0.1:{server.http_port}/api/auth/login", json={"username": user, "password": password}
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def test_jwt_from_the_http_sign_in_opens_a_psql_session(jwt_server: RunningServer) -> None:
    token = sign_in(jwt_server)
    out = psql(conninfo(jwt_server.host, jwt_server.port, "alice", token), METRIC, "\\dt orders")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "t" and "orders" in out.stdout
    assert token not in jwt_server.logs()


async def test_jwt_from_asyncpg_good_expired_tampered_and_other_users(jwt_server: RunningServer) -> None:
    host, port = jwt_server.host, jwt_server.port
    token = sign_in(jwt_server)
    conn = await asyncpg.connect(
        host=host, port=port, user="alice", password=token, database="semantic", ssl=False
    )
    try:
        assert await conn.fetchval("SELECT MEASURE(order_count) FROM orders") > 0
    finally:
        await conn.close()

    settings = Settings(secret_key=SECRET)
    expired = issue_token(User("alice"), settings, now=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2))
    header, payload, signature = token.split(".")
    claims = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).replace(b'"alice"', b'"admin"')
    tampered = ".".join([header, base64.urlsafe_b64encode(claims).decode().rstrip("="), signature])
    forged = issue_token(User("alice", roles=("admin",)), Settings(secret_key="another-key-" + SECRET))
    for user, password in [("alice", expired), ("alice", tampered), ("alice", forged),
                           ("alice", "not.a.token"), ("bob", token)]:  # fmt: skip
        assert_says_nothing(await refusal(host, port, user, password), user)
    out = psql(conninfo(host, port, "alice", expired), "SELECT 1")
    assert out.returncode != 0 and f"FATAL:  {REFUSED.format('alice')}" in out.stderr
    assert "expired" not in out.stderr and "token" not in out.stderr
    logs = jwt_server.logs()
    assert "the token has expired" in logs  # the log says why; the client is told nothing
    assert all(secret not in logs for secret in (token, expired, tampered, forged))


def test_jwt_off_loopback_only_over_tls(jwt_server: RunningServer) -> None:
    address = outside_address()
    if address is None:
        pytest.skip("this machine has no non-loopback address")
    token = sign_in(jwt_server)
    plain = psql(conninfo(address, jwt_server.port, "alice", token), "SELECT 1")
    assert plain.returncode != 0
    assert 'jwt authentication for user "alice" requires SSL' in plain.stderr
    secure = psql(conninfo(address, jwt_server.port, "alice", token, sslmode="require"), METRIC)
    assert secure.returncode == 0, secure.stderr
    assert secure.stdout.strip() == "t"


def test_token_methods_need_no_users_file_but_databricks_needs_its_engine() -> None:
    from semproxy.errors import ConfigError

    assert Settings.load({"auth": "jwt"}, env={}).auth_method == "jwt"
    assert Settings.load({"auth": "databricks", "engine": "databricks"}, env={}).users is None
    with pytest.raises(ConfigError, match="needs --engine databricks"):
        Settings.load({"auth": "databricks"}, env={})


# ---- databricks: a server in this process, the connector faked ----

TOKENS = {
    "dapi-alice": "alice@example.com",
    "dapi-bob": "bob@example.com",
    "dapi-carol": "carol@example.com",
    "dapi-dave": "dave@example.com",
}


class InProcessServer:
    """`semproxy.server.serve` on its own event loop in a thread, stopped by its `stop` event."""

    def __init__(self, settings: Settings, engine: DatabricksEngine) -> None:
        self.settings, self.engine = settings, engine
        self.error: BaseException | None = None
        self._up = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="semproxy-in-test", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            ready = asyncio.Event()
            serving = asyncio.ensure_future(
                serve(self.settings, Registry.load(self.settings.models), self.engine, ready, self._stop)
            )
            await asyncio.wait([serving, asyncio.ensure_future(ready.wait())], return_when="FIRST_COMPLETED")
            self._up.set()
            await serving

        try:
            asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - reported by start() and stop()
            self.error = exc
        finally:
            self._up.set()

    def start(self) -> None:
        self._thread.start()
        assert self._up.wait(120), "the in-process server did not start"
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive()


@pytest.fixture(scope="module")
def no_workspace() -> Iterator[None]:
    """The SDK's host-metadata probe fails at once: no workspace is reachable from here."""
    sdk_config = importlib.import_module("databricks.sdk.config")

    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("no workspace here")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sdk_config, "get_host_metadata", unreachable)
        yield


@pytest.fixture(scope="module")
def fake(no_workspace: None) -> FakeDatabricks:
    from databricks.sql.exc import RequestError

    return FakeDatabricks(DEMO_DB, RequestError, users=TOKENS)


def fake_engine(fake: FakeDatabricks) -> DatabricksEngine:
    target = DatabricksTarget(host="http://127.0.0.1:9", warehouse_id="abc", token="dapi-service")
    return DatabricksEngine(target, connect=fake.connect)


@pytest.fixture(scope="module")
def databricks_server(fake: FakeDatabricks) -> Iterator[InProcessServer]:
    state = Path(tempfile.mkdtemp(prefix="semproxy-state-"))  # the catalog server's user must reach it
    settings = Settings(models=MODELS, engine="databricks", auth="databricks", port=free_port(),
                        http_port=free_port(), state_dir=state)  # fmt: skip
    server = InProcessServer(settings.checked(), fake_engine(fake))
    server.start()
    yield server
    server.stop()
    shutil.rmtree(state, ignore_errors=True)


def lookups(fake: FakeDatabricks, token: str) -> int:
    """How often the warehouse was asked whose `token` is."""
    return sum(1 for used, sql in fake.ran if used == token and "current_user" in sql.lower())


def ran_with(fake: FakeDatabricks, since: int) -> set[str | None]:
    return {token for token, _ in fake.ran[since:]}


def test_databricks_token_from_psql_runs_queries_as_the_user(
    databricks_server: InProcessServer, fake: FakeDatabricks
) -> None:
    port = databricks_server.settings.port
    since = len(fake.ran)
    out = psql(conninfo("127.0.0.1", port, "alice@example.com", "dapi-alice"), METRIC, "\\dt orders")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "t" and "orders" in out.stdout
    metric_statements = [(t, sql) for t, sql in fake.ran[since:] if "current_user" not in sql.lower()]
    assert metric_statements and all(t == "dapi-alice" for t, _ in metric_statements)
    assert ran_with(fake, since) == {"dapi-alice"}  # \dt went to the catalog server, not Databricks
    # Databricks' own drivers send the user name `token`
    since = len(fake.ran)
    out = psql(conninfo("127.0.0.1", port, "token", "dapi-bob"), METRIC)
    assert out.returncode == 0 and out.stdout.strip() == "t", out.stderr
    assert ran_with(fake, since) == {"dapi-bob"}


async def test_databricks_token_from_asyncpg_describes_and_runs_as_the_user(
    databricks_server: InProcessServer, fake: FakeDatabricks
) -> None:
    port = databricks_server.settings.port
    conn = await asyncpg.connect(host="127.0.0.1", port=port, user="carol@example.com", password="dapi-carol",
                                 database="semantic", ssl=False)  # fmt: skip
    try:
        since = len(fake.ran)
        rows = await conn.fetch(
            "SELECT region, MEASURE(revenue) FROM orders WHERE region = $1 GROUP BY 1", "Europe"
        )
        assert [r["region"] for r in rows] == ["Europe"]
    finally:
        await conn.close()
    statements = fake.ran[since:]
    assert len(statements) >= 2  # the extended protocol's describe, then the query
    assert {t for t, _ in statements} == {"dapi-carol"}


async def test_bad_or_borrowed_databricks_tokens_are_refused_saying_nothing(
    databricks_server: InProcessServer, fake: FakeDatabricks
) -> None:
    port = databricks_server.settings.port
    with capture_logs() as logs:
        for user, password in [("alice@example.com", "dapi-revoked"), ("bob@example.com", "dapi-alice"),
                               ("token", "dapi-nobody")]:  # fmt: skip
            assert_says_nothing(await refusal("127.0.0.1", port, user, password), user)
    out = psql(conninfo("127.0.0.1", port, "mallory@example.com", "dapi-mallory"), "SELECT 1")
    assert f"FATAL:  {REFUSED.format('mallory@example.com')}" in out.stderr
    assert "403" not in out.stderr and "Databricks" not in out.stderr
    said = repr(logs)
    assert "Databricks token refused" in said
    assert all(secret not in said for secret in ("dapi-revoked", "dapi-alice", "dapi-nobody"))


async def test_a_verified_token_is_not_checked_again_within_its_ttl(
    databricks_server: InProcessServer, fake: FakeDatabricks
) -> None:
    port = databricks_server.settings.port
    before = lookups(fake, "dapi-dave")
    for _ in range(3):
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="dave@example.com", password="dapi-dave",
                                     database="semantic", ssl=False)  # fmt: skip
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    assert lookups(fake, "dapi-dave") == before + 1
    # the HTTP sign-in shares the cache, and says who the token belongs to
    url = f"http://127.0.0.1:{databricks_server.settings.http_port}/api/auth/login"
    async with httpx.AsyncClient() as client:
        answer = await client.post(url, json={"databricks_token": "dapi-dave"})
        refused = await client.post(url, json={"databricks_token": "dapi-unknown"})
    assert answer.status_code == 200 and answer.json()["user"]["id"] == "dave@example.com"
    assert refused.status_code == 401
    assert lookups(fake, "dapi-dave") == before + 1


async def test_the_cache_forgets_a_token_after_its_ttl(fake: FakeDatabricks) -> None:
    now = [0.0]
    engine = fake_engine(fake)
    tokens = DatabricksTokens(engine, ttl_s=600, clock=lambda: now[0])
    before = lookups(fake, "dapi-alice")
    assert await tokens.user_of("dapi-alice") == "alice@example.com"
    now[0] = 599.0
    assert await tokens.user_of("dapi-alice") == "alice@example.com"
    assert lookups(fake, "dapi-alice") == before + 1
    now[0] = 601.0
    assert await tokens.user_of("dapi-alice") == "alice@example.com"
    assert lookups(fake, "dapi-alice") == before + 2
    with pytest.raises(InvalidPassword):
        await tokens.user_of("dapi-unknown")
    with pytest.raises(InvalidPassword):  # a failure is not remembered as a success
        await tokens.user_of("dapi-unknown")
    await engine.aclose()


def test_the_service_identity_types_the_catalog(
    databricks_server: InProcessServer, fake: FakeDatabricks
) -> None:
    """The catalog was typed at startup with the configured credentials, not anyone's token."""
    service = [options for options in fake.opened if "access_token" not in options]
    assert service and service[0]["credentials_provider"]()()["Authorization"] == "Bearer dapi-service"
    assert any(token is None for token, _ in fake.ran)


def test_settings_repr_keeps_the_cache_ttl_and_no_secret() -> None:
    settings = replace(Settings(), databricks_token="dapi-secret", databricks_token_cache_minutes=3)
    assert "dapi-secret" not in repr(settings) and "databricks_token_cache_minutes=3" in repr(settings)
