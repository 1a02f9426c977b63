"""mosquitto 2.0's password file format, so no ``mosquitto_passwd`` binary is needed.

A line is ``username:$7$<iterations>$<base64 salt>$<base64 hash>`` where the hash is
PBKDF2-HMAC-SHA512 of the UTF-8 password over the raw salt bytes, 64 bytes long. This is
what ``mosquitto_passwd`` 2.0.x writes (101 iterations, 12-byte salt) and what the 2.0.11
broker accepts; the integration tests prove it against the real broker and the unit tests
against a line ``mosquitto_passwd`` produced.

The salt is passed in, never drawn here, so hashing stays a pure function.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable

from edgefleet_protocol.errors import ProtocolError

PBKDF2_ID = "7"
DEFAULT_ITERATIONS = 101  # mosquitto_passwd 2.0's own choice; the broker reads any count
SALT_BYTES = 12
HASH_BYTES = 64


def hash_password(password: str, *, salt: bytes, iterations: int = DEFAULT_ITERATIONS) -> str:
    """The ``$7$...`` hash field for ``password`` (without the ``username:`` prefix)."""
    if not salt:
        raise ProtocolError("salt", "must not be empty")
    if iterations < 1:
        raise ProtocolError("iterations", "must be at least 1")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (
        f"${PBKDF2_ID}${iterations}"
        f"${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )


def verify_password(password: str, encoded: str) -> bool:
    """True if ``encoded`` (a ``$7$`` hash field) is the hash of ``password``.

    A malformed field is a :class:`ProtocolError`, not ``False``: a broken password file
    should be noticed, not read as "wrong password".
    """
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != PBKDF2_ID:
        raise ProtocolError("password hash", "expected $7$<iterations>$<salt>$<hash>")
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except (ValueError, binascii.Error):
        raise ProtocolError("password hash", "iterations, salt or hash is malformed") from None
    if iterations < 1 or not salt or len(expected) != HASH_BYTES:
        raise ProtocolError("password hash", "iterations, salt or hash is out of range")
    actual = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(actual, expected)


def password_line(username: str, hashed: str) -> str:
    if not username or ":" in username or "\n" in username:
        raise ProtocolError("username", f"{username!r} cannot appear in a password file")
    return f"{username}:{hashed}"


def password_file_text(entries: Iterable[tuple[str, str]]) -> str:
    """The whole ``password_file`` from ``(username, hashed)`` pairs."""
    return "".join(password_line(user, hashed) + "\n" for user, hashed in entries)
