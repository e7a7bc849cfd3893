"""psql 15 (Debian's postgresql-client) in a script of the meta-commands people type first,
a metric query, an error and the recovery after it: exit code 0 and no ERROR but the one."""

from __future__ import annotations

import os
import subprocess

from tests.clients.support import truth
from tests.conftest import RunningServer


def psql_script(server: RunningServer, script: str) -> subprocess.CompletedProcess[str]:
    args = [
        "psql",
        "-X",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        "tester",
        "-d",
        "semantic",
        "-A",
        "-F",
        "|",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    return subprocess.run(args, input=script, capture_output=True, text=True, timeout=60, env=env)


def test_psql_meta_commands_without_an_error(server: RunningServer) -> None:
    out = psql_script(server, "\\l\n\\dn\n\\dt\n\\dt+\n\\d orders\n\\d+ orders\n")
    assert out.returncode == 0, out.stderr
    assert "ERROR" not in out.stderr, out.stderr
    text = out.stdout
    assert "semantic|" in text  # \l
    assert "production|" in text  # \dn
    assert "production|orders|table|" in text  # \dt
    assert "One row per order placed" in text  # \dt+ shows the table comment
    assert 'Table "production.orders"' in text  # \d
    assert "revenue|numeric(38,2)|" in text
    assert "Revenue: Gross order amount" in text  # \d+ shows column comments


def test_psql_metric_query_error_and_recovery(server: RunningServer) -> None:
    script = (
        "SELECT region, MEASURE(order_count) FROM orders GROUP BY region ORDER BY region;\n"
        "SELECT nope FROM orders;\n"
        "SELECT MEASURE(order_count) FROM orders;\n"
        "\\dt orders\n"
    )
    out = psql_script(server, script)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("ERROR:") == 1 and "nope" in out.stderr
    expected = truth(
        server, "SELECT region, count(order_id) FROM main.orders GROUP BY 1 ORDER BY 1 NULLS LAST"
    )
    lines = out.stdout.splitlines()
    rows = [line for line in lines if "|" in line and not line.startswith("region|")][: len(expected)]
    assert rows == [f"{r or ''}|{n}" for r, n in expected]
    ((total,),) = truth(server, "SELECT count(order_id) FROM main.orders")
    assert str(total) in lines
    assert "production|orders|table|semproxy_catalog" in lines
