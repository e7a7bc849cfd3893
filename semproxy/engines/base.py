"""The engine seam: the only interface the rest of semproxy sees of a warehouse.

An engine runs warehouse SQL (already in its dialect) and yields Arrow record batches
as they arrive. Blocking drivers run in threads inside the engine module; no other
module knows threads exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import pyarrow as pa


class Engine(Protocol):
    dialect: str  # a sqlglot dialect name: duckdb | databricks | spark | postgres

    def execute(self, sql: str) -> AsyncIterator[pa.RecordBatch]:
        """Run `sql` and yield its result batch by batch (at least one batch, maybe empty).

        Closing the iterator early, or cancelling the task that iterates it, must stop the
        statement in the warehouse: that is how a CancelRequest and a client that hangs up
        reach the engine."""
        ...

    async def describe(self, sql: str) -> pa.Schema:
        """The result schema of `sql` without fetching its rows."""
        ...

    async def health(self) -> None:
        """Return when the engine answers a trivial query; raise EngineError otherwise."""
        ...

    async def aclose(self) -> None: ...
