"""Compliance policies, pure: every rule as a table, every broken rule listed, the agent's
whole-document refusal, and a bad policy file named precisely."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_agent.core.admission import Reject
from edgefleet_agent.security.local_policy import local_policy_verdict
from edgefleet_orchestrator.security.admission import admission_violations
from edgefleet_protocol import Desired, DesiredWorkload, ProtocolError, WorkloadSpec
from edgefleet_protocol.manifest import load_manifest
from edgefleet_protocol.policy import (
    image_reference,
    load_policy,
    policy_hash,
    spec_violations,
)

POLICY = load_policy(
    """
images:
  allow: [docker.io/library/busybox, registry.example.net/plant/*]
  require_digest: true
commands:
  allow: [/opt/bridge/bin/*, /usr/bin/sleep]
  cwd_under: [/opt/bridge]
allow:
  host_paths: [/srv/data]
  devices: [/dev/ttyUSB0]
  capabilities: [NET_ADMIN]
  users: ["1000", edge]
resources: {required: true, max_cpu: 1, max_memory_mb: 512}
residency:
  - {data_class: personal, regions: [eu]}
required_labels: [owner]
"""
)
DIGEST = "@sha256:" + "a" * 64


def spec(**fields: Any) -> WorkloadSpec:
    return WorkloadSpec.model_validate({"runtime": "docker", "image": "busybox" + DIGEST, **fields})


def rules(s: WorkloadSpec, region: str | None = None) -> list[str]:
    return [v.rule for v in spec_violations(s, POLICY, region=region)]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("busybox", ("docker.io/library/busybox", None)),
        ("busybox:1.36", ("docker.io/library/busybox", None)),
        ("grafana/grafana:10", ("docker.io/grafana/grafana", None)),
        ("registry.example.net:5000/plant/x:1@sha256:ab", ("registry.example.net:5000/plant/x",
                                                          "sha256:ab")),
        ("localhost/x", ("localhost/x", None)),
    ],
)  # fmt: skip
def test_image_references_are_normalised(image: str, expected: tuple[str, str | None]) -> None:
    assert image_reference(image) == expected


CASES = [
    ("a compliant container", spec(), []),
    ("an image outside the allow-list", spec(image="evil/miner" + DIGEST), ["images.allow"]),
    ("a registry prefix entry", spec(image="registry.example.net/plant/x" + DIGEST), []),
    ("a tag instead of a digest", spec(image="busybox:latest"), ["images.require_digest"]),
    ("privileged", spec(privileged=True), ["allow.privileged"]),
    ("host network", spec(host_network=True), ["allow.host_network"]),
    ("an allowed host path", spec(volumes=[{"source": "/srv/data/x", "target": "/d"}]), []),
    ("a sibling of an allowed host path",
     spec(volumes=[{"source": "/srv/database", "target": "/d"}]), ["allow.host_paths"]),
    ("a named volume", spec(volumes=[{"source": "cache", "target": "/c"}]), []),
    ("a device not listed", spec(devices=[{"host": "/dev/mem"}]), ["allow.devices"]),
    ("a capability not listed", spec(cap_add=["SYS_ADMIN", "NET_ADMIN"]),
     ["allow.capabilities"]),
    ("a user not listed", spec(user="root"), ["allow.users"]),
    ("limits above the caps", spec(resources={"cpu": 2, "memory_mb": 1024}),
     ["resources.max_cpu", "resources.max_memory_mb"]),
    ("a command not allowed",
     WorkloadSpec(runtime="process", command=["/bin/sh", "-c", "x"], cwd="/opt/bridge"),
     ["commands.allow"]),
    ("a cwd outside the limits",
     WorkloadSpec(runtime="process", command=["/usr/bin/sleep", "9"], cwd="/tmp"),
     ["commands.cwd_under"]),
]  # fmt: skip


@pytest.mark.parametrize(("case", "workload", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_rule(case: str, workload: WorkloadSpec, expected: list[str]) -> None:
    assert rules(workload) == expected, case


def test_residency_on_the_gateway_uses_its_region() -> None:
    personal = spec(data_class="personal")
    assert rules(personal, region="eu") == []
    assert rules(personal, region="us") == ["residency"]
    assert rules(personal, region="") == ["residency"]
    assert rules(spec(data_class="telemetry"), region="us") == []


def manifest(**workload: Any) -> tuple[Any, dict[str, Any]]:
    raw: dict[str, Any] = {
        "name": "cam",
        "replicas": 1,
        "labels": {"owner": "ops"},
        "placement": {"regions": ["eu"]},
        "workload": {"runtime": "docker", "image": "busybox" + DIGEST,
                     "resources": {"cpu": 0.5, "memory_mb": 128}, **workload},
    }  # fmt: skip
    return load_manifest(json.dumps(raw)), raw


def test_admission_lists_every_rule_a_manifest_breaks() -> None:
    app, raw = manifest(privileged=True, host_network=True, image="evil/x:latest",
                        volumes=[{"source": "/etc", "target": "/e"}],
                        devices=[{"host": "/dev/mem"}], data_class="personal")  # fmt: skip
    raw["labels"] = {}
    raw["placement"] = {"regions": ["eu", "us"]}
    del raw["workload"]["resources"]
    app = load_manifest(json.dumps(raw))
    broken = admission_violations(app, POLICY, raw)
    assert [b.split(":")[0] for b in broken] == [
        "images.allow",
        "images.require_digest",
        "allow.privileged",
        "allow.host_network",
        "allow.host_paths",
        "allow.devices",
        "resources.required",
        "required_labels",
        "residency",
    ]
    assert "us is not" in broken[-1]


def test_a_compliant_manifest_is_admitted() -> None:
    app, raw = manifest()
    assert admission_violations(app, POLICY, raw) == []


def test_the_gateway_refuses_a_document_as_a_whole_naming_every_rule() -> None:
    ok = DesiredWorkload(name="ok", app="a", spec=spec(), spec_hash="sha256:1")
    bad = DesiredWorkload(name="bad", app="a", spec=spec(privileged=True, user="root"),
                          spec_hash="sha256:2")  # fmt: skip
    doc = Desired(node="n", generation=3, issued_at=1.0, workloads=[ok, bad])
    verdict = local_policy_verdict(doc, POLICY, region="eu")
    assert isinstance(verdict, Reject)
    assert verdict.field == "policy"
    assert "bad: allow.privileged" in verdict.reason
    assert "bad: allow.users" in verdict.reason
    assert local_policy_verdict(doc.model_copy(update={"workloads": [ok]}), POLICY,
                                region="eu") is None  # fmt: skip


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("images: [", "is not valid YAML/JSON"),
        ("- a list", "must hold a mapping"),
        ("imagez: {}", "unknown field(s) imagez"),
        ("allow: {privileged: maybe}", "allow.privileged"),
        ("allow: {host_paths: [relative/dir]}", "must be an absolute path"),
        ("resources: {max_cpu: -1}", "resources.max_cpu"),
        ("residency: [{data_class: personal, regions: []}]", "residency.0.regions"),
    ],
)
def test_a_bad_policy_file_is_named_precisely(text: str, words: str) -> None:
    with pytest.raises(ProtocolError, match=r"policy\.yaml") as caught:
        load_policy(text, source="policy.yaml")
    assert words in str(caught.value)


def test_the_policy_hash_is_stable_and_changes_with_the_rules() -> None:
    assert policy_hash(POLICY) == policy_hash(load_policy(POLICY.model_dump_json()))
    assert policy_hash(POLICY) != policy_hash(load_policy("{}"))
