"""Postgres v3 protocol messages: one frozen, slotted dataclass per message.

Frontend messages are what a client sends (decoded by codec.FrontendDecoder); backend
messages are what a server sends (encoded by codec.encode). CopyData, CopyDone and CopyFail
travel both ways and are decoded only. Field names follow the PostgreSQL docs,
"Message Formats"."""

from __future__ import annotations

from dataclasses import dataclass

from semproxy.pg.types import Field

# ---- frontend -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartupMessage:
    protocol: int  # (major << 16) | minor: 196608 is 3.0
    params: dict[str, str]


@dataclass(frozen=True, slots=True)
class SSLRequest:
    pass


@dataclass(frozen=True, slots=True)
class GSSENCRequest:
    pass


@dataclass(frozen=True, slots=True)
class CancelRequest:
    pid: int
    key: bytes


@dataclass(frozen=True, slots=True)
class Query:
    sql: str


@dataclass(frozen=True, slots=True)
class Parse:
    name: str
    sql: str
    param_types: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Bind:
    portal: str
    statement: str
    param_formats: tuple[int, ...]
    params: tuple[bytes | None, ...]
    result_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Describe:
    kind: str  # 'S' statement or 'P' portal
    name: str


@dataclass(frozen=True, slots=True)
class Execute:
    portal: str
    max_rows: int  # 0 = no limit


@dataclass(frozen=True, slots=True)
class Close:
    kind: str  # 'S' statement or 'P' portal
    name: str


@dataclass(frozen=True, slots=True)
class Sync:
    pass


@dataclass(frozen=True, slots=True)
class Flush:
    pass


@dataclass(frozen=True, slots=True)
class Terminate:
    pass


@dataclass(frozen=True, slots=True)
class PasswordMessage:
    """A 'p' message: a password, or a raw SASLInitialResponse / SASLResponse payload."""

    data: bytes


@dataclass(frozen=True, slots=True)
class CopyData:
    data: bytes


@dataclass(frozen=True, slots=True)
class CopyDone:
    pass


@dataclass(frozen=True, slots=True)
class CopyFail:
    message: str


FrontendMessage = (
    StartupMessage
    | SSLRequest
    | GSSENCRequest
    | CancelRequest
    | Query
    | Parse
    | Bind
    | Describe
    | Execute
    | Close
    | Sync
    | Flush
    | Terminate
    | PasswordMessage
    | CopyData
    | CopyDone
    | CopyFail
)

# ---- backend --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuthenticationOk:
    pass


@dataclass(frozen=True, slots=True)
class AuthenticationCleartextPassword:
    pass


@dataclass(frozen=True, slots=True)
class AuthenticationMD5Password:
    salt: bytes  # 4 bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASL:
    mechanisms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AuthenticationSASLContinue:
    data: bytes


@dataclass(frozen=True, slots=True)
class AuthenticationSASLFinal:
    data: bytes


@dataclass(frozen=True, slots=True)
class ParameterStatus:
    name: str
    value: str


@dataclass(frozen=True, slots=True)
class BackendKeyData:
    pid: int
    key: bytes  # 4 bytes for protocol 3.0, up to 256 for 3.2


@dataclass(frozen=True, slots=True)
class ReadyForQuery:
    status: str  # 'I' idle, 'T' in a transaction, 'E' in a failed transaction


@dataclass(frozen=True, slots=True)
class RowDescription:
    fields: tuple[Field, ...]


@dataclass(frozen=True, slots=True)
class DataRow:
    values: tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class CommandComplete:
    tag: str

    @classmethod
    def rows(cls, command: str, count: int) -> CommandComplete:
        """The tag of a command that produced rows: rows("SELECT", 3) is 'SELECT 3'."""
        return cls(command + " " + str(count))


@dataclass(frozen=True, slots=True)
class EmptyQueryResponse:
    pass


@dataclass(frozen=True, slots=True)
class ErrorResponse:
    fields: dict[str, str]  # one-letter field code -> value: S, V, C, M, D, H, P...


@dataclass(frozen=True, slots=True)
class NoticeResponse:
    fields: dict[str, str]


@dataclass(frozen=True, slots=True)
class ParseComplete:
    pass


@dataclass(frozen=True, slots=True)
class BindComplete:
    pass


@dataclass(frozen=True, slots=True)
class CloseComplete:
    pass


@dataclass(frozen=True, slots=True)
class NoData:
    pass


@dataclass(frozen=True, slots=True)
class ParameterDescription:
    type_oids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PortalSuspended:
    pass


@dataclass(frozen=True, slots=True)
class CopyOutResponse:
    format: int  # 0 text (and CSV), 1 binary
    column_formats: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NegotiateProtocolVersion:
    newest_minor: int
    unrecognized: tuple[str, ...]


BackendMessage = (
    AuthenticationOk
    | AuthenticationCleartextPassword
    | AuthenticationMD5Password
    | AuthenticationSASL
    | AuthenticationSASLContinue
    | AuthenticationSASLFinal
    | ParameterStatus
    | BackendKeyData
    | ReadyForQuery
    | RowDescription
    | DataRow
    | CommandComplete
    | EmptyQueryResponse
    | ErrorResponse
    | NoticeResponse
    | ParseComplete
    | BindComplete
    | CloseComplete
    | NoData
    | ParameterDescription
    | PortalSuspended
    | NegotiateProtocolVersion
    | CopyOutResponse
    | CopyData
    | CopyDone
)
