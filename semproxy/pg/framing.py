"""Postgres v3 message framing, written once: a type byte, an int32 length that counts
itself, then the payload. Startup-phase messages have no type byte."""

from __future__ import annotations

import struct

_LEN = struct.Struct("!I")
MAX_MESSAGE = 64 * 1024 * 1024  # a larger length field is a protocol violation, never allocated


def frame(type_: bytes, payload: bytes = b"") -> bytes:
    """One typed message: frame(b"Z", b"I") -> b"Z\\x00\\x00\\x00\\x05I"."""
    return type_ + _LEN.pack(len(payload) + 4) + payload


def split_frames(buf: bytes | bytearray) -> tuple[list[tuple[bytes, bytes]], int]:
    """Complete typed frames at the start of `buf`, and how many bytes they used.

    Raises ValueError on a length field below 4 or above MAX_MESSAGE."""
    frames: list[tuple[bytes, bytes]] = []
    pos, end = 0, len(buf)
    while end - pos >= 5:
        (length,) = _LEN.unpack_from(buf, pos + 1)
        if length < 4 or length > MAX_MESSAGE:
            raise ValueError(f"invalid message length {length}")
        if end - pos < 1 + length:
            break
        frames.append((bytes(buf[pos : pos + 1]), bytes(buf[pos + 5 : pos + 1 + length])))
        pos += 1 + length
    return frames, pos
