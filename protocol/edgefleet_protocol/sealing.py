"""Sealed secrets: the one box format the CLI, the orchestrator and the agent share.

A secret travels and rests only sealed to the key of whoever must read it: the operator's
CLI seals it to the orchestrator's sealing key (published in ``orchestrator/status``), the
orchestrator stores that box, and for each desired document re-seals the value to the
X25519 key of the node that runs the workload (published in the node's capabilities). No
retained document, event, reply or store row holds a secret in clear.

Box (standard base64): ``ephemeral public key (32) || ciphertext+tag``. The key is
HKDF-SHA256 over the X25519 shared secret (salt: ephemeral || recipient public key, info:
:data:`INFO`); the cipher is ChaCha20-Poly1305 with a zero nonce (each key seals once)
and the secret's name as associated data, so a box cannot be replayed under another name.

The orchestrator's boxes are *deterministic* (the ephemeral key is derived from its own
sealing key, the recipient, the name and the value): the same value for the same node
gives the same bytes, so the desired document — and the workload — change only when the
secret does. That reveals only whether a node's secret value changed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

INFO = b"edgefleet/v1 sealed secret"
KEY_BYTES = 32
NONCE = bytes(12)
MAX_SECRET_BYTES = 64 * 1024


class SealError(ValueError):
    """A box that is malformed or does not open with this key (the reason says which)."""


def raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_text(key: X25519PrivateKey) -> str:
    """The public key as published (base64 of 32 bytes)."""
    return base64.b64encode(raw_public(key)).decode()


def private_from_bytes(raw: bytes) -> X25519PrivateKey:
    if len(raw) != KEY_BYTES:
        raise SealError(f"a sealing key is {KEY_BYTES} bytes, this one {len(raw)}")
    return X25519PrivateKey.from_private_bytes(raw)


def private_bytes(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _recipient(public: str) -> tuple[X25519PublicKey, bytes]:
    try:
        raw = base64.b64decode(public, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("the recipient's sealing key is not valid base64") from None
    if len(raw) != KEY_BYTES:
        raise SealError(f"the recipient's sealing key must be {KEY_BYTES} bytes")
    return X25519PublicKey.from_public_bytes(raw), raw


def _key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + recipient, info=INFO)
    return hkdf.derive(shared)


def seal(value: bytes, *, name: str, recipient: str, derive_from: bytes | None = None) -> str:
    """Seal ``value`` for the holder of ``recipient`` (base64 public key). With
    ``derive_from`` (the sealer's own secret key bytes) the box is deterministic."""
    if len(value) > MAX_SECRET_BYTES:
        raise SealError(f"a secret is at most {MAX_SECRET_BYTES} bytes")
    public, raw = _recipient(recipient)
    if derive_from is None:
        ephemeral = X25519PrivateKey.generate()
    else:
        seed = hashlib.sha256(
            b"edgefleet/v1 ephemeral\n" + derive_from + raw + name.encode() + b"\n" + value
        ).digest()
        ephemeral = X25519PrivateKey.from_private_bytes(seed)
    eph_raw = raw_public(ephemeral)
    key = _key(ephemeral.exchange(public), eph_raw, raw)
    box = ChaCha20Poly1305(key).encrypt(NONCE, value, name.encode())
    return base64.b64encode(eph_raw + box).decode()


def unseal(box: str, *, name: str, key: X25519PrivateKey) -> bytes:
    """Open a box sealed to ``key`` under ``name``; :class:`SealError` saying why not."""
    try:
        raw = base64.b64decode(box, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("is not valid base64") from None
    if len(raw) < KEY_BYTES + 16:
        raise SealError("is too short to be a sealed secret")
    eph_raw, sealed = raw[:KEY_BYTES], raw[KEY_BYTES:]
    shared = key.exchange(X25519PublicKey.from_public_bytes(eph_raw))
    try:
        return ChaCha20Poly1305(_key(shared, eph_raw, raw_public(key))).decrypt(
            NONCE, sealed, name.encode()
        )
    except InvalidTag:
        raise SealError("does not open with this key (sealed for another key or altered)") from None
