"""node-postgres (npm `pg`, pinned in tests/clients/node/package-lock.json): a parameterized
metric query, a named prepared statement run twice, a catalog query, an error and recovery."""

from __future__ import annotations

import json
import shutil
import subprocess
from decimal import Decimal

import pytest

from tests.clients.support import CLIENTS, truth
from tests.conftest import RunningServer

NODE = CLIENTS / "node"


def test_node_postgres_parameterized_queries(server: RunningServer) -> None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail("node and npm are needed for the node-postgres test")
    if not (NODE / "node_modules" / "pg").exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE, check=True, capture_output=True, timeout=300
        )
    out = subprocess.run(
        ["node", "check.js", server.host, str(server.port)],
        cwd=NODE,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["fields"] == [["region", 25], ["revenue", 1700]]  # text, numeric
    expected = truth(
        server,
        "SELECT region, sum(amount) FROM main.orders WHERE order_date >= DATE '2024-01-01' "
        "AND status <> 'cancelled' GROUP BY 1 ORDER BY 1 NULLS LAST",
    )
    assert [(r["region"], Decimal(r["revenue"])) for r in got["rows"]] == expected
    for channel, rows in zip(["web", "store"], got["named"], strict=True):
        by_status = truth(
            server,
            "SELECT status, count(order_id) FROM main.orders WHERE channel = ? GROUP BY 1 ORDER BY 1",
            [channel],
        )
        assert [(r["status"], int(r["n"])) for r in rows] == by_status
    assert {"orders", "customers", "metrics"} <= set(got["tables"])
    assert got["error"] == "42703" and got["after"] == 1
