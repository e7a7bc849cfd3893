"""Bytes <-> messages for the server side of the Postgres v3 protocol, sans-IO.

FrontendDecoder is the server's view of a client (startup phase, then typed messages);
`encode` writes backend messages. The client side (BackendDecoder, `encode_frontend`) is
pg.client. Layouts follow the PostgreSQL docs,
"Message Formats"; limits are enforced before anything is allocated for a message."""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from semproxy.errors import ProtocolViolation, SemproxyError
from semproxy.pg import messages as m
from semproxy.pg.framing import MAX_MESSAGE, frame, split_frames

STARTUP_LIMIT = 10000  # Postgres's own MAX_STARTUP_PACKET_LENGTH
PROTOCOL_3_0 = 196608
SSL_CODE, GSSENC_CODE, CANCEL_CODE = 80877103, 80877104, 80877102

I16, I32, U32 = struct.Struct("!h"), struct.Struct("!i"), struct.Struct("!I")
I32X2 = struct.Struct("!ii")
FIELD = struct.Struct("!IhIhih")


class Reader:
    """Reads one message payload; every short read is a ProtocolViolation naming the message."""

    __slots__ = ("buf", "pos", "what")

    def __init__(self, buf: bytes, what: str) -> None:
        self.buf, self.pos, self.what = buf, 0, what

    def _fail(self, why: str) -> ProtocolViolation:
        return ProtocolViolation(f"invalid {self.what} message: {why}")

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise self._fail("truncated")
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def int16(self) -> int:
        return int(I16.unpack(self.take(2))[0])

    def int32(self) -> int:
        return int(I32.unpack(self.take(4))[0])

    def uint32(self) -> int:
        return int(U32.unpack(self.take(4))[0])

    def cstr(self) -> str:
        end = self.buf.find(b"\0", self.pos)
        if end < 0:
            raise self._fail("missing string terminator")
        raw = self.buf[self.pos : end]
        self.pos = end + 1
        try:
            return raw.decode()
        except UnicodeDecodeError as e:
            raise self._fail("invalid UTF-8") from e

    def rest(self) -> bytes:
        return self.take(len(self.buf) - self.pos)

    def done(self, value: Any) -> Any:
        if self.pos != len(self.buf):
            raise self._fail(f"{len(self.buf) - self.pos} unexpected trailing bytes")
        return value


class Frames:
    """Buffered typed frames, split by framing.split_frames, length-checked on arrival."""

    def __init__(self, max_message: int) -> None:
        self.buf = bytearray()
        self.ready: deque[tuple[bytes, bytes]] = deque()
        self.max_message = max_message

    def next_frame(self) -> tuple[bytes, bytes] | None:
        if not self.ready and len(self.buf) >= 5:
            try:
                frames, used = split_frames(self.buf)
            except ValueError as e:
                raise ProtocolViolation(str(e)) from e
            del self.buf[:used]
            # Refuse an oversized message from its header, before its body is buffered.
            if len(self.buf) >= 5 and U32.unpack_from(self.buf, 1)[0] > self.max_message + 4:
                raise ProtocolViolation(f"message of {U32.unpack_from(self.buf, 1)[0]} bytes is too large")
            if any(len(p) > self.max_message for _, p in frames):
                raise ProtocolViolation(f"message larger than {self.max_message} bytes")
            self.ready.extend(frames)
        return self.ready.popleft() if self.ready else None


# ---- frontend decoding ----------------------------------------------------------------------


def _formats(r: Reader) -> tuple[int, ...]:
    return tuple(r.int16() for _ in range(r.int16()))


def _bind(r: Reader) -> m.Bind:
    portal, statement, param_formats = r.cstr(), r.cstr(), _formats(r)
    params: list[bytes | None] = []
    for _ in range(r.int16()):
        n = r.int32()
        params.append(None if n == -1 else r.take(n))
    return m.Bind(portal, statement, param_formats, tuple(params), _formats(r))


def _kind(r: Reader) -> str:
    kind = r.take(1).decode("latin-1")
    if kind not in ("S", "P"):
        raise r._fail(f"unknown kind {kind!r}")
    return kind


