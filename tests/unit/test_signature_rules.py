"""Signed desired state, pure: what the orchestrator signs and what the agent's trust
check refuses (each refusal names its field), rotation through endorsement chains."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_agent.core.admission import Reject
from edgefleet_agent.security.trust import TrustState, Verified, initial_state, verify
from edgefleet_cli.brokerconfig import trust as keys
from edgefleet_orchestrator.security.signer import Signer, load_signer, sign_document
from edgefleet_protocol import Desired, DesiredWorkload, ProtocolError, WorkloadSpec, encode
from edgefleet_protocol.signing import PublicKeyRef, TrustAnchor, b64, document_bytes, key_id, unb64

NODE, SITE = "gw-1", "plant"


def workload(name: str) -> DesiredWorkload:
    spec = WorkloadSpec(runtime="simulated")
    return DesiredWorkload(name=name, app="app1", spec=spec, spec_hash="sha256:00")


def document(generation: int, *names: str, node: str = NODE, issued_at: float = 100.0) -> Desired:
    return Desired(node=node, site=SITE, generation=generation, issued_at=issued_at,
                   workloads=[workload(n) for n in names])  # fmt: skip


class Fleet:
    """A provisioned fleet's keys: root, orchestrator, and the gateway's trust state."""

    def __init__(self) -> None:
        self.root = keys.new_key()
        self.orch = keys.new_key()
        anchor = json.loads(keys.anchor_json(self.root, self.orch))
        self.anchor = TrustAnchor.model_validate(anchor)
        self.state = TrustState(self.anchor, self.anchor.orchestrator)

    def signer(self, key: Any = None, chain: tuple[Any, ...] = ()) -> Signer:
        return load_signer(keys.key_pem(key or self.orch), keys.chain_json(list(chain)))

    def check(self, payload: bytes, held: Desired | None = None) -> Verified | Reject:
        return verify(payload, state=self.state, node=NODE, site=SITE, held=held)


def signed(doc: Desired, signer: Signer) -> bytes:
    return encode(sign_document(doc, signer))


@pytest.fixture
def fleet() -> Fleet:
    return Fleet()


def test_a_document_signed_by_the_orchestrator_key_verifies(fleet: Fleet) -> None:
    verdict = fleet.check(signed(document(1, "w1"), fleet.signer()))
    assert isinstance(verdict, Verified)
    assert not verdict.rotated
    assert verdict.desired.key_id == fleet.anchor.orchestrator.key_id


def test_fields_a_newer_orchestrator_adds_are_covered_and_still_verify(fleet: Fleet) -> None:
    signer = fleet.signer()
    # Signed over the raw body with a field this agent does not know, as a newer
    # orchestrator would sign it.
    body = {**json.loads(encode(document(1, "w1"))), "future_field": {"x": 1}}
    body["key_id"] = signer.key_id
    body["signature"] = b64(signer.private_key.sign(document_bytes(body)))
    assert isinstance(fleet.check(json.dumps(body).encode()), Verified)
    body["future_field"] = {"x": 2}
    assert fleet.check(json.dumps(body).encode()) == Reject(
        "signature", f"does not verify with key {signer.key_id}: forged or altered"
    )


def tamper(payload: bytes, **changes: Any) -> bytes:
    body = json.loads(payload)
    body.update(changes)
    return json.dumps(body).encode()


REFUSALS = [
    ("unsigned", lambda f: encode(document(2, "w1")), "signature", "unsigned"),
    ("altered generation", lambda f: tamper(signed(document(2, "w1"), f.signer()), generation=9),
     "signature", "forged or altered"),
    ("huge forged generation",
     lambda f: tamper(signed(document(2, "w1"), f.signer()), generation=2**53 - 1),
     "signature", "forged or altered"),
    ("beyond safe integers", lambda f: tamper(encode(document(2)), generation=2**63),
     "generation", "less than or equal"),
    ("signed by an unknown key", lambda f: signed(document(2, "w1"), f.signer(keys.new_key())),
     "key_id", "not trusted"),
    ("signed by the offline root key itself",
     lambda f: signed(document(2, "w1"), f.signer(f.root)), "key_id", "not trusted"),
    ("a valid document of another node",
     lambda f: signed(document(2, "w1", node="gw-2"), f.signer()), "node", "gw-2"),
    ("signature of the wrong size", lambda f: tamper(signed(document(2), f.signer()),
     signature="AAAA"), "signature", "64 bytes"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "make", "field", "words"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_the_trust_check_refuses(
    fleet: Fleet, case: str, make: Any, field: str, words: str
) -> None:
    verdict = fleet.check(make(fleet))
    assert isinstance(verdict, Reject), case
    assert verdict.field == field
    assert words in verdict.reason


def test_the_held_generation_repeats_only_with_the_same_workloads(fleet: Fleet) -> None:
    held = document(5, "w1")
    same = fleet.check(signed(document(5, "w1", issued_at=50.0), fleet.signer()), held)
    assert isinstance(same, Verified)  # a retained replay: admission calls it unchanged
    other = fleet.check(signed(document(5, "evil"), fleet.signer()), held)
    assert isinstance(other, Reject)
    assert other.field == "generation"


def test_a_document_issued_before_the_one_held_is_refused(fleet: Fleet) -> None:
    held = document(5, "w1", issued_at=1000.0)
    old = fleet.check(signed(document(6, "w1", issued_at=999.0), fleet.signer()), held)
    assert isinstance(old, Reject)
    assert old.field == "issued_at"


def test_the_signer_never_issues_before_the_previous_document() -> None:
    f = Fleet()
    doc = sign_document(document(6, "w1", issued_at=10.0), f.signer(), previous_issued_at=20.0)
    assert doc.issued_at == 20.0
    assert isinstance(f.check(encode(doc), document(5, issued_at=20.0)), Verified)


def test_a_key_endorsed_by_the_current_key_is_adopted(fleet: Fleet) -> None:
    new = keys.new_key()
    chain = (keys.endorse(new, by=fleet.orch),)
    verdict = fleet.check(signed(document(2, "w1"), fleet.signer(new, chain)))
    assert isinstance(verdict, Verified)
    assert verdict.rotated
    assert verdict.key.key_id == keys.public_ref(new).key_id


def test_a_chain_of_two_rotations_and_a_root_endorsement_are_followed(fleet: Fleet) -> None:
    k1, k2 = keys.new_key(), keys.new_key()
    chain = (keys.endorse(k1, by=fleet.orch), keys.endorse(k2, by=k1))
    assert isinstance(fleet.check(signed(document(2), fleet.signer(k2, chain))), Verified)
    by_root = (keys.endorse(k2, by=fleet.root),)
    assert isinstance(fleet.check(signed(document(2), fleet.signer(k2, by_root))), Verified)


def test_a_key_endorsed_by_an_untrusted_key_is_refused(fleet: Fleet) -> None:
    thief, new = keys.new_key(), keys.new_key()
    chain = (keys.endorse(new, by=thief),)
    verdict = fleet.check(signed(document(2), fleet.signer(new, chain)))
    assert isinstance(verdict, Reject)
    assert verdict.field == "key_id"


def test_a_forged_endorsement_in_the_name_of_the_current_key_is_refused(fleet: Fleet) -> None:
    thief, new = keys.new_key(), keys.new_key()
    forged = keys.endorse(new, by=thief).model_copy(
        update={"signer": fleet.anchor.orchestrator.key_id}
    )
    verdict = fleet.check(signed(document(2), fleet.signer(new, (forged,))))
    assert verdict == Reject(
        "key_chain.0",
        f"endorsement of {forged.key_id} by {forged.signer} does not verify",
    )


def test_after_rotation_the_old_key_is_no_longer_trusted(fleet: Fleet) -> None:
    new = keys.new_key()
    rotated = TrustState(fleet.anchor, keys.public_ref(new))
    verdict = verify(signed(document(3), fleet.signer()), state=rotated, node=NODE, site=SITE,
                     held=None)  # fmt: skip
    assert isinstance(verdict, Reject)
    assert verdict.field == "key_id"


def test_a_revoked_key_is_refused_whoever_endorses_it(fleet: Fleet) -> None:
    new = keys.new_key()
    new_id = keys.public_ref(new).key_id
    anchor = fleet.anchor.model_copy(update={"revoked": [new_id]})
    state = TrustState(anchor, fleet.anchor.orchestrator)
    chain = (keys.endorse(new, by=fleet.root),)
    verdict = verify(signed(document(2), fleet.signer(new, chain)), state=state, node=NODE,
                     site=SITE, held=None)  # fmt: skip
    assert isinstance(verdict, Reject)
    assert "revoked" in verdict.reason


def test_the_stored_key_wins_only_under_the_same_root_and_unrevoked(fleet: Fleet) -> None:
    stored = keys.public_ref(keys.new_key())
    root = fleet.anchor.root.key_id
    assert initial_state(fleet.anchor, stored, root).current == stored
    assert initial_state(fleet.anchor, stored, "0" * 16).current == fleet.anchor.orchestrator
    revoked = fleet.anchor.model_copy(update={"revoked": [stored.key_id]})
    assert initial_state(revoked, stored, root).current == fleet.anchor.orchestrator
    assert initial_state(fleet.anchor, None, None).current == fleet.anchor.orchestrator


def test_a_trust_anchor_whose_key_id_does_not_match_its_key_is_refused(fleet: Fleet) -> None:
    data = fleet.anchor.model_dump(mode="json")
    data["orchestrator"]["key_id"] = "0123456789abcdef"
    with pytest.raises(ValueError, match="is not the id of this public key"):
        TrustAnchor.model_validate(data)
    raw = unb64(fleet.anchor.root.public_key, field="k", size=32)
    assert key_id(raw) == fleet.anchor.root.key_id


def test_load_signer_names_what_is_wrong(fleet: Fleet) -> None:
    with pytest.raises(ProtocolError, match="signing_key: is not a PEM private key"):
        load_signer(b"not a key")
    other = keys.endorse(keys.new_key(), by=fleet.root)
    with pytest.raises(ProtocolError, match="key_chain: ends at key"):
        load_signer(keys.key_pem(fleet.orch), keys.chain_json([other]))


def test_the_signed_example_in_the_protocol_doc_verifies_against_its_trust_anchor() -> None:
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    anchor_text = re.search(r"<!-- trust-anchor -->\n```json\n(.*?)\n```", doc, re.DOTALL)
    assert anchor_text is not None
    anchor = TrustAnchor.model_validate_json(anchor_text.group(1))
    examples = re.findall(r"<!-- example: Desired -->\n```json\n(.*?)\n```", doc, re.DOTALL)
    signed_examples = [e for e in examples if '"signature"' in e]
    assert signed_examples
    for example in signed_examples:
        body = json.loads(example)
        verdict = verify(example.encode(), state=TrustState(anchor, anchor.orchestrator),
                         node=body["node"], site=body["site"], held=None)  # fmt: skip
        assert isinstance(verdict, Verified), verdict
        assert verdict.rotated


# -- key references and anchors, every refusal in full (signing.py's surviving mutants) -------


def ref(seed: int) -> dict[str, str]:
    public = bytes([seed]) * 32
    return {"key_id": key_id(public), "public_key": b64(public)}


def refused(call: Any) -> str:
    with pytest.raises((ProtocolError, ValueError)) as caught:
        call()
    return str(caught.value)


def test_base64_fields_are_strict_and_of_exact_size() -> None:
    assert refused(lambda: unb64(b64(b"k" * 32) + "!", field="public_key", size=32)) == (
        "public_key: is not valid base64"
    )
    assert refused(lambda: unb64(b64(b"k" * 31), field="sig", size=32)) == (
        "sig: must decode to 32 bytes, got 31"
    )


def test_a_key_reference_names_its_own_key_and_a_public_key_of_32_bytes() -> None:
    good = ref(1)
    assert PublicKeyRef.model_validate(good).raw == bytes([1]) * 32
    other = {**good, "key_id": ref(2)["key_id"]}
    assert f"key_id {other['key_id']} is not the id of this public key" in refused(
        lambda: PublicKeyRef.model_validate(other)
    )
    short = {"key_id": key_id(b"k" * 31), "public_key": b64(b"k" * 31)}
    assert "public_key: must decode to 32 bytes, got 31" in refused(
        lambda: PublicKeyRef.model_validate(short)
    )
    # The length bound refuses before anything is decoded (a huge key costs nothing).
    for text, words in (("", "at least 1 character"), ("A" * 65, "at most 64 characters")):
        bad = {**good, "public_key": text}
        assert words in refused(lambda b=bad: PublicKeyRef.model_validate(b))  # type: ignore[misc]


def test_an_anchor_refuses_a_revoked_root_or_orchestrator_key_by_name() -> None:
    body = {"v": 1, "root": ref(1), "orchestrator": ref(2)}
    for name, seed in (("root", 1), ("orchestrator", 2)):
        revoked = {**body, "revoked": [ref(seed)["key_id"]]}
        assert f"the {name} key {ref(seed)['key_id']} is listed as revoked" in refused(
            lambda r=revoked: TrustAnchor.model_validate(r)  # type: ignore[misc]
        )
    many = [ref(3)["key_id"]] * 1024
    assert len(TrustAnchor.model_validate({**body, "revoked": many}).revoked) == 1024
    assert "revoked" in refused(
        lambda: TrustAnchor.model_validate({**body, "revoked": [*many, many[0]]})
    )
