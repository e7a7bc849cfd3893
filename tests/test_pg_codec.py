"""Byte-exact encode/decode of every message, checked against layouts written out by hand
from the PostgreSQL docs ("Message Formats")."""

from __future__ import annotations

import struct

import pytest

from semproxy.errors import ProtocolViolation, SyntaxError_
from semproxy.pg import messages as m
from semproxy.pg.client import BackendDecoder, decode_backend, encode_frontend
from semproxy.pg.codec import FrontendDecoder, encode, encode_error, encode_notice, error_fields
from semproxy.pg.types import Field

STARTUP = b"\0\0\0\x22\0\x03\0\0user\0alice\0database\0shop\0\0"
# A client that authenticated and sent one simple and one extended query.
FRONTEND: list[tuple[bytes, m.FrontendMessage]] = [
    (b"Q\0\0\0\x0dSELECT 1\0", m.Query("SELECT 1")),
    (
        b"P\0\0\0\x17s1\0SELECT $1\0\0\x01\0\0\0\x17",
        m.Parse("s1", "SELECT $1", (23,)),
    ),
    (
        b"B\0\0\0\x1ep1\0s1\0\0\x01\0\x01\0\x02\0\0\0\x02hi\xff\xff\xff\xff\0\x01\0\x01",
        m.Bind("p1", "s1", (1,), (b"hi", None), (1,)),
    ),
    (b"D\0\0\0\x08Pp1\0", m.Describe("P", "p1")),
    (b"D\0\0\0\x06S\0", m.Describe("S", "")),
    (b"E\0\0\0\x0bp1\0\0\0\0\x64", m.Execute("p1", 100)),
    (b"C\0\0\0\x08Ss1\0", m.Close("S", "s1")),
    (b"H\0\0\0\x04", m.Flush()),
    (b"S\0\0\0\x04", m.Sync()),
    (b"p\0\0\0\x0asecret", m.PasswordMessage(b"secret")),
    (b"d\0\0\0\x07abc", m.CopyData(b"abc")),
    (b"c\0\0\0\x04", m.CopyDone()),
    (b"f\0\0\0\x09oops\0", m.CopyFail("oops")),
    (b"X\0\0\0\x04", m.Terminate()),
]


def _all_frontend() -> bytes:
    return STARTUP + b"".join(raw for raw, _ in FRONTEND)


def _drain(dec: FrontendDecoder | BackendDecoder) -> list[object]:
    out: list[object] = []
    while (msg := dec.next_message()) is not None:
        out.append(msg)
    return out


def test_startup_then_typed_messages() -> None:
    dec = FrontendDecoder()
    dec.feed(_all_frontend())
    got = _drain(dec)
    assert got[0] == m.StartupMessage(196608, {"user": "alice", "database": "shop"})
    assert got[1:] == [msg for _, msg in FRONTEND]


def test_one_byte_at_a_time_gives_the_same_messages() -> None:
    dec = FrontendDecoder()
    got: list[object] = []
    for b in _all_frontend():
        dec.feed(bytes([b]))
        got += _drain(dec)
    assert got[1:] == [msg for _, msg in FRONTEND]


@pytest.mark.parametrize(("raw", "msg"), FRONTEND)
def test_encode_frontend_is_byte_exact(raw: bytes, msg: m.FrontendMessage) -> None:
    assert encode_frontend(msg) == raw


def test_untyped_requests() -> None:
    ssl = b"\0\0\0\x08\x04\xd2\x16\x2f"
    gss = b"\0\0\0\x08\x04\xd2\x16\x30"
    cancel = b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\x30\x39\xde\xad\xbe\xef"
    dec = FrontendDecoder()
    dec.feed(ssl + gss + cancel + STARTUP)
    assert _drain(dec)[:3] == [m.SSLRequest(), m.GSSENCRequest(), m.CancelRequest(12345, b"\xde\xad\xbe\xef")]
    assert encode_frontend(m.SSLRequest()) == ssl
    assert encode_frontend(m.GSSENCRequest()) == gss
    assert encode_frontend(m.CancelRequest(12345, b"\xde\xad\xbe\xef")) == cancel
    assert encode_frontend(m.StartupMessage(196608, {"user": "alice", "database": "shop"})) == STARTUP


