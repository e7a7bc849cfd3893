"""A connection's first moments: TLS negotiation, the startup packet, authentication, and
the greeting (ParameterStatus, BackendKeyData, ReadyForQuery).

    SSLRequest       'S' and a TLS handshake when a certificate is configured, else 'N'
    GSSENCRequest    'N' (no GSSAPI)
    CancelRequest    handed to the server; the connection then closes, answering nothing
    StartupMessage   protocol 3.x (a newer minor gets NegotiateProtocolVersion 3.0), then the
                     configured auth method; no query is read before it succeeds. A login
                     may give the session an engine of its own (a Databricks user's token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semproxy.auth.methods import CLEARTEXT_METHODS, Step, exchange_for
from semproxy.errors import InvalidAuthorization, ProtocolViolation
from semproxy.pg import messages as m

if TYPE_CHECKING:
    from semproxy.session import Session

# Reported to the client at startup; server_version comes from the catalog server.
FIXED_PARAMETERS = {
    "server_encoding": "UTF8",
    "client_encoding": "UTF8",
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "integer_datetimes": "on",
    "standard_conforming_strings": "on",
    "is_superuser": "off",
}


async def handshake(session: Session) -> m.StartupMessage | None:
    """Read up to the StartupMessage, negotiating TLS on the way; None for a CancelRequest."""
    while True:
        msg = await session.next_message()
        if isinstance(msg, m.SSLRequest):
            await _negotiate_tls(session)
        elif isinstance(msg, m.GSSENCRequest):
            session.writer.write(b"N")
        elif isinstance(msg, m.CancelRequest):
            session.server.cancel(msg.pid, msg.key)
            return None
        elif isinstance(msg, m.StartupMessage):
            return msg
        else:
            raise ProtocolViolation(f"expected a startup message, got {type(msg).__name__}")


async def _negotiate_tls(session: Session) -> None:
    context = session.server.tls
    if context is None or session.tls:
        session.writer.write(b"N")
        return
    if session.decoder.buffered():
        # the client must wait for 'S' before its ClientHello; anything else is an attack
        raise ProtocolViolation("received unencrypted data after SSL request")
    session.writer.write(b"S")
    await session.writer.drain()
    await session.writer.start_tls(context)
    session.tls = True


async def authenticate(session: Session, startup: m.StartupMessage) -> None:
    """Check the startup packet and run the auth method; raises a FATAL error on failure.
    When the login names an engine of its own, the session's queries run on it."""
    settings = session.server.settings
    if startup.protocol >> 16 != 3:
        raise ProtocolViolation(
            f"unsupported frontend protocol {startup.protocol >> 16}.{startup.protocol & 0xFFFF}"
        )
    user = startup.params.get("user")
    if not user:
        raise InvalidAuthorization("no PostgreSQL user name specified in startup packet")
    if settings.require_tls and not session.tls:
        raise InvalidAuthorization(
            f'connection for user "{user}" refused: this server requires SSL',
            hint="connect with sslmode=require",
        )
    method = settings.auth_method
    if method in CLEARTEXT_METHODS and not (session.tls or session.peer_is_loopback):
        raise InvalidAuthorization(
            f'{method} authentication for user "{user}" requires SSL', hint="connect with sslmode=require"
        )
    exchange = exchange_for(method, user, session.server.users, session.server.password_verifier)
    if exchange is None:
        return
    step = Step(exchange.first())
    while not step.done:
        if step.message is not None:
            session.send(step.message)
        await session.writer.drain()
        answer = await session.next_message()
        if not isinstance(answer, m.PasswordMessage):
            raise ProtocolViolation(f"expected a password response, got {type(answer).__name__}")
        step = await exchange.answer(answer.data)
    if step.message is not None:
        session.send(step.message)
    if step.login is not None and step.login.engine is not None:
        session.engine = step.login.engine


def greeting(session: Session, startup: m.StartupMessage) -> list[m.BackendMessage]:
    """AuthenticationOk, the reported parameters, BackendKeyData, ReadyForQuery."""
    out: list[m.BackendMessage] = []
    unrecognized = tuple(k for k in startup.params if k.startswith("_pq_."))
    if startup.protocol & 0xFFFF or unrecognized:
        out.append(m.NegotiateProtocolVersion(0, unrecognized))
    out.append(m.AuthenticationOk())
    reported = {
        **FIXED_PARAMETERS,
        "server_version": session.server.server_version,
        "application_name": startup.params.get("application_name", ""),
        "session_authorization": startup.params["user"],
        "TimeZone": startup.params.get("TimeZone", "UTC"),
    }
    out += [m.ParameterStatus(k, v) for k, v in reported.items()]
    out += [m.BackendKeyData(session.pid, session.key), m.ReadyForQuery("I")]
    return out
