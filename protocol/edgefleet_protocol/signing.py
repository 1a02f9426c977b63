"""What a desired-document signature covers, byte for byte: the shared half of signing.

The orchestrator signs and the agent verifies (each with Ed25519 from ``cryptography``, in
their ``security`` rooms); both must agree on the exact bytes, so those bytes are defined
here once, without any crypto library:

* **document bytes** — the received JSON object minus its ``signature`` member, as
  canonical JSON (keys sorted, no whitespace, UTF-8), prefixed by :data:`DOCUMENT_DOMAIN`.
  The agent computes them from the *parsed payload*, not from its model, so fields a newer
  orchestrator adds (which this agent ignores) are still covered and still verify.
  Everything else is inside: ``node``, ``site``, ``generation``, ``issued_at``, ``key_id``,
  ``key_chain`` and every workload spec.
* **endorsement bytes** — a new key's id and public key plus the id of the key that vouches
  for it, prefixed by :data:`ENDORSEMENT_DOMAIN`, so a document signature can never be
  replayed as an endorsement or the other way round.

Keys are raw 32-byte Ed25519 public keys in standard base64; a key id is the
first 16 hex digits of the SHA-256 of the raw key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, model_validator

from edgefleet_protocol.base import Envelope, WireModel
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.workload import canonical_json

DOCUMENT_DOMAIN = b"edgefleet/v1 desired\n"
ENDORSEMENT_DOMAIN = b"edgefleet/v1 key endorsement\n"
ED25519_KEY_BYTES = 32
ED25519_SIGNATURE_BYTES = 64

KeyIdText = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]


def key_id(public_key: bytes) -> str:
    """The short name of a raw Ed25519 public key (what documents and anchors cite)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str, *, field: str, size: int) -> bytes:
    """Standard base64 of exactly ``size`` bytes, or a ProtocolError naming ``field``."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError(field, "is not valid base64") from None
    if len(raw) != size:
        raise ProtocolError(field, f"must decode to {size} bytes, got {len(raw)}")
    return raw


def document_bytes(document: Mapping[str, Any]) -> bytes:
    """The bytes a desired document's signature covers (``document`` as parsed JSON)."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return DOCUMENT_DOMAIN + canonical_json(body)


def endorsement_bytes(*, endorsed_key_id: str, public_key: str, signer: str) -> bytes:
    """The bytes a key endorsement's signature covers."""
    body = {"key_id": endorsed_key_id, "public_key": public_key, "signer": signer}
    return ENDORSEMENT_DOMAIN + canonical_json(body)


class PublicKeyRef(WireModel):
    """An Ed25519 public key and its id; the id must be the key's own (checked)."""

    key_id: KeyIdText
    public_key: str = Field(min_length=1, max_length=64)

    @model_validator(mode="after")
    def _id_is_the_keys(self) -> PublicKeyRef:
        raw = unb64(self.public_key, field="public_key", size=ED25519_KEY_BYTES)
        if key_id(raw) != self.key_id:
            raise ValueError(f"key_id {self.key_id} is not the id of this public key")
        return self

    @property
    def raw(self) -> bytes:
        return unb64(self.public_key, field="public_key", size=ED25519_KEY_BYTES)


class TrustAnchor(Envelope):
    """What a gateway trusts, written at provisioning (``edgefleet broker config``) to
    ``trust-anchor.json`` and read by the agent (setting ``trust_anchor``).

    ``orchestrator`` signs desired documents; ``root`` is an offline key that only endorses
    orchestrator keys (rotation, recovery after a compromise); ``revoked`` lists key ids
    the agent refuses whatever vouches for them.
    """

    root: PublicKeyRef
    orchestrator: PublicKeyRef
    revoked: list[KeyIdText] = Field(default_factory=list, max_length=1024)

    @model_validator(mode="after")
    def _anchors_not_revoked(self) -> TrustAnchor:
        for name, ref in (("root", self.root), ("orchestrator", self.orchestrator)):
            if ref.key_id in self.revoked:
                raise ValueError(f"the {name} key {ref.key_id} is listed as revoked")
        return self
