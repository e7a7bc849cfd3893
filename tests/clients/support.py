"""What the client tests share: hand-written answers from the same DuckDB file, and the
catalog SQL fixtures of BI tools (tests/clients/catalog/*.sql)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from tests.conftest import RunningServer

CLIENTS = Path(__file__).resolve().parent
MARKER = "-- message:"


def truth(server: RunningServer, sql: str, params: Sequence[object] = ()) -> list[tuple]:
    """Rows of hand-written SQL over the warehouse tables the demo models read."""
    with duckdb.connect(str(server.database), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@dataclass(frozen=True)
class Message:
    """One message a tool sends: its SQL, the column names of each of its results (an empty
    list for a statement without rows) and, for pgjdbc's Parse/Bind, its parameters."""

    label: str
    sql: str
    columns: list[list[str]]
    params: list[str] | None


def messages(path: Path) -> list[Message]:
    """The messages of a fixture file: each starts at a line
    `-- message: <label> | columns: a, b ; c | params: ["x"]` and runs to the next one."""
    out: list[Message] = []
    text = path.read_text()
    for chunk in text.split("\n" + MARKER)[1:]:
        header, _, sql = chunk.partition("\n")
        parts = [p.strip() for p in header.split("|")]
        fields = dict(p.split(":", 1) for p in parts[1:])
        columns = [
            [c.strip() for c in result.split(",") if c.strip()] for result in fields["columns"].split(";")
        ]
        params = json.loads(fields["params"]) if "params" in fields else None
        out.append(Message(parts[0], sql.strip(), columns, params))
    return out
