"""One client session's own connection to the catalog server, over the v3 protocol.

The session forwards the catalog server's frames to its client unchanged, so types,
formats, notices and errors are exactly Postgres's. Only the few frontend messages
this module sends itself are packed here; framing is `pg.framing`'s."""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

from semproxy.catalog.server import CatalogEndpoint
from semproxy.errors import SemproxyError
from semproxy.pg.framing import frame, split_frames

_PROTOCOL_3_0 = 196608
_CANCEL_REQUEST = 80877102
_AUTH_OK = 0
_READ_CHUNK = 256 * 1024
# who we log in as is ours to say; `replication` would open a walsender; and query text
# goes out as UTF-8 (a relayed SET client_encoding still changes what comes back)
_STARTUP_RESERVED = frozenset({"user", "database", "replication", "client_encoding"})
# After these, search_path or statement_timeout may differ: SET, RESET, DISCARD, the end of
# a transaction or savepoint (SET LOCAL ends there), and any call of set_config().
_CHANGES_SETTINGS = re.compile(
    r"^\s*(?:SET|RESET|DISCARD|COMMIT|END|ROLLBACK|ABORT|RELEASE)\b|\bset_config\s*\(", re.IGNORECASE
)


class CatalogUnavailable(SemproxyError):
    """The catalog server cannot be reached, or closed the connection."""

    sqlstate = "08006"


class CatalogRefused(SemproxyError):
    """The catalog server refused the session's login; carries the server's SQLSTATE."""

    def __init__(self, fields: Mapping[str, str]) -> None:
        super().__init__(fields.get("M", "the catalog server refused the connection"), detail=fields.get("D"))
        self.sqlstate = fields.get("C", "08004")