_FRONTEND: dict[bytes, tuple[str, Callable[[Reader], Any]]] = {
    b"Q": ("Query", lambda r: m.Query(r.cstr())),
    b"P": ("Parse", lambda r: m.Parse(r.cstr(), r.cstr(), tuple(r.uint32() for _ in range(r.int16())))),
    b"B": ("Bind", _bind),
    b"D": ("Describe", lambda r: m.Describe(_kind(r), r.cstr())),
    b"E": ("Execute", lambda r: m.Execute(r.cstr(), r.int32())),
    b"C": ("Close", lambda r: m.Close(_kind(r), r.cstr())),
    b"S": ("Sync", lambda r: m.Sync()),
    b"H": ("Flush", lambda r: m.Flush()),
    b"X": ("Terminate", lambda r: m.Terminate()),
    b"p": ("PasswordMessage", lambda r: m.PasswordMessage(r.rest())),
    b"d": ("CopyData", lambda r: m.CopyData(r.rest())),
    b"c": ("CopyDone", lambda r: m.CopyDone()),
    b"f": ("CopyFail", lambda r: m.CopyFail(r.cstr())),
}


def _startup(payload: bytes) -> m.FrontendMessage:
    r = Reader(payload, "startup")
    code = r.uint32()
    if code in (SSL_CODE, GSSENC_CODE):
        return r.done(m.SSLRequest() if code == SSL_CODE else m.GSSENCRequest())
    if code == CANCEL_CODE:
        pid, key = r.int32(), r.rest()
        if not 4 <= len(key) <= 256:
            raise r._fail("bad cancel key length")
        return m.CancelRequest(pid, key)
    if code >> 16 != 3:
        raise ProtocolViolation(f"unsupported frontend protocol {code >> 16}.{code & 0xFFFF}")
    params: dict[str, str] = {}
    while (name := r.cstr()) != "":
        params[name] = r.cstr()
    return r.done(m.StartupMessage(code, params))


