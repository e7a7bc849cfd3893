"""The engines, one module each, behind `base.Engine`; `create_engine` picks one by name.

    engine = create_engine(settings)   # settings.engine: duckdb | postgres | spark | databricks

Each engine's driver is imported only when that engine is chosen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semproxy.errors import ConfigError

if TYPE_CHECKING:
    from semproxy.config import Settings
    from semproxy.engines.base import Engine


def create_engine(settings: Settings) -> Engine:
    timeout = float(settings.engine_timeout) if settings.engine_timeout > 0 else None
    if settings.engine == "duckdb":
        from semproxy.engines.duckdb import DuckDBEngine

        return DuckDBEngine(settings.database)
    if settings.engine == "postgres":
        from semproxy.engines.postgres import PostgresEngine

        return PostgresEngine(settings.database, timeout=timeout)
    if settings.engine == "spark":
        from semproxy.engines.spark import SparkEngine

        return SparkEngine(settings.database, timeout=timeout)
    if settings.engine == "databricks":
        from semproxy.engines.databricks import DEFAULT_TIMEOUT_S, DatabricksEngine, DatabricksTarget

        target = DatabricksTarget(
            host=settings.databricks_host,
            http_path=settings.databricks_http_path,
            warehouse_id=settings.databricks_warehouse_id,
            token=settings.databricks_token,
            client_id=settings.databricks_client_id,
            client_secret=settings.databricks_client_secret,
            profile=settings.databricks_profile,
        )
        return DatabricksEngine(target, timeout=timeout or DEFAULT_TIMEOUT_S)
    raise ConfigError(f"unknown engine {settings.engine!r}")
