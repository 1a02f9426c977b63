"""Sealed boxes, pure: they open only with the recipient's key and under their own name;
the orchestrator's deterministic boxes repeat for an unchanged value; the agent names
every secret that does not open, never its value; spec hashes ignore the boxes."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_agent.core.runtime import PermanentRuntimeError
from edgefleet_agent.security.secrets import secret_env, unopenable
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, spec_hash
from edgefleet_protocol.sealing import (
    SealError,
    private_bytes,
    private_from_bytes,
    public_text,
    seal,
    unseal,
)


def test_a_box_opens_with_its_key_and_name_only() -> None:
    node, other = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    box = seal(b"hunter2", name="db", recipient=public_text(node))
    assert unseal(box, name="db", key=node) == b"hunter2"
    with pytest.raises(SealError, match="does not open with this key"):
        unseal(box, name="db", key=other)
    with pytest.raises(SealError, match="does not open with this key"):
        unseal(box, name="api", key=node)
    with pytest.raises(SealError, match="not valid base64"):
        unseal("%%%", name="db", key=node)


def test_deterministic_boxes_repeat_only_for_the_same_value_and_node() -> None:
    orch, node = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    seed, to = private_bytes(orch), public_text(node)
    same = seal(b"v", name="db", recipient=to, derive_from=seed)
    assert same == seal(b"v", name="db", recipient=to, derive_from=seed)
    assert same != seal(b"w", name="db", recipient=to, derive_from=seed)
    assert seal(b"v", name="db", recipient=to) != seal(b"v", name="db", recipient=to)


def spec_with(box: str | None) -> WorkloadSpec:
    secret = {"name": "db", "env": "DB_PASSWORD", **({"sealed": box} if box else {})}
    return WorkloadSpec.model_validate({"runtime": "process", "command": ["x"],
                                        "secrets": [secret]})  # fmt: skip


def test_the_agent_names_secrets_that_do_not_open_and_never_their_value() -> None:
    node, other = X25519PrivateKey.generate(), X25519PrivateKey.generate()
    good = seal(b"hunter2", name="db", recipient=public_text(node))
    bad = seal(b"hunter2", name="db", recipient=public_text(other))
    doc = Desired(node="n", generation=1, issued_at=1.0, workloads=[
        DesiredWorkload(name="a", app="a", spec=spec_with(good), spec_hash="sha256:1"),
        DesiredWorkload(name="b", app="a", spec=spec_with(bad), spec_hash="sha256:1"),
        DesiredWorkload(name="c", app="a", spec=spec_with(None), spec_hash="sha256:1"),
    ])  # fmt: skip
    problems = unopenable(doc, node)
    assert [p.split(":")[0] for p in problems] == ["b", "c"]
    assert all("hunter2" not in p for p in problems)
    assert secret_env(node)(spec_with(good)) == {"DB_PASSWORD": "hunter2"}
    with pytest.raises(PermanentRuntimeError, match="secret db"):
        secret_env(node)(spec_with(bad))


def test_the_spec_hash_names_secrets_but_not_their_boxes() -> None:
    node = X25519PrivateKey.generate()
    box = seal(b"v", name="db", recipient=public_text(node))
    assert spec_hash(spec_with(box)) == spec_hash(spec_with(None))


# -- the sealed format and every refusal, exactly (sealing.py's surviving mutants) -------------

KNOWN_KEY = bytes(range(32))
KNOWN_BOX = "+Dbf1UpIjR1WiFNGU4RZk2LX09VDo+0WY6VotGc1EgUcuF2C1h5kZkj+BO/2UA0zS3z+4AEv"
"""``seal(b"s3cret", name="db", derive_from=b"\\x01" * 32)`` for KNOWN_KEY: a box made by
another implementation (or an older edgefleet) must keep opening, so the format (the HKDF
info, the ephemeral key's derivation, the nonce) is pinned byte for byte."""


def test_a_deterministic_box_is_byte_for_byte_the_known_one_and_opens() -> None:
    key = private_from_bytes(KNOWN_KEY)
    box = seal(b"s3cret", name="db", recipient=public_text(key), derive_from=b"\x01" * 32)
    assert box == KNOWN_BOX
    assert unseal(KNOWN_BOX, name="db", key=key) == b"s3cret"


def test_each_sealing_refusal_says_why() -> None:
    key = private_from_bytes(KNOWN_KEY)
    public = public_text(key)
    with pytest.raises(SealError, match=r"^a sealing key is 32 bytes, this one 31$"):
        private_from_bytes(KNOWN_KEY[:31])
    with pytest.raises(SealError, match=r"^the recipient's sealing key is not valid base64$"):
        seal(b"x", name="db", recipient=public + "!")
    with pytest.raises(SealError, match=r"^the recipient's sealing key must be 32 bytes$"):
        seal(b"x", name="db", recipient=base64.b64encode(b"k" * 31).decode())
    assert unseal(seal(b"x" * 65536, name="db", recipient=public), name="db", key=key)
    with pytest.raises(SealError, match=r"^a secret is at most 65536 bytes$"):
        seal(b"x" * 65537, name="db", recipient=public)


def test_each_opening_refusal_says_why() -> None:
    key = private_from_bytes(KNOWN_KEY)
    with pytest.raises(SealError, match=r"^is not valid base64$"):
        unseal(KNOWN_BOX + "!", name="db", key=key)
    with pytest.raises(SealError, match=r"^is too short to be a sealed secret$"):
        unseal(base64.b64encode(b"b" * 47).decode(), name="db", key=key)
    with pytest.raises(SealError, match=r"^does not open with this key \(sealed for another"):
        unseal(base64.b64encode(b"b" * 48).decode(), name="db", key=key)
