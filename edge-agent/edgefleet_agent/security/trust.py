"""Verifying a signed desired document against the gateway's trust anchor.

Who calls it: the agent service, for every message on its ``desired`` topic when a trust
anchor is configured, *before* :func:`edgefleet_agent.core.admission.admit`. The checks, in
order (the first that fails is the refusal and its event):

1. size, JSON and schema (the protocol codec) — field as the codec names it;
2. ``signature`` — present (unsigned documents are refused when an anchor is configured);
3. ``key_id`` / ``key_chain`` — the signing key is the key in force, or is reached from it
   or from the offline root key through valid endorsements, and is not revoked;
4. ``signature`` — verifies over :func:`edgefleet_protocol.signing.document_bytes`;
5. ``node`` / ``site`` — the document is for this node (a valid document of another node
   replayed here is refused);
6. ``generation`` — the generation held may only be repeated with the same workloads (a
   retained replay); a lower one is left to admission (``desired-stale``);
7. ``issued_at`` — not before the document held (TUF's freeze and rollback rule).

The held document and the key in force persist in the agent's store, so a restart does
not reopen any of these doors.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from edgefleet_protocol import Desired, ProtocolError
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES, parse_json_object, validate
from edgefleet_protocol.signing import (
    ED25519_KEY_BYTES,
    ED25519_SIGNATURE_BYTES,
    PublicKeyRef,
    TrustAnchor,
    document_bytes,
    endorsement_bytes,
    key_id,
    unb64,
)

from edgefleet_agent.core.admission import Reject


@dataclass(frozen=True, slots=True)
class TrustState:
    """What the gateway trusts now: its anchor and the orchestrator key in force."""

    anchor: TrustAnchor
    current: PublicKeyRef


@dataclass(frozen=True, slots=True)
class Verified:
    """The document is authentic and new enough; ``key`` signed it (the key in force from
    now on: ``rotated`` when it differs from the one before)."""

    desired: Desired
    key: PublicKeyRef
    rotated: bool


def initial_state(
    anchor: TrustAnchor, stored: PublicKeyRef | None, stored_root: str | None
) -> TrustState:
    """The key in force at start: the stored (rotated) one while the anchor's root is the
    one it was reached under and it is not revoked; else the anchor's orchestrator key."""
    if (
        stored is not None
        and stored_root == anchor.root.key_id
        and stored.key_id not in anchor.revoked
    ):
        return TrustState(anchor, stored)
    return TrustState(anchor, anchor.orchestrator)


def _verifies(public_key: bytes, signature: bytes, data: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _signing_key(desired: Desired, state: TrustState) -> PublicKeyRef | Reject:
    """The key that signed ``desired``, if the gateway trusts it (directly or by chain)."""
    revoked = set(state.anchor.revoked)
    wanted = desired.key_id
    if wanted is None:
        return Reject("key_id", "is required on a signed document")
    if wanted in revoked:
        return Reject("key_id", f"key {wanted} is revoked by this gateway's trust anchor")
    trusted = {state.current.key_id: state.current, state.anchor.root.key_id: state.anchor.root}
    for i, link in enumerate(desired.key_chain or []):
        signer = trusted.get(link.signer)
        if signer is None or link.key_id in trusted:
            continue  # a hop this gateway already passed (or cannot start from)
        where = f"key_chain.{i}"
        try:
            raw = unb64(link.public_key, field=f"{where}.public_key", size=ED25519_KEY_BYTES)
            sig = unb64(link.signature, field=f"{where}.signature", size=ED25519_SIGNATURE_BYTES)
        except ProtocolError as exc:
            return Reject(exc.field, exc.reason)
        if key_id(raw) != link.key_id:
            return Reject(where, f"key_id {link.key_id} is not the id of its public key")
        if link.key_id in revoked:
            return Reject(where, f"endorses key {link.key_id}, which is revoked")
        body = endorsement_bytes(
            endorsed_key_id=link.key_id, public_key=link.public_key, signer=link.signer
        )
        if not _verifies(signer.raw, sig, body):
            return Reject(where, f"endorsement of {link.key_id} by {link.signer} does not verify")
        trusted[link.key_id] = PublicKeyRef(key_id=link.key_id, public_key=link.public_key)
    key = trusted.get(wanted)
    if key is None or key.key_id == state.anchor.root.key_id:
        return Reject(
            "key_id",
            f"key {wanted} is not trusted: not the key in force ({state.current.key_id}) and"
            " not endorsed by it or by the root key",
        )
    return key


def verify(
    payload: bytes,
    *,
    state: TrustState,
    node: str,
    site: str,
    held: Desired | None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> Verified | Reject:
    """Check ``payload`` (one message of the desired topic) in the order above."""
    try:
        body = parse_json_object(payload, max_bytes=max_bytes)
        desired = validate(Desired, body)
    except ProtocolError as exc:
        return Reject(exc.field, exc.reason)
    if desired.signature is None:
        return Reject(
            "signature", "document is unsigned; this gateway has a trust anchor and refuses it"
        )
    try:
        signature = unb64(desired.signature, field="signature", size=ED25519_SIGNATURE_BYTES)
    except ProtocolError as exc:
        return Reject(exc.field, exc.reason)
    key = _signing_key(desired, state)
    if isinstance(key, Reject):
        return key
    if not _verifies(key.raw, signature, document_bytes(body)):
        return Reject("signature", f"does not verify with key {key.key_id}: forged or altered")
    if desired.node != node:
        return Reject("node", f"document is for node {desired.node!r}; this is node {node!r}")
    if desired.site is not None and desired.site != site:
        return Reject("site", f"document is for site {desired.site!r}; this node is in {site!r}")
    if held is not None:
        if desired.generation == held.generation and desired.workloads != held.workloads:
            return Reject(
                "generation",
                f"generation {desired.generation} is the one held but names other workloads"
                " (a replay or a forgery)",
            )
        if desired.generation > held.generation and desired.issued_at < held.issued_at:
            return Reject(
                "issued_at",
                f"issued at {desired.issued_at:.3f}, before the document held"
                f" ({held.issued_at:.3f}): a replay of an old document",
            )
    return Verified(desired, key, rotated=key.key_id != state.current.key_id)
