"""Authentication methods, sans-IO: each is a conversation of backend requests and the
client's 'p' message payloads, ending in success or InvalidPassword (28P01).

    trust           no conversation (the listener allows it on loopback only)
    password        AuthenticationCleartextPassword; only over TLS or from a loopback peer;
                    the password goes to a PasswordVerifier (by default the users file)
    jwt             the same, and the password is a sign-in token of the HTTP port (auth.verifiers)
    databricks      the same, and the password is a Databricks personal access token; the
                    session's queries then run with it (auth.verifiers, auth.databricks)
    md5             AuthenticationMD5Password with a random salt, against the users file
    scram-sha-256   SASL SCRAM-SHA-256 (RFC 5802/7677) with the `scramp` library

A failure says only "password authentication failed for user ...": an unknown user walks
through the same exchange (a made-up SCRAM salt, a never-matching md5 hash) and fails at
the same point, so nothing tells a known user from an unknown one.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from scramp import ScramException, ScramMechanism

from semproxy.auth.users import ScramVerifier, UsersFile
from semproxy.errors import InvalidPassword
from semproxy.pg import messages as m

if TYPE_CHECKING:
    from semproxy.engines.base import Engine

# the methods whose client sends its password (or token) in clear: only over TLS or loopback
CLEARTEXT_METHODS = ("password", "jwt", "databricks")


@dataclass(frozen=True)
class Login:
    """A client that proved who it is. `engine`: what its queries run on when not the
    server's engine (a Databricks-token user's own view of the warehouse)."""

    engine: Engine | None = None


# (user, cleartext password) -> the Login, or None when the password is wrong. The users
# file is one; the JWT and Databricks-token methods are others (auth.verifiers).
PasswordVerifier = Callable[[str, str], Awaitable[Login | None]]
_DECOY_KEY = os.urandom(32)  # per process: the decoy salt of an unknown user is stable but unguessable


@dataclass(frozen=True)
class Step:
    """What the server says next; `login` when the client is then authenticated (SASLFinal
    is sent before AuthenticationOk and expects no answer)."""

    message: m.BackendMessage | None = None
    login: Login | None = None

    @property
    def done(self) -> bool:
        return self.login is not None


class Exchange(Protocol):
    """One authentication conversation for one user."""

    def first(self) -> m.BackendMessage:
        """The first request (AuthenticationCleartextPassword, ...MD5Password, ...SASL)."""
        ...

    async def answer(self, data: bytes) -> Step:
        """The client's answer (a 'p' payload); raises InvalidPassword on failure."""
        ...


def failed(user: str) -> InvalidPassword:
    return InvalidPassword(f'password authentication failed for user "{user}"')


def users_file_verifier(users: UsersFile) -> PasswordVerifier:
    async def verify(user: str, password: str) -> Login | None:
        found = users.get(user)
        return Login() if found is not None and found.scram.matches(password) else None

    return verify


class CleartextExchange:
    def __init__(self, user: str, verify: PasswordVerifier) -> None:
        self.user, self.verify = user, verify

    def first(self) -> m.BackendMessage:
        return m.AuthenticationCleartextPassword()

    async def answer(self, data: bytes) -> Step:
        password = data.rstrip(b"\0").decode(errors="replace")
        login = await self.verify(self.user, password) if password else None
        if login is None:
            raise failed(self.user)
        return Step(login=login)


class MD5Exchange:
    def __init__(self, user: str, users: UsersFile) -> None:
        self.user, self.users, self.salt = user, users, os.urandom(4)

    def first(self) -> m.BackendMessage:
        return m.AuthenticationMD5Password(self.salt)

    async def answer(self, data: bytes) -> Step:
        found = self.users.get(self.user)
        stored = found.md5 if found is not None else "md5" + os.urandom(16).hex()
        expected = "md5" + hashlib.md5(stored[3:].encode() + self.salt).hexdigest()
        if not hmac.compare_digest(data.rstrip(b"\0"), expected.encode()):
            raise failed(self.user)
        return Step(login=Login())


class ScramExchange:
    MECHANISM = "SCRAM-SHA-256"

    def __init__(self, user: str, users: UsersFile) -> None:
        self.user = user
        found = users.get(user)
        verifier = found.scram if found is not None else _decoy(user)
        auth = (verifier.salt, verifier.stored_key, verifier.server_key, verifier.iterations)
        # the client-first message's own user name is ignored, as Postgres does: libpq sends ""
        self.server = ScramMechanism(self.MECHANISM).make_server(lambda _name: auth)
        self.known = found is not None
        self.stage = 0

    def first(self) -> m.BackendMessage:
        return m.AuthenticationSASL((self.MECHANISM,))

    async def answer(self, data: bytes) -> Step:
        try:
            if self.stage == 0:
                self.stage = 1
                client_first = _initial_response(data)
                # libpq sends an empty user name (`n=,`): Postgres takes the startup packet's.
                # scramp 1.5 refuses an empty attribute, so it reads a stand-in, and the
                # message as sent is put back for the signature (the AuthMessage).
                header, bare = _split_first(client_first)
                self.server.set_client_first(
                    header + bare.replace("n=,", "n=*,", 1) if bare.startswith("n=,") else client_first
                )
                self.server.client_first_bare = bare
                return Step(m.AuthenticationSASLContinue(self.server.get_server_first().encode()))
            self.server.set_client_final(data.decode())
            if not self.known:
                raise failed(self.user)
            return Step(m.AuthenticationSASLFinal(self.server.get_server_final().encode()), Login())
        except (ScramException, ValueError, struct.error):
            raise failed(self.user) from None


def _initial_response(data: bytes) -> str:
    """SASLInitialResponse: mechanism name, int32 length (-1: none), the client-first message."""
    name, sep, rest = data.partition(b"\0")
    if not sep or name.decode() != ScramExchange.MECHANISM:
        raise ValueError("unsupported SASL mechanism")
    (length,) = struct.unpack_from("!i", rest)
    body = rest[4:]
    if length != len(body):
        raise ValueError("bad SASLInitialResponse length")
    return body.decode()


def _split_first(client_first: str) -> tuple[str, str]:
    """(gs2 header, client-first-bare) of a client-first message."""
    second = client_first.index(",", client_first.index(",") + 1)
    return client_first[: second + 1], client_first[second + 1 :]


def _decoy(user: str) -> ScramVerifier:
    salt = hmac.new(_DECOY_KEY, user.encode(), hashlib.sha256).digest()[:16]
    return ScramVerifier(4096, salt, os.urandom(32), os.urandom(32))


def exchange_for(
    method: str, user: str, users: UsersFile | None, verify: PasswordVerifier | None
) -> Exchange | None:
    """The conversation `method` holds with `user`; None for trust."""
    if method == "trust":
        return None
    if method in CLEARTEXT_METHODS:
        if verify is None:
            assert users is not None and method == "password", f"{method} needs a verifier"
            verify = users_file_verifier(users)
        return CleartextExchange(user, verify)
    assert users is not None, f"{method} needs a users file"
    return MD5Exchange(user, users) if method == "md5" else ScramExchange(user, users)
