"""The compiler's test dataset: semantic models and DuckDB data with known traps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import yaml

from semproxy.semantic.model import SemanticModel
from semproxy.semantic.registry import Category, Registry

HERE = Path(__file__).parent / "fixtures" / "correctness"


def load_registry() -> Registry:
    models = [
        SemanticModel.model_validate(yaml.safe_load(p.read_text()))
        for p in sorted((HERE / "models").glob("*.yaml"))
    ]
    return Registry(categories={"production": Category("production", {m.name: m for m in models})})


def load_database() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute((HERE / "data.sql").read_text())
    return con


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    """Rows of `sql`, sorted (with NULLs first) so results compare whatever their order."""
    return sorted(con.execute(sql).fetchall(), key=lambda r: tuple((v is not None, v) for v in r))
