"""Signing desired documents with the orchestrator's Ed25519 key.

Who calls it: the pass runner (:mod:`edgefleet_orchestrator.service.passes`), on every
document a pass produces, before the pass is stored — so the store, the retained topic and
a republish after restart all carry the same signed bytes. The bytes signed are defined in
:mod:`edgefleet_protocol.signing` (the agent verifies exactly those).

``issued_at`` never goes backwards for a node: agents refuse a document issued before the
one they hold (TUF's freeze/rollback rule), so an orchestrator whose clock stepped back
would otherwise lock its own nodes out. :func:`sign_document` lifts ``issued_at`` to the
previous document's when needed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edgefleet_protocol import Desired, KeyEndorsement, ProtocolError, encode
from edgefleet_protocol.codec import parse_json_object, validate
from edgefleet_protocol.signing import b64, document_bytes, key_id
from pydantic import BaseModel, Field


class KeyChainFile(BaseModel):
    """``orchestrator.chain.json``: endorsements from a key agents trust to the signing key
    (written by ``edgefleet keys rotate``)."""

    v: int = 1
    key_chain: list[KeyEndorsement] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Signer:
    """The orchestrator's signing identity: its private key and the chain vouching for it."""

    private_key: Ed25519PrivateKey
    key_id: str
    chain: tuple[KeyEndorsement, ...] = ()

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


def load_signer(key_pem: bytes, chain_json: bytes | None = None) -> Signer:
    """A :class:`Signer` from a PEM (PKCS#8) Ed25519 key and an optional chain file.

    Raises ``ProtocolError`` naming what is wrong (not a key, not Ed25519, a chain that
    does not end at this key)."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ProtocolError("signing_key", f"is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProtocolError("signing_key", f"must be an Ed25519 key, not {type(key).__name__}")
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    kid = key_id(raw)
    chain: tuple[KeyEndorsement, ...] = ()
    if chain_json is not None:
        chain = tuple(validate(KeyChainFile, parse_json_object(chain_json)).key_chain)
        if chain and chain[-1].key_id != kid:
            raise ProtocolError(
                "key_chain", f"ends at key {chain[-1].key_id}, but the signing key is {kid}"
            )
    return Signer(private_key=key, key_id=kid, chain=chain)


def sign_document(
    document: Desired, signer: Signer, *, previous_issued_at: float | None = None
) -> Desired:
    """``document`` with ``key_id``, ``key_chain`` and ``signature`` set."""
    issued_at = document.issued_at
    if previous_issued_at is not None and issued_at < previous_issued_at:
        issued_at = previous_issued_at
    unsigned = document.model_copy(
        update={
            "issued_at": issued_at,
            "key_id": signer.key_id,
            "key_chain": list(signer.chain) or None,
            "signature": None,
        }
    )
    # Sign what goes on the wire: the encoded document as a reader parses it back.
    body = json.loads(encode(unsigned))
    signature = signer.private_key.sign(document_bytes(body))
    return unsigned.model_copy(update={"signature": b64(signature)})


def chain_ids(chain: Sequence[KeyEndorsement]) -> list[str]:
    """``signer -> key`` hops of a chain, for logs."""
    return [f"{e.signer}->{e.key_id}" for e in chain]
