"""Shared fixtures: the real semproxy server, started as a subprocess on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from semproxy.semantic.registry import Registry
from tests.compiler_fixtures import load_database, load_registry

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "semantic-models"
DEMO_DB = ROOT / "data" / "demo.duckdb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    host: str
    port: int
    http_port: int
    database: Path
    process: subprocess.Popen[bytes]
    log: Path
    state: Path

    @property
    def dsn(self) -> str:
        return f"postgresql://tester@{self.host}:{self.port}/semantic"

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


def wait_for_port(
    host: str, port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"semproxy exited with {process.returncode}:\n{log.read_text()}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"semproxy did not listen on {port} within {timeout}s:\n{log.read_text()}")


def start_server(tmp: Path, *extra: str, models: Path = MODELS, database: Path = DEMO_DB) -> RunningServer:
    port, http_port = free_port(), free_port()
    log = tmp / f"semproxy-{port}.log"
    # the catalog server runs as another user, who must traverse to its state: a directory
    # of our own, not pytest's, whose root a concurrent pytest run makes private again
    state = Path(tempfile.mkdtemp(prefix="semproxy-state-"))
    env = {**os.environ, "SEMPROXY_STATE_DIR": str(state)}
    cmd = [
        sys.executable, "-m", "semproxy", "serve",
        "--models", str(models), "--database", str(database),
        "--port", str(port), "--http-port", str(http_port), *extra,
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
    server = RunningServer("127.0.0.1", port, http_port, database, process, log, state)
    wait_for_port(server.host, port, process, log)
    wait_for_port(server.host, http_port, process, log)
    return server


def stop_server(server: RunningServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
    shutil.rmtree(server.state, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_db() -> Path:
    if not DEMO_DB.exists():
        from semproxy.demo import generate

        generate(DEMO_DB)
    return DEMO_DB


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, demo_db: Path) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server"), database=demo_db)
    yield running
    stop_server(running)


# -- the compiler's tricky dataset (tests/fixtures/correctness), for the compiler tests;
# -- a test module may define its own `registry` (test_engines.py does)
@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    """The correctness dataset in an in-memory DuckDB."""
    connection = load_database()
    yield connection
    connection.close()