class CatalogConnection:
    """One client session's own connection to the catalog server, speaking the v3 protocol.
    Opened on first need, closed with the session.

    Not safe for concurrent use: a session sends one request and reads its answer to the
    end (`simple_query`, `read_until`) before the next."""

    def __init__(
        self, endpoint: CatalogEndpoint, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._endpoint = endpoint
        self._reader = reader
        self._writer = writer
        self._buffer = bytearray()
        self._queued = bytearray()  # frontend frames not yet sent: see queue()
        self.parameters: dict[str, str] = {}  # ParameterStatus as last reported
        self.backend_pid = 0
        self.backend_key = b""
        self._status = "I"

    @classmethod
    async def open(cls, endpoint: CatalogEndpoint, params: Mapping[str, str]) -> CatalogConnection:
        """Log in as the endpoint's user, passing the client's startup parameters through."""
        reader, writer = await _connect(endpoint)
        conn = cls(endpoint, reader, writer)
        try:
            await conn._startup(params)
        except BaseException:
            writer.close()
            raise
        return conn

    @property
    def transaction_status(self) -> str:
        """From the last ReadyForQuery: 'I' idle, 'T' in a transaction, 'E' in a failed one."""
        return self._status

    async def simple_query(self, sql: str) -> AsyncIterator[tuple[bytes, bytes]]:
        """Send Query(sql); yield every frame up to and including ReadyForQuery, unchanged."""
        await self.send_raw(frame(b"Q", sql.encode() + b"\0"))
        async for message in self.read_until({b"Z"}):
            yield message

    def queue(self, frames: bytes) -> None:
        """Send already-framed frontend messages with the next send_raw, or before the next
        read: Parse, Bind, Describe, Execute and Sync of one request leave in one write."""
        self._queued += frames

    async def send_raw(self, frames: bytes = b"") -> None:
        """Send what is queued, then already-framed frontend messages (Parse, Bind, Sync...)."""
        self._queued += frames
        out, self._queued = self._queued, bytearray()
        self._writer.write(out)
        try:
            await self._writer.drain()
        except OSError as err:
            raise CatalogUnavailable(f"lost the catalog server: {err}") from err

    async def read_until(self, stop: set[bytes]) -> AsyncIterator[tuple[bytes, bytes]]:
        """Yield backend frames until one whose type is in `stop`, which is yielded too."""
        while True:
            try:
                frames, used = split_frames(self._buffer)
            except ValueError as err:
                raise CatalogUnavailable(f"malformed message from the catalog server: {err}") from err
            last = next((i for i, (type_, _) in enumerate(frames) if type_ in stop), None)
            if last is not None:
                # frames after the stop stay buffered: they belong to the next reader
                frames = frames[: last + 1]
                used = sum(5 + len(payload) for _, payload in frames)
            del self._buffer[:used]
            for type_, payload in frames:
                self._observe(type_, payload)
                yield type_, payload
            if last is not None:
                return
            if self._queued:  # the answer awaited may be to a queued request
                await self.send_raw()
            await self._fill()

    async def cancel(self) -> None:
        """Ask the server to cancel what this connection runs (a CancelRequest on a new connection)."""
        _, writer = await _connect(self._endpoint)
        try:
            writer.write(struct.pack("!III", 12 + len(self.backend_key), _CANCEL_REQUEST, self.backend_pid))
            writer.write(self.backend_key)
            await writer.drain()
        finally:
            writer.close()
            await writer.wait_closed()

    async def close(self) -> None:
        """Terminate and close; safe to call twice or after the server went away."""
        if self._writer.is_closing():
            return
        with contextlib.suppress(OSError):  # already gone: nothing to terminate
            self._writer.write(frame(b"X"))
            await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _startup(self, params: Mapping[str, str]) -> None:
        startup = {k: v for k, v in params.items() if k not in _STARTUP_RESERVED}
        startup.update(user=self._endpoint.user, database=self._endpoint.database, client_encoding="UTF8")
        body = struct.pack("!I", _PROTOCOL_3_0)
        body += b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in startup.items()) + b"\0"
        await self.send_raw(struct.pack("!I", len(body) + 4) + body)
        async for type_, payload in self.read_until({b"Z", b"E"}):
            if type_ == b"E":
                raise CatalogRefused(parse_fields(payload))
            if type_ == b"R" and struct.unpack_from("!I", payload)[0] != _AUTH_OK:
                raise CatalogUnavailable(
                    "the catalog server asks the session role for a password; semproxy logs in"
                    " to it only where authentication is trust (or peer)"
                )

    def _observe(self, type_: bytes, payload: bytes) -> None:
        if type_ == b"Z":
            self._status = payload.decode()
        elif type_ == b"S":
            name, value, _ = payload.split(b"\0", 2)
            self.parameters[name.decode()] = value.decode()
        elif type_ == b"K":
            self.backend_pid = struct.unpack_from("!I", payload)[0]
            self.backend_key = payload[4:]

    async def _fill(self) -> None:
        try:
            chunk = await self._reader.read(_READ_CHUNK)
        except OSError as err:
            raise CatalogUnavailable(f"lost the catalog server: {err}") from err
        if not chunk:
            raise CatalogUnavailable("the catalog server closed the connection")
        self._buffer += chunk


def changes_settings(sql: str) -> bool:
    """Whether the session's settings must be read back after the catalog server ran `sql`:
    changes_settings("SELECT set_config('search_path', 'public', false)") is True."""
    return _CHANGES_SETTINGS.search(sql) is not None


def parse_fields(payload: bytes) -> dict[str, str]:
    """The fields of an ErrorResponse or NoticeResponse: {'S': 'ERROR', 'C': '42501', 'M': ...}."""
    return {f[:1].decode(): f[1:].decode() for f in payload.split(b"\0") if f}


async def _connect(endpoint: CatalogEndpoint) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        if endpoint.host.startswith("/"):
            path = Path(endpoint.host) / f".s.PGSQL.{endpoint.port}"
            return await asyncio.open_unix_connection(str(path), limit=_READ_CHUNK)
        return await asyncio.open_connection(endpoint.host, endpoint.port, limit=_READ_CHUNK)
    except OSError as err:
        raise CatalogUnavailable(f"cannot reach the catalog server: {err}") from err