def test_startup_phase_ends_only_at_startup_message() -> None:
    dec = FrontendDecoder()
    dec.feed(b"\0\0\0\x08\x04\xd2\x16\x2f")
    assert dec.next_message() == m.SSLRequest()
    dec.feed(STARTUP + b"S\0\0\0\x04")
    assert isinstance(dec.next_message(), m.StartupMessage)
    assert dec.next_message() == m.Sync()
    assert dec.next_message() is None


BAD_STARTUP = [
    b"\0\0\0\x04\0\x03\0\0",  # length below 8
    b"\0\x01\0\0",  # length above 10000, refused from the header alone
    b"\0\0\0\x0c\0\x02\0\0user",  # protocol 2.0
    b"\0\0\0\x0d\0\x03\0\0user\0",  # parameter without a value
    b"\0\0\0\x0c\0\x03\0\0u\0v\0",  # no final NUL
    b"\0\0\0\x0c\x04\xd2\x16\x2fxxxx",  # SSLRequest with trailing bytes
    b"\0\0\0\x0d\0\x03\0\0\xff\xfe\0\0\0",  # not UTF-8
]


@pytest.mark.parametrize("raw", BAD_STARTUP)
def test_malformed_startup_raises(raw: bytes) -> None:
    dec = FrontendDecoder()
    dec.feed(raw)
    with pytest.raises(ProtocolViolation):
        dec.next_message()


BAD_TYPED = [
    b"Z\0\0\0\x05I",  # a backend type byte
    b"Q\0\0\0\x03",  # length below 4
    b"Q\xff\xff\xff\xff",  # huge length: refused without waiting for the body
    b"Q\0\0\0\x08abcd",  # no NUL terminator
    b"Q\0\0\0\x08ab\0d",  # bytes after the terminator
    b"E\0\0\0\x07p\0\0\0",  # truncated int32
    b"B\0\0\0\x0d\0\0\0\0\0\x01\0\0\0\x09x",  # parameter longer than the message
    b"D\0\0\0\x06X\0",  # bad Describe kind
    b"S\0\0\0\x05x",  # Sync with a body
]


@pytest.mark.parametrize("raw", BAD_TYPED)
def test_malformed_typed_message_raises(raw: bytes) -> None:
    dec = FrontendDecoder()
    dec.feed(STARTUP)
    dec.next_message()
    dec.feed(raw)
    with pytest.raises(ProtocolViolation):
        dec.next_message()


def test_max_message_is_enforced_from_the_header() -> None:
    dec = FrontendDecoder(max_message=100)
    dec.feed(STARTUP + b"Q\0\0\0\x68")  # 100-byte payload: accepted, waiting for the body
    dec.next_message()
    assert dec.next_message() is None
    dec = FrontendDecoder(max_message=100)
    dec.feed(STARTUP + b"Q\0\0\0\x69")  # 101 bytes: refused before the body arrives
    dec.next_message()
    with pytest.raises(ProtocolViolation, match="too large"):
        dec.next_message()


