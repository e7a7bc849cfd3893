"""The engine seam: the only interface the rest of semproxy sees of a warehouse.

An engine runs warehouse SQL (already in its dialect) and yields Arrow record batches
as they arrive. Blocking drivers run in threads inside the engine module (see
`threads.py`); no other module knows threads exist.

Errors an engine raises: EngineUnavailable (08006) when the warehouse cannot be
reached (after one transparent retry on a fresh connection), QueryCanceled (57014)
for a cancel or a timeout, EngineError (58000) for anything the warehouse refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa


@dataclass(frozen=True)
class TableInfo:
    """A table or view as the warehouse lists it, for model authoring."""

    schema: str
    name: str
    comment: str | None = None


@dataclass(frozen=True)
class ColumnInfo:
    """A column: its name, the warehouse's own type name ('DECIMAL(12,2)', 'numeric(12,2)') and comment."""

    name: str
    type: str
    comment: str | None = None


class Engine(Protocol):
    dialect: str  # a sqlglot dialect name: duckdb | databricks | spark | postgres
    # whose permissions statements run with: "" for the service's own credentials; results
    # cached across sessions (result schemas) are kept apart per principal
    principal: str

    def execute(self, sql: str) -> AsyncIterator[pa.RecordBatch]:
        """Run `sql` and yield its result batch by batch (at least one batch, maybe empty).

        Closing the iterator early, or cancelling the task that iterates it, must stop the
        statement in the warehouse: that is how a CancelRequest and a client that hangs up
        reach the engine."""
        ...

    async def describe(self, sql: str) -> pa.Schema:
        """The result schema of `sql` without fetching its rows."""
        ...

    async def cancel(self) -> None:
        """Stop every statement this engine is running now (their iterators raise QueryCanceled)."""
        ...

    async def health(self) -> None:
        """Return when the engine answers a trivial query; raise EngineError otherwise."""
        ...

    async def aclose(self) -> None:
        """Cancel what runs and release every connection."""
        ...

    async def list_catalogs(self) -> list[str]: ...

    async def list_schemas(self, catalog: str | None = None) -> list[str]: ...

    async def list_tables(self, schema: str, catalog: str | None = None) -> list[TableInfo]: ...

    async def list_columns(self, table: str, schema: str, catalog: str | None = None) -> list[ColumnInfo]:
        """The columns of one table, in table order."""
        ...
