"""pgjdbc's DatabaseMetaData, as DBeaver, Metabase and Tableau's JDBC connection read it,
driven by tests/clients/java/MetaDataCheck.java compiled here against Debian's driver."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.clients.support import CLIENTS, truth
from tests.conftest import RunningServer

JDBC_JAR = Path("/usr/share/java/postgresql.jar")


@pytest.fixture(scope="module")
def metadata(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    if not JDBC_JAR.exists() or shutil.which("javac") is None:
        pytest.fail("pgjdbc (libpostgresql-jdbc-java) and javac are needed: run `make system-deps`")
    classes = tmp_path_factory.mktemp("jdbc")
    source = CLIENTS / "java" / "MetaDataCheck.java"
    subprocess.run(["javac", "-cp", str(JDBC_JAR), "-d", str(classes), str(source)], check=True, timeout=120)
    out = subprocess.run(
        ["java", "-cp", f"{JDBC_JAR}:{classes}", "MetaDataCheck", f"{server.host}:{server.port}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def facts(lines: list[str], kind: str) -> list[list[str]]:
    return [line[len(kind) + 1 :].split("|") for line in lines if line.startswith(kind + " ")]


def test_connects_and_reports_the_catalog_version(metadata: list[str]) -> None:
    assert "valid true" in metadata
    assert any(line.startswith("product PostgreSQL ") for line in metadata)


def test_schemas_and_tables_with_remarks(metadata: list[str]) -> None:
    assert {"production", "public"} <= {s[0] for s in facts(metadata, "schema")}
    tables = {t[0]: t for t in facts(metadata, "table")}
    assert {"orders", "customers", "metrics"} <= set(tables)
    assert tables["orders"][1] == "TABLE"
    assert tables["orders"][2].startswith("One row per order")


def test_columns_names_types_order_and_remarks(metadata: list[str]) -> None:
    columns = {c[0]: c for c in facts(metadata, "column")}
    assert [c[0] for c in facts(metadata, "column")][:4] == ["region", "status", "channel", "order_date"]
    assert columns["region"][1:3] == ["text", "12"]  # java.sql.Types.VARCHAR
    assert columns["order_date"][1:3] == ["date", "91"]
    assert columns["revenue"][1:3] == ["numeric", "2"]
    assert columns["order_count"][1:3] == ["int8", "-5"]
    assert columns["avg_order_value"][1:3] == ["float8", "8"]
    assert columns["revenue"][4].startswith("Revenue: Gross order amount")
    assert sorted(int(c[3]) for c in columns.values()) == list(range(1, len(columns) + 1))


def test_keys_indexes_and_type_info(metadata: list[str]) -> None:
    assert "primary keys 0" in metadata and "imported keys 0" in metadata and "indexes 0" in metadata
    types = {t[0] for t in facts(metadata, "type")}
    assert {"int8", "numeric", "text", "date", "timestamp", "bool", "float8"} <= types


def test_error_sqlstate_then_the_connection_still_answers(server: RunningServer, metadata: list[str]) -> None:
    assert "error 42703" in metadata
    assert "result columns status|text|n|int8" in metadata
    expected = truth(server, "SELECT status, count(order_id) FROM main.orders GROUP BY 1 ORDER BY 1")
    assert facts(metadata, "row") == [[s, str(n)] for s, n in expected]
