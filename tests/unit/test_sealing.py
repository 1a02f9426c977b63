"""Sealed boxes, pure: they open only with the recipient's key and under their own name;
the orchestrator's deterministic boxes repeat for an unchanged value; the agent names
every secret that does not open, never its value; spec hashes ignore the boxes."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_agent.core.runtime import PermanentRuntimeError
from edgefleet_agent.security.secrets import secret_env, unopenable
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, spec_hash
from edgefleet_protocol.sealing import SealError, private_bytes, public_text, seal, unseal


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
