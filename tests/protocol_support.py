"""Shared pieces of the protocol tests: a models directory with a slow model and a staging
category, TLS certificates made with openssl, users files written by `semproxy users add`,
servers started with extra flags and environment, and raw-socket helpers."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from semproxy.pg import messages as m
from semproxy.pg.client import BackendDecoder, encode_frontend
from tests.conftest import DEMO_DB, MODELS, ROOT, RunningServer, start_server, stop_server

PASSWORD = "correct horse battery staple"

SLOW_MODEL = """\
name: slow
description: A cross join that runs for many seconds, for cancel and timeout tests.
sql: SELECT a.range AS id, b.range % 7 AS bucket FROM range(100000) a, range(300000) b
entities:
  - name: slow_row
    type: primary
    expr: id
dimensions:
  - name: bucket
    type: categorical
measures:
  - name: slow_total
    agg: sum
    expr: id
"""
STAGING_ORDERS = """\
name: orders
description: The staging version of orders, with a measure production does not have.
model: main.orders
entities:
  - name: order
    type: primary
    expr: order_id
dimensions:
  - name: region
    type: categorical
measures:
  - name: staged_orders
    agg: count
    expr: order_id
"""
SLOW_QUERY = "SELECT bucket, MEASURE(slow_total) FROM slow GROUP BY 1"


def make_models(root: Path) -> Path:
    """The demo production models plus `slow`, and a `staging` category with its own orders."""
    shutil.copytree(MODELS / "production", root / "production")
    (root / "production" / "slow.yaml").write_text(SLOW_MODEL)
    (root / "staging").mkdir()
    (root / "staging" / "orders.yaml").write_text(STAGING_ORDERS)
    return root


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def add_user(users: Path, name: str, password: str = PASSWORD) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "semproxy", "users", "add", "--users", str(users), name],
        input=password + "\n", capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


@contextmanager
def running(
    tmp: Path, *flags: str, env: dict[str, str] | None = None, models: Path = MODELS
) -> Iterator[RunningServer]:
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        server = start_server(tmp, *flags, models=models, database=DEMO_DB)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    try:
        yield server
    finally:
        stop_server(server)


def dsn(server: RunningServer, user: str = "tester", password: str | None = None, **extra: str) -> str:
    parts = {"host": server.host, "port": str(server.port), "user": user, "dbname": "semantic", **extra}
    if password is not None:
        parts["password"] = password
    return " ".join(f"{k}='{v}'" for k, v in parts.items())


def psql(conninfo: str, *commands: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    args = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", conninfo]
    for command in commands:
        args += ["-c", command]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(args, input=stdin, capture_output=True, text=True, timeout=60, env=env)


STARTUP = encode_frontend(m.StartupMessage(196608, {"user": "tester", "database": "semantic"}))


def raw_connect(server: RunningServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=10)
    return sock


def read_messages(
    sock: socket.socket, until: type = m.ReadyForQuery, limit: int = 1000
) -> list[m.BackendMessage]:
    """Backend messages until one of type `until` (included) or the server closes."""
    decoder, out = BackendDecoder(), []
    while len(out) < limit:
        while (msg := decoder.next_message()) is not None:
            out.append(msg)
            if isinstance(msg, until):
                return out
        data = sock.recv(65536)
        if not data:
            return out
        decoder.feed(data)
    return out


def cancel_request(server: RunningServer, pid: int, key: bytes) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as s:
        s.sendall(struct.pack("!iii", 16, 80877102, pid) + key)
        s.recv(1)  # the server closes without a word