FIELD = Field("total", 1700, -1, 786438, 0, 16384, 3)
BACKEND: list[tuple[bytes, m.BackendMessage]] = [
    (b"R\0\0\0\x08\0\0\0\0", m.AuthenticationOk()),
    (b"R\0\0\0\x08\0\0\0\x03", m.AuthenticationCleartextPassword()),
    (b"R\0\0\0\x0c\0\0\0\x05salt", m.AuthenticationMD5Password(b"salt")),
    (b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0", m.AuthenticationSASL(("SCRAM-SHA-256",))),
    (b"R\0\0\0\x0b\0\0\0\x0br=x", m.AuthenticationSASLContinue(b"r=x")),
    (b"R\0\0\0\x0b\0\0\0\x0cv=y", m.AuthenticationSASLFinal(b"v=y")),
    (b"S\0\0\0\x19client_encoding\0UTF8\0", m.ParameterStatus("client_encoding", "UTF8")),
    (b"K\0\0\0\x0c\0\0\x30\x39\xde\xad\xbe\xef", m.BackendKeyData(12345, b"\xde\xad\xbe\xef")),
    (b"Z\0\0\0\x05I", m.ReadyForQuery("I")),
    (b"Z\0\0\0\x05T", m.ReadyForQuery("T")),
    (b"Z\0\0\0\x05E", m.ReadyForQuery("E")),
    (
        b"T\0\0\0\x1e\0\x01total\0\0\0\x40\0\0\x03\0\0\x06\xa4\xff\xff\0\x0c\0\x06\0\0",
        m.RowDescription((FIELD,)),
    ),
    (b"D\0\0\0\x14\0\x03\0\0\0\x0212\xff\xff\xff\xff\0\0\0\0", m.DataRow((b"12", None, b""))),
    (b"C\0\0\0\x0dSELECT 5\0", m.CommandComplete("SELECT 5")),
    (b"I\0\0\0\x04", m.EmptyQueryResponse()),
    (
        b"E\0\0\0\x18SERROR\0C42601\0Mbad\0\0",
        m.ErrorResponse({"S": "ERROR", "C": "42601", "M": "bad"}),
    ),
    (b"N\0\0\0\x10SNOTICE\0Mx\0\0", m.NoticeResponse({"S": "NOTICE", "M": "x"})),
    (b"1\0\0\0\x04", m.ParseComplete()),
    (b"2\0\0\0\x04", m.BindComplete()),
    (b"3\0\0\0\x04", m.CloseComplete()),
    (b"n\0\0\0\x04", m.NoData()),
    (b"t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\x06\xa4", m.ParameterDescription((23, 1700))),
    (b"s\0\0\0\x04", m.PortalSuspended()),
    (
        b"v\0\0\0\x1d\0\x03\0\0\0\0\0\x01_pq_.compression\0",
        m.NegotiateProtocolVersion(0, ("_pq_.compression",)),
    ),
    (b"d\0\0\0\x05z", m.CopyData(b"z")),
    (b"c\0\0\0\x04", m.CopyDone()),
]


@pytest.mark.parametrize(("raw", "msg"), BACKEND)
def test_encode_backend_is_byte_exact(raw: bytes, msg: m.BackendMessage) -> None:
    assert encode(msg) == raw


def test_backend_decoder_reads_everything_encode_writes() -> None:
    stream = b"".join(raw for raw, _ in BACKEND)
    whole = BackendDecoder()
    whole.feed(stream)
    assert _drain(whole) == [msg for _, msg in BACKEND]
    bytewise = BackendDecoder()
    got: list[object] = []
    for b in stream:
        bytewise.feed(bytes([b]))
        got += _drain(bytewise)
    assert got == [msg for _, msg in BACKEND]


def test_next_frame_relays_without_decoding() -> None:
    dec = BackendDecoder()
    dec.feed(b"Z\0\0\0\x05IA\0\0\0\x04")  # 'A' (NotificationResponse) is relayed, not decoded
    assert dec.next_frame() == (b"Z", b"I")
    assert dec.next_frame() == (b"A", b"")
    assert dec.next_frame() is None
    with pytest.raises(ProtocolViolation):
        decode_backend(b"A", b"")


def test_error_fields_and_bytes() -> None:
    err = SyntaxError_('syntax error at or near "FORM"', hint="did you mean FROM?", position=10)
    assert error_fields(err) == {
        "S": "ERROR",
        "V": "ERROR",
        "C": "42601",
        "M": 'syntax error at or near "FORM"',
        "H": "did you mean FROM?",
        "P": "10",
    }
    payload = b'SERROR\0VERROR\0C42601\0Msyntax error at or near "FORM"\0Hdid you mean FROM?\0P10\0\0'
    assert encode_error(err) == b"E" + struct.pack("!i", len(payload) + 4) + payload
    assert encode_error(ProtocolViolation("bad\0x")).endswith(b"Mbadx\0\0")  # NUL inside a value dropped


def test_notice() -> None:
    payload = b"SWARNING\0VWARNING\0C01000\0Mcareful\0Dmore\0\0"
    got = encode_notice("careful", severity="WARNING", sqlstate="01000", detail="more")
    assert got == b"N" + struct.pack("!i", len(payload) + 4) + payload
