"""Real warehouses for the engine suite, loaded with the demo tables, and a faithful fake
of the Databricks SQL connector (the only part that cannot run here).

- `start_postgres_warehouse` / `load_postgres`: an embedded PostgreSQL (the catalog
  server's binaries) with the demo tables in schema `main`;
- `SparkConnectServer`: the Connect server shipped in the pyspark wheel, as a child
  process, with the demo tables in database `main`;
- `FakeDatabricks`: `databricks.sql.connect(...)` -> connection -> cursor, running the SQL
  on DuckDB after transpiling databricks -> duckdb, returning real Arrow tables. Like a
  workspace, it knows whose each token is: `current_user()` names the connection's user,
  an unknown personal access token is refused when the connection opens, and `ran`
  records which token ran each statement.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import threading
import time
from collections import namedtuple
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlglot
from sqlglot import exp

from semproxy.catalog.server import CatalogServer
from semproxy.pg.types import pg_type_name

DEMO_TABLES = ("customers", "products", "orders", "order_items", "refunds")


def demo_tables(demo_db: Path) -> dict[str, pa.Table]:
    with duckdb.connect(str(demo_db), read_only=True) as con:
        return {name: con.table(f"main.{name}").to_arrow_table() for name in DEMO_TABLES}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- PostgreSQL ----


async def start_postgres_warehouse(directory: Path, demo_db: Path) -> CatalogServer:
    """An embedded PostgreSQL in `directory`, database `warehouse`, holding the demo tables."""
    server = await CatalogServer.start(directory, database="warehouse")
    conn = await server.connect_admin()
    try:
        await load_postgres(conn, demo_tables(demo_db))
    finally:
        await conn.close()
    return server


def warehouse_dsn(server: CatalogServer) -> str:
    """The DSN of a `start_postgres_warehouse` server, over its unix socket."""
    ep = server.endpoint
    return f"postgresql://{ep.admin_user}@/{ep.database}?host={ep.host}&port={ep.port}"


async def load_postgres(conn: Any, tables: dict[str, pa.Table]) -> None:
    """Create schema main and COPY the demo tables into it."""
    await conn.execute("CREATE SCHEMA IF NOT EXISTS main")
    for name, table in tables.items():
        columns = [
            exp.ColumnDef(
                this=exp.to_identifier(f.name, quoted=True),
                kind=exp.DataType.build(pg_type_name(f.type), dialect="postgres"),
            )
            for f in table.schema
        ]
        create = exp.Create(
            this=exp.Schema(this=exp.table_(name, db="main", quoted=True), expressions=columns), kind="TABLE"
        )
        await conn.execute(create.sql(dialect="postgres"))
        data = io.BytesIO()
        pa_csv.write_csv(table, data, pa_csv.WriteOptions(include_header=False))  # null: empty, unquoted
        data.seek(0)
        await conn.copy_to_table(name, source=data, schema_name="main", format="csv")
    await conn.execute("COMMENT ON TABLE main.orders IS 'One row per order'")
    await conn.execute("ANALYZE")


# ---- Spark Connect ----


class SparkConnectServer:
    """`start-connect-server.sh --wait` as our child process on a free port."""

    def __init__(self, workdir: Path) -> None:
        import pyspark

        self.home = Path(pyspark.__file__).parent
        self.port = free_port()
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in = 0.0

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        began = time.monotonic()
        env = {
            **os.environ,
            "SPARK_HOME": str(self.home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOG_DIR": str(self.workdir),
            "SPARK_PID_DIR": str(self.workdir),
            "TZ": "UTC",
        }
        cmd = [
            str(self.home / "sbin" / "start-connect-server.sh"), "--wait",
            "--driver-memory", "2g",
            "--conf", f"spark.connect.grpc.binding.port={self.port}",
            "--conf", "spark.sql.session.timeZone=UTC",
            "--conf", "spark.ui.enabled=false",
            "--conf", "spark.sql.shuffle.partitions=4",
            "--conf", f"spark.sql.warehouse.dir={self.workdir / 'warehouse'}",
            "--conf", f"spark.driver.extraJavaOptions=-Dderby.system.home={self.workdir}",
        ]  # fmt: skip
        log = (self.workdir / "connect.log").open("wb")
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.workdir, start_new_session=True
        )
        deadline = began + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"Spark Connect exited:\n{(self.workdir / 'connect.log').read_text()[-3000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    self.started_in = time.monotonic() - began
                    return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("Spark Connect did not open its port in time")

    def load(self, tables: dict[str, pa.Table]) -> None:
        from pyspark.sql.connect.session import SparkSession

        spark = SparkSession.builder.remote(self.url).create()
        try:
            spark.sql("CREATE DATABASE IF NOT EXISTS main")
            for name, table in tables.items():
                spark.createDataFrame(table).write.mode("overwrite").saveAsTable(f"main.{name}")
            spark.sql("COMMENT ON TABLE main.orders IS 'One row per order'")
        finally:
            spark.stop()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()


# ---- the Databricks SQL connector, faked at its boundary ----

Row = namedtuple("Row", ["TABLE_CAT", "TABLE_SCHEM", "TABLE_NAME", "COLUMN_NAME", "TYPE_NAME", "REMARKS"])


class FakeRequestError(Exception):
    """Stands for databricks.sql.exc.RequestError (patched in by the test)."""


SERVICE_USER = "semproxy-service@example.com"  # whom the configured credentials sign in as


class FakeDatabricks:
    """`connect(**options)` as `databricks.sql.connect`: records the options each connection
    was opened with; `dead_connections` makes the next N statements fail as a dropped
    connection would; `reachable = False` makes connecting fail. `users` maps personal
    access tokens to user names (None: any token is someone's); a connection with
    `access_token` of no user is refused, as the workspace answers 403 to OpenSession."""

    def __init__(
        self, database: Path, request_error: type[Exception], users: dict[str, str] | None = None
    ) -> None:
        self.db = duckdb.connect(str(database), read_only=True)
        self.request_error = request_error
        self.users = users
        self.opened: list[dict[str, Any]] = []
        self.dead_connections = 0
        self.reachable = True
        self.statements: list[str] = []
        self.ran: list[tuple[str | None, str]] = []  # (access token or None for the service, statement)

    def connect(self, **options: Any) -> FakeConnection:
        if not self.reachable:
            raise self.request_error("Error during request to server: connection refused")
        token = options.get("access_token")
        if token is None:
            user = SERVICE_USER
        elif self.users is None:
            user = "someone@example.com"
        elif token in self.users:
            user = self.users[token]
        else:
            raise self.request_error("Error during request to server: 403 Forbidden: Invalid access token")
        self.opened.append(options)
        return FakeConnection(self, token, user)


class FakeConnection:
    def __init__(self, fake: FakeDatabricks, token: str | None, user: str) -> None:
        self.fake = fake
        self.token = token
        self.user = user
        self.open = True

    def cursor(self) -> FakeCursor:
        assert self.open, "cursor() on a closed connection"
        return FakeCursor(self)

    def close(self) -> None:
        self.open = False


class FakeCursor:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn
        self.duck = conn.fake.db.cursor()
        self.reader: pa.RecordBatchReader | None = None
        self.rows: list[Row] = []
        self.lock = threading.Lock()
        self.closed = False

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def execute(self, operation: str) -> FakeCursor:
        fake = self.conn.fake
        if fake.dead_connections:
            fake.dead_connections -= 1
            raise fake.request_error("Error during request to server: connection reset by peer")
        fake.statements.append(operation)
        fake.ran.append((self.conn.token, operation))
        sql = _to_duckdb(operation, self.conn.user)
        from databricks.sql.exc import ServerOperationError

        try:
            self.reader = self.duck.sql(sql).to_arrow_reader(10_000)
        except duckdb.InterruptException as exc:
            raise ServerOperationError("Query execution was canceled") from exc
        except duckdb.Error as exc:
            raise ServerOperationError(str(exc)) from exc
        return self

    def fetchmany_arrow(self, size: int) -> pa.Table:
        assert self.reader is not None
        batches = []
        rows = 0
        try:
            while rows < size:
                batch = self.reader.read_next_batch()
                batches.append(batch)
                rows += batch.num_rows
        except StopIteration:
            pass
        except duckdb.InterruptException as exc:
            from databricks.sql.exc import RequestError

            raise RequestError("Query execution was canceled (CANCELED)") from exc
        return pa.Table.from_batches(batches, schema=self.reader.schema)

    def cancel(self) -> None:
        # the connector's cancel of a closed cursor (no running command) only logs a warning
        with self.lock:
            if not self.closed:
                self.duck.interrupt()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.duck.close()

    # metadata, as the connector's Thrift metadata calls answer them
    def catalogs(self) -> FakeCursor:
        self.rows = [Row("demo", None, None, None, None, None)]
        return self

    def schemas(self, catalog_name: str | None = None, schema_name: str | None = None) -> FakeCursor:
        names = self.duck.sql("SELECT DISTINCT schema_name FROM duckdb_tables() ORDER BY 1").fetchall()
        self.rows = [Row(n, catalog_name, None, None, None, None) for (n,) in names]
        return self

    def tables(self, catalog_name: str | None = None, schema_name: str | None = None, **_: Any) -> FakeCursor:
        found = self.duck.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = ? ORDER BY 1", [schema_name]
        ).fetchall()
        self.rows = [Row(catalog_name, schema_name, n, None, "TABLE", c or "") for n, c in found]
        return self

    def columns(
        self,
        catalog_name: str | None = None,
        schema_name: str | None = None,
        table_name: str | None = None,
        **_: Any,
    ) -> FakeCursor:
        found = self.duck.execute(
            "SELECT column_name, data_type, comment FROM duckdb_columns() WHERE schema_name = ?"
            " AND table_name = ? ORDER BY column_index",
            [schema_name, table_name],
        ).fetchall()
        self.rows = [Row(catalog_name, schema_name, table_name, n, t, c or "") for n, t, c in found]
        return self

    def fetchall(self) -> list[Row]:
        return self.rows


def _to_duckdb(sql: str, user: str) -> str:
    """Databricks SQL as DuckDB runs it. Databricks' PERCENTILE is exact and interpolated
    (DuckDB's quantile_cont); sqlglot writes DuckDB's QUANTILE, which is discrete.
    `current_user()` is the connection's user."""
    tree = sqlglot.parse_one(sql, read="databricks")
    for node in list(tree.find_all(exp.Quantile)):
        node.replace(exp.Anonymous(this="quantile_cont", expressions=[node.this, node.args["quantile"]]))
    for current in list(tree.find_all(exp.CurrentUser)):
        current.replace(exp.Literal.string(user))
    return tree.sql(dialect="duckdb")