class FrontendDecoder:
    """Client bytes in, frontend messages out. Starts in the startup phase (untyped messages)
    and reads typed messages once a StartupMessage has been returned."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._frames = Frames(min(max_message, MAX_MESSAGE))
        self._startup = True

    def feed(self, data: bytes) -> None:
        self._frames.buf += data

    def buffered(self) -> int:
        """Bytes received but not yet returned as messages."""
        return len(self._frames.buf) + sum(5 + len(p) for _, p in self._frames.ready)

    def next_message(self) -> m.FrontendMessage | None:
        """The next complete message, or None until more bytes are fed."""
        if self._startup:
            return self._next_startup()
        buf = self._frames.buf
        if not self._frames.ready and buf and bytes(buf[:1]) not in _FRONTEND:
            # refuse an unknown type at once, not after waiting for the length it announces
            raise ProtocolViolation(f"invalid frontend message type {buf[0]}")
        got = self._frames.next_frame()
        if got is None:
            return None
        type_, payload = got
        if type_ not in _FRONTEND:
            raise ProtocolViolation(f"invalid frontend message type {type_[0]}")
        what, decode = _FRONTEND[type_]
        r = Reader(payload, what)
        return r.done(decode(r))  # type: ignore[no-any-return]

    def _next_startup(self) -> m.FrontendMessage | None:
        buf = self._frames.buf
        if len(buf) < 4:
            return None
        (length,) = U32.unpack_from(buf, 0)
        if not 8 <= length <= STARTUP_LIMIT:
            raise ProtocolViolation(f"invalid length of startup packet: {length}")
        if len(buf) < length:
            return None
        msg = _startup(bytes(buf[4:length]))
        del buf[:length]
        self._startup = not isinstance(msg, m.StartupMessage)
        return msg


# ---- backend encoding -----------------------------------------------------------------------


def cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def _fields_payload(fields: dict[str, str]) -> bytes:
    # A NUL inside a value would end it early and corrupt the stream; Postgres never sends one.
    return b"".join(k.encode() + cstr(v.replace("\0", "")) for k, v in fields.items()) + b"\0"


def _auth(code: int, data: bytes = b"") -> bytes:
    return frame(b"R", I32.pack(code) + data)


def _row_description(msg: m.RowDescription) -> bytes:
    parts = [I16.pack(len(msg.fields))]
    for f in msg.fields:
        parts.append(cstr(f.name))
        parts.append(
            FIELD.pack(f.table_oid, f.column_attnum, f.type_oid, f.type_size, f.type_modifier, f.format)
        )
    return frame(b"T", b"".join(parts))


def _data_row(msg: m.DataRow) -> bytes:
    parts = [I16.pack(len(msg.values))]
    for v in msg.values:
        parts.append(b"\xff\xff\xff\xff" if v is None else I32.pack(len(v)) + v)
    return frame(b"D", b"".join(parts))


_READY = {s: frame(b"Z", s.encode()) for s in "ITE"}
_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    m.AuthenticationOk: lambda x: _auth(0),
    m.AuthenticationCleartextPassword: lambda x: _auth(3),
    m.AuthenticationMD5Password: lambda x: _auth(5, x.salt),
    m.AuthenticationSASL: lambda x: _auth(10, b"".join(map(cstr, x.mechanisms)) + b"\0"),
    m.AuthenticationSASLContinue: lambda x: _auth(11, x.data),
    m.AuthenticationSASLFinal: lambda x: _auth(12, x.data),
    m.ParameterStatus: lambda x: frame(b"S", cstr(x.name) + cstr(x.value)),
    m.BackendKeyData: lambda x: frame(b"K", I32.pack(x.pid) + x.key),
    m.ReadyForQuery: lambda x: _READY[x.status],
    m.RowDescription: _row_description,
    m.DataRow: _data_row,
    m.CommandComplete: lambda x: frame(b"C", cstr(x.tag)),
    m.EmptyQueryResponse: lambda x: b"I\0\0\0\4",
    m.ErrorResponse: lambda x: frame(b"E", _fields_payload(x.fields)),
    m.NoticeResponse: lambda x: frame(b"N", _fields_payload(x.fields)),
    m.ParseComplete: lambda x: b"1\0\0\0\4",
    m.BindComplete: lambda x: b"2\0\0\0\4",
    m.CloseComplete: lambda x: b"3\0\0\0\4",
    m.NoData: lambda x: b"n\0\0\0\4",
    m.ParameterDescription: lambda x: frame(
        b"t", I16.pack(len(x.type_oids)) + b"".join(U32.pack(o) for o in x.type_oids)
    ),
    m.PortalSuspended: lambda x: b"s\0\0\0\4",
    m.NegotiateProtocolVersion: lambda x: frame(
        b"v",
        I32X2.pack(0x30000 | x.newest_minor, len(x.unrecognized)) + b"".join(map(cstr, x.unrecognized)),
    ),
    m.CopyOutResponse: lambda x: frame(
        b"H", bytes([x.format]) + I16.pack(len(x.column_formats)) + b"".join(map(I16.pack, x.column_formats))
    ),
    m.CopyData: lambda x: frame(b"d", x.data),
    m.CopyDone: lambda x: b"c\0\0\0\4",
}


def encode(msg: m.BackendMessage) -> bytes:
    """The wire bytes of one backend message: encode(ReadyForQuery('I')) == b'Z\\0\\0\\0\\x05I'."""
    if type(msg) is m.CommandComplete:  # once per statement: skip the table lookup
        return frame(b"C", msg.tag.encode() + b"\0")
    return _ENCODERS[type(msg)](msg)


def error_fields(err: SemproxyError) -> dict[str, str]:
    """ErrorResponse fields of an error: S, V, C, M always; D, H, P when set."""
    fields = {"S": err.severity, "V": err.severity, "C": err.sqlstate, "M": err.message}
    if err.detail is not None:
        fields["D"] = err.detail
    if err.hint is not None:
        fields["H"] = err.hint
    if err.position is not None:
        fields["P"] = str(err.position)
    return fields


def encode_error(err: SemproxyError) -> bytes:
    return frame(b"E", _fields_payload(error_fields(err)))


def encode_notice(
    message: str,
    *,
    severity: str = "NOTICE",
    sqlstate: str = "00000",
    detail: str | None = None,
    hint: str | None = None,
) -> bytes:
    """A NoticeResponse; severity is NOTICE, WARNING, INFO, LOG or DEBUG."""
    fields = {"S": severity, "V": severity, "C": sqlstate, "M": message}
    fields.update({k: v for k, v in (("D", detail), ("H", hint)) if v is not None})
    return frame(b"N", _fields_payload(fields))
