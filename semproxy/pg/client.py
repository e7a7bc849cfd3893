"""The client side of the Postgres v3 protocol, sans-IO: backend messages decoded
(BackendDecoder, for the catalog relay and tests) and frontend messages encoded
(`encode_frontend`). Framing and payload reading are pg.codec's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from semproxy.errors import ProtocolViolation
from semproxy.pg import messages as m
from semproxy.pg.codec import (
    CANCEL_CODE,
    FIELD,
    GSSENC_CODE,
    I16,
    I32,
    I32X2,
    SSL_CODE,
    U32,
    Frames,
    Reader,
    cstr,
)
from semproxy.pg.framing import MAX_MESSAGE, frame
from semproxy.pg.types import Field


def _fields(r: Reader) -> dict[str, str]:
    fields: dict[str, str] = {}
    while (code := r.take(1)) != b"\0":
        fields[code.decode("latin-1")] = r.cstr()
    return fields


def _row_fields(r: Reader) -> m.RowDescription:
    fields = []
    for _ in range(r.int16()):
        name = r.cstr()
        table, attnum, oid, size, typmod, fmt = FIELD.unpack(r.take(FIELD.size))
        fields.append(Field(name, oid, size, typmod, fmt, table, attnum))
    return m.RowDescription(tuple(fields))


def _values(r: Reader) -> m.DataRow:
    values: list[bytes | None] = []
    for _ in range(r.int16()):
        n = r.int32()
        values.append(None if n == -1 else r.take(n))
    return m.DataRow(tuple(values))


def _authentication(r: Reader) -> m.BackendMessage:
    code = r.int32()
    if code == 10:
        mechanisms = []
        while (name := r.cstr()) != "":
            mechanisms.append(name)
        return m.AuthenticationSASL(tuple(mechanisms))
    if code in (0, 3):
        return m.AuthenticationOk() if code == 0 else m.AuthenticationCleartextPassword()
    if code == 5:
        return m.AuthenticationMD5Password(r.take(4))
    if code in (11, 12):
        return m.AuthenticationSASLContinue(r.rest()) if code == 11 else m.AuthenticationSASLFinal(r.rest())
    raise r._fail(f"unsupported authentication request {code}")


def _negotiate(r: Reader) -> m.NegotiateProtocolVersion:
    newest, n = r.int32(), r.int32()
    return m.NegotiateProtocolVersion(newest & 0xFFFF, tuple(r.cstr() for _ in range(n)))


_BACKEND: dict[bytes, tuple[str, Callable[[Reader], Any]]] = {
    b"R": ("Authentication", _authentication),
    b"S": ("ParameterStatus", lambda r: m.ParameterStatus(r.cstr(), r.cstr())),
    b"K": ("BackendKeyData", lambda r: m.BackendKeyData(r.int32(), r.rest())),
    b"Z": ("ReadyForQuery", lambda r: m.ReadyForQuery(r.take(1).decode("latin-1"))),
    b"T": ("RowDescription", _row_fields),
    b"D": ("DataRow", _values),
    b"C": ("CommandComplete", lambda r: m.CommandComplete(r.cstr())),
    b"I": ("EmptyQueryResponse", lambda r: m.EmptyQueryResponse()),
    b"E": ("ErrorResponse", lambda r: m.ErrorResponse(_fields(r))),
    b"N": ("NoticeResponse", lambda r: m.NoticeResponse(_fields(r))),
    b"1": ("ParseComplete", lambda r: m.ParseComplete()),
    b"2": ("BindComplete", lambda r: m.BindComplete()),
    b"3": ("CloseComplete", lambda r: m.CloseComplete()),
    b"n": ("NoData", lambda r: m.NoData()),
    b"t": (
        "ParameterDescription",
        lambda r: m.ParameterDescription(tuple(r.uint32() for _ in range(r.int16()))),
    ),
    b"s": ("PortalSuspended", lambda r: m.PortalSuspended()),
    b"v": ("NegotiateProtocolVersion", _negotiate),
    b"H": (
        "CopyOutResponse",
        lambda r: m.CopyOutResponse(r.take(1)[0], tuple(r.int16() for _ in range(r.int16()))),
    ),
    b"d": ("CopyData", lambda r: m.CopyData(r.rest())),
    b"c": ("CopyDone", lambda r: m.CopyDone()),
}


class BackendDecoder:
    """Server bytes in, backend messages (next_message) or raw frames (next_frame) out."""

    def __init__(self, max_message: int = MAX_MESSAGE) -> None:
        self._frames = Frames(min(max_message, MAX_MESSAGE))

    def feed(self, data: bytes) -> None:
        self._frames.buf += data

    def next_frame(self) -> tuple[bytes, bytes] | None:
        """(type byte, payload) of the next complete message, undecoded, for relaying."""
        return self._frames.next_frame()

    def next_message(self) -> m.BackendMessage | None:
        got = self._frames.next_frame()
        if got is None:
            return None
        return decode_backend(*got)


def decode_backend(type_: bytes, payload: bytes) -> m.BackendMessage:
    """One backend message from its frame, as returned by BackendDecoder.next_frame."""
    if type_ not in _BACKEND:
        raise ProtocolViolation(f"unsupported backend message type {type_!r}")
    what, decode = _BACKEND[type_]
    r = Reader(payload, what)
    return r.done(decode(r))  # type: ignore[no-any-return]


def _untyped(payload: bytes) -> bytes:
    return I32.pack(len(payload) + 4) + payload


def _bind_payload(x: m.Bind) -> bytes:
    parts = [cstr(x.portal), cstr(x.statement), I16.pack(len(x.param_formats))]
    parts += [I16.pack(f) for f in x.param_formats]
    parts.append(I16.pack(len(x.params)))
    parts += [b"\xff\xff\xff\xff" if p is None else I32.pack(len(p)) + p for p in x.params]
    parts.append(I16.pack(len(x.result_formats)))
    parts += [I16.pack(f) for f in x.result_formats]
    return b"".join(parts)


_FRONTEND_ENCODERS: dict[type, Callable[[Any], bytes]] = {
    m.StartupMessage: lambda x: _untyped(
        I32.pack(x.protocol) + b"".join(cstr(k) + cstr(v) for k, v in x.params.items()) + b"\0"
    ),
    m.SSLRequest: lambda x: _untyped(I32.pack(SSL_CODE)),
    m.GSSENCRequest: lambda x: _untyped(I32.pack(GSSENC_CODE)),
    m.CancelRequest: lambda x: _untyped(I32X2.pack(CANCEL_CODE, x.pid) + x.key),
    m.Query: lambda x: frame(b"Q", cstr(x.sql)),
    m.Parse: lambda x: frame(
        b"P",
        cstr(x.name) + cstr(x.sql) + I16.pack(len(x.param_types)) + b"".join(map(U32.pack, x.param_types)),
    ),
    m.Bind: lambda x: frame(b"B", _bind_payload(x)),
    m.Describe: lambda x: frame(b"D", x.kind.encode() + cstr(x.name)),
    m.Execute: lambda x: frame(b"E", cstr(x.portal) + I32.pack(x.max_rows)),
    m.Close: lambda x: frame(b"C", x.kind.encode() + cstr(x.name)),
    m.Sync: lambda x: b"S\0\0\0\4",
    m.Flush: lambda x: b"H\0\0\0\4",
    m.Terminate: lambda x: b"X\0\0\0\4",
    m.PasswordMessage: lambda x: frame(b"p", x.data),
    m.CopyData: lambda x: frame(b"d", x.data),
    m.CopyDone: lambda x: b"c\0\0\0\4",
    m.CopyFail: lambda x: frame(b"f", cstr(x.message)),
}


def encode_frontend(msg: m.FrontendMessage) -> bytes:
    """The wire bytes of one frontend message: encode_frontend(Sync()) == b'S\\0\\0\\0\\x04'."""
    return _FRONTEND_ENCODERS[type(msg)](msg)
