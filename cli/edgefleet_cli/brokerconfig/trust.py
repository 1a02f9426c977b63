"""Signing keys for desired state: made at provisioning, rotated later. No file I/O here.

``edgefleet broker config`` adds to its set (paths relative to the output directory):

* ``keys/root.key`` — the offline root key (Ed25519, PEM). It only endorses orchestrator
  keys; move it off every online machine once the set is installed;
* ``keys/orchestrator.key`` — the orchestrator's signing key (``--signing-key``);
* ``keys/trust-anchor.json`` — both public keys: what every gateway trusts
  (agent setting ``trust_anchor``). Public, identical on every gateway.

``edgefleet keys rotate`` makes a new orchestrator key and an endorsement of it, signed by
the current orchestrator key (routine rotation) or by the root key (after a compromise of
the current key), appended to the key chain agents follow.
"""

from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from edgefleet_protocol import KeyEndorsement
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.signing import PublicKeyRef, TrustAnchor, b64, endorsement_bytes, key_id

KEYS_DIR = "keys"
ROOT_KEY = f"{KEYS_DIR}/root.key"
ORCHESTRATOR_KEY = f"{KEYS_DIR}/orchestrator.key"
TRUST_ANCHOR = f"{KEYS_DIR}/trust-anchor.json"
CHAIN_FILE = f"{KEYS_DIR}/orchestrator.chain.json"


def new_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes, *, what: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(what, f"is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ProtocolError(what, f"must be an Ed25519 key, not {type(key).__name__}")
    return key


def public_ref(key: Ed25519PrivateKey) -> PublicKeyRef:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PublicKeyRef(key_id=key_id(raw), public_key=b64(raw))


def anchor_json(root: Ed25519PrivateKey, orchestrator: Ed25519PrivateKey) -> bytes:
    anchor = TrustAnchor(root=public_ref(root), orchestrator=public_ref(orchestrator))
    return (json.dumps(anchor.model_dump(mode="json"), indent=2) + "\n").encode()


def endorse(new: Ed25519PrivateKey, *, by: Ed25519PrivateKey) -> KeyEndorsement:
    """``by`` vouches for ``new``: the link agents follow to trust a rotated key."""
    ref, signer = public_ref(new), public_ref(by)
    body = endorsement_bytes(
        endorsed_key_id=ref.key_id, public_key=ref.public_key, signer=signer.key_id
    )
    return KeyEndorsement(
        key_id=ref.key_id,
        public_key=ref.public_key,
        signer=signer.key_id,
        signature=b64(by.sign(body)),
    )


def chain_json(chain: list[KeyEndorsement]) -> bytes:
    doc = {"v": 1, "key_chain": [e.model_dump(mode="json") for e in chain]}
    return (json.dumps(doc, indent=2) + "\n").encode()


def read_chain(text: bytes) -> list[KeyEndorsement]:
    try:
        data = json.loads(text)
        return [KeyEndorsement.model_validate(e) for e in data["key_chain"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ProtocolError("key_chain", f"is not a key chain file: {exc}") from None
