"""The users file: one line per user, `name scram-verifier md5-hash`, never a password.

    alice SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey> md5<32 hex digits>

The SCRAM verifier is PostgreSQL's own format (what `pg_authid.rolpassword` holds), the md5
hash is Postgres's too (`md5` + md5(password + name)). `semproxy users add` writes it; the
server reads it again whenever it changes, so adding a user needs no restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from scramp import ScramMechanism

from semproxy.errors import ConfigError

SCRAM_ITERATIONS = 4096  # PostgreSQL's scram_iterations default
_NAME = re.compile(r"^[^\s#]{1,63}$")
_SCRAM = re.compile(r"^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$")
_MD5 = re.compile(r"^md5[0-9a-f]{32}$")


@dataclass(frozen=True)
class ScramVerifier:
    iterations: int
    salt: bytes
    stored_key: bytes
    server_key: bytes

    @classmethod
    def parse(cls, text: str) -> ScramVerifier:
        found = _SCRAM.match(text)
        if found is None:
            raise ValueError("not a SCRAM-SHA-256 verifier")
        iterations, salt, stored, server = found.groups()
        return cls(int(iterations), *(base64.b64decode(x) for x in (salt, stored, server)))

    @classmethod
    def of(cls, password: str, iterations: int = SCRAM_ITERATIONS) -> ScramVerifier:
        salt, stored, server, iterations = ScramMechanism("SCRAM-SHA-256").make_auth_info(
            password, iteration_count=iterations, salt=os.urandom(16)
        )
        return cls(iterations, salt, stored, server)

    def text(self) -> str:
        b64 = [base64.b64encode(x).decode() for x in (self.salt, self.stored_key, self.server_key)]
        return f"SCRAM-SHA-256${self.iterations}:{b64[0]}${b64[1]}:{b64[2]}"

    def matches(self, password: str) -> bool:
        """Whether a cleartext password (the `password` method) is the one this verifies."""
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), self.salt, self.iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        return hmac.compare_digest(hashlib.sha256(client_key).digest(), self.stored_key)


@dataclass(frozen=True)
class UserSecrets:
    scram: ScramVerifier
    md5: str  # 'md5' + md5(password + name), hex


def md5_hash(name: str, password: str) -> str:
    return "md5" + hashlib.md5((password + name).encode()).hexdigest()


def secrets_for(name: str, password: str) -> UserSecrets:
    return UserSecrets(ScramVerifier.of(password), md5_hash(name, password))


def parse_users(text: str, source: str = "users file") -> dict[str, UserSecrets]:
    users: dict[str, UserSecrets] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            name, scram, md5 = words
            if not _MD5.match(md5):
                raise ValueError("not an md5 hash")
            users[name] = UserSecrets(ScramVerifier.parse(scram), md5)
        except ValueError as exc:
            raise ConfigError(f"{source}:{number}: expected `name scram-verifier md5-hash`: {exc}") from None
    return users


class UsersFile:
    """The users file, read again when its modification time changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, UserSecrets] = {}

    def get(self, name: str) -> UserSecrets | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None  # a missing file knows no one
        if (stat.st_mtime_ns, stat.st_size) != self._stamp:
            self._users = parse_users(self.path.read_text(), str(self.path))
            self._stamp = (stat.st_mtime_ns, stat.st_size)
        return self._users.get(name)

    def add(self, name: str, password: str) -> None:
        """Add or replace a user; the file is rewritten whole, owner-only, atomically."""
        if not _NAME.match(name):
            raise ConfigError(f"invalid user name {name!r}: 1 to 63 characters, no spaces or '#'")
        if not password:
            raise ConfigError("an empty password is not allowed")
        users = parse_users(self.path.read_text(), str(self.path)) if self.path.exists() else {}
        users[name] = secrets_for(name, password)
        lines = [f"{n} {s.scram.text()} {s.md5}\n" for n, s in sorted(users.items())]
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "# semproxy users: name scram-sha-256-verifier md5-hash (written by `semproxy users add`)\n"
            )
            out.writelines(lines)
        os.replace(tmp, self.path)
