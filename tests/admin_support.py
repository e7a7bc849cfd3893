"""Fixtures of the HTTP port's tests: a Server built in-process over a copy of the models,
the demo DuckDB and a real catalog server, and an httpx client on its ASGI app.

Import the fixtures into a test module with `from tests.admin_support import *  # noqa`."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from semproxy.admin.app import create_app
from semproxy.auth.tokens import User, issue_token
from semproxy.auth.users import UsersFile
from semproxy.catalog.server import CatalogServer
from semproxy.config import Settings
from semproxy.engines.duckdb import DuckDBEngine
from semproxy.semantic.registry import Registry
from semproxy.server import Server
from tests.conftest import DEMO_DB, MODELS

SECRET = "test-secret-key-that-is-long-enough-for-hs256"
PASSWORD = "s3cret-pa55word"
ROLES = {"reader": ("user",), "analyst": ("analyst",), "engineer": ("engineer",), "admin": ("admin",)}


@dataclass
class Admin:
    server: Server
    client: httpx.AsyncClient
    root: Path

    @property
    def settings(self) -> Settings:
        return self.server.settings

    def headers(self, role: str = "admin") -> dict[str, str]:
        token = issue_token(User(role, f"{role}@example.com", ROLES[role]), self.settings)
        return {"Authorization": f"Bearer {token}"}


def write_users(path: Path) -> None:
    users = UsersFile(path)
    for name in ROLES:
        users.add(name, PASSWORD)


@contextmanager
def private_tmp() -> Iterator[Path]:
    """A folder for a catalog server's state: not under pytest's tmp_path, because as root
    the server runs as another user that must traverse the path, and any pytest session
    started meanwhile (a colleague's) makes /tmp/pytest-of-root private again."""
    path = Path(tempfile.mkdtemp(prefix="semproxy-admin-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def private_dir() -> Iterator[Path]:
    with private_tmp() as path:
        yield path


@pytest_asyncio.fixture(scope="session")
async def admin_catalog(private_dir: Path, demo_db: Path) -> AsyncIterator[CatalogServer]:
    catalog = await CatalogServer.start(private_dir / "state")
    yield catalog
    await catalog.stop()


def admin_settings(tmp_path: Path, **changes: object) -> Settings:
    root = tmp_path / "models"
    if not root.exists():
        shutil.copytree(MODELS, root)
    users = tmp_path / "users"
    write_users(users)
    roles = ";".join(f"{name}={','.join(r)}" for name, r in ROLES.items())
    base = Settings(models=root, database=str(DEMO_DB), secret_key=SECRET, users=str(users), user_roles=roles)
    return replace(base, **changes)  # type: ignore[arg-type]


async def build_admin(settings: Settings, catalog: CatalogServer) -> tuple[Server, httpx.AsyncClient]:
    registry = Registry.load(settings.models)
    server = Server(settings, registry, DuckDBEngine(settings.database), catalog)
    await server.install(registry)
    transport = httpx.ASGITransport(app=create_app(server))
    return server, httpx.AsyncClient(transport=transport, base_url="http://semproxy.test")


@pytest_asyncio.fixture
async def admin(tmp_path: Path, admin_catalog: CatalogServer) -> AsyncIterator[Admin]:
    settings = admin_settings(tmp_path)
    server, client = await build_admin(settings, admin_catalog)
    async with client:
        yield Admin(server, client, settings.models)
    await server.engine.aclose()
