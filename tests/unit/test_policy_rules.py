"""Compliance-policy rules, pure, at their edges: what each rule of docs/protocol.md
("Compliance policies") permits and refuses, the words of each refusal an operator reads
(in ``policy_violation`` and the gateway's ``desired-rejected`` reason), the defaults a
policy hash spells out, and the bounds of a policy file."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, WorkloadSpec
from edgefleet_protocol.manifest import load_manifest
from edgefleet_protocol.policy import (
    CompliancePolicy,
    document_violations,
    image_reference,
    load_policy,
    manifest_violations,
    policy_hash,
    spec_violations,
)

DIGEST = "@sha256:" + "a" * 64

# docs/protocol.md: an empty file is an empty policy (everything allowed); the policy hash
# is over "the canonical JSON of the gateway's policy file (all defaults spelled out)".
DEFAULTS: dict[str, Any] = {
    "v": 1,
    "images": {"allow": [], "require_digest": False},
    "commands": {"allow": [], "cwd_under": []},
    "allow": {"privileged": False, "host_network": False, "host_paths": [], "devices": [],
              "capabilities": [], "users": ["*"]},
    "resources": {"required": False, "max_cpu": None, "max_memory_mb": None},
    "residency": [],
    "required_labels": [],
}  # fmt: skip


def docker(**fields: Any) -> WorkloadSpec:
    return WorkloadSpec.model_validate({"runtime": "docker", "image": "busybox" + DIGEST, **fields})


def process(**fields: Any) -> WorkloadSpec:
    return WorkloadSpec.model_validate(
        {"runtime": "process", "command": ["/opt/m/bin/m"], **fields}
    )


def said(spec: WorkloadSpec, policy: str, region: str | None = None) -> list[str]:
    """What the operator reads: ``rule: message`` for each broken rule, in order."""
    return [str(v) for v in spec_violations(spec, load_policy(policy), region=region)]


# -- a policy file ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "{}", "# nothing but a comment\n"])
def test_an_empty_file_is_the_empty_policy_with_every_default_spelled_out(text: str) -> None:
    policy = load_policy(text)
    assert policy.model_dump(mode="json") == DEFAULTS
    assert said(docker(user="root", privileged=False), text) == []


def test_the_policy_hash_is_sha256_of_the_canonical_json_with_defaults_16_hex_digits() -> None:
    canonical = json.dumps(DEFAULTS, sort_keys=True, separators=(",", ":")).encode()
    expected = "sha256:" + hashlib.sha256(canonical).hexdigest()[:16]
    assert policy_hash(load_policy("")) == expected
    assert policy_hash(CompliancePolicy()) == expected


def test_a_policy_file_is_at_most_256_KiB() -> None:
    limit = 256 * 1024
    body = "allow: {privileged: true}\n"
    exact = body + "#" * (limit - len(body) - 1) + "\n"
    assert len(exact) == limit
    assert load_policy(exact).allow.privileged is True
    with pytest.raises(ProtocolError) as caught:
        load_policy(exact + "#", source="big.yaml")
    assert (caught.value.field, caught.value.reason) == (
        "big.yaml",
        f"is larger than {limit} bytes",
    )


def test_a_bad_file_is_named_with_the_rule_and_the_words() -> None:
    with pytest.raises(ProtocolError) as caught:
        load_policy("- a list")
    assert (caught.value.field, caught.value.reason) == ("policy", "must hold a mapping of rules")
    with pytest.raises(ProtocolError) as caught:
        load_policy("images: [", source="p.yaml")
    assert caught.value.field == "p.yaml"
    assert caught.value.reason.startswith("is not valid YAML/JSON: ")
    with pytest.raises(ProtocolError) as caught:
        load_policy("allow: {privileged: maybe}", source="p.yaml")
    assert caught.value.field == "p.yaml: allow.privileged"
    assert str(caught.value).startswith("p.yaml: allow.privileged: ")


@pytest.mark.parametrize(
    ("rule", "item", "limit"),
    [
        ("images.allow", "docker.io/library/busybox", 1024),
        ("commands.allow", "/opt/m/bin/m", 1024),
        ("commands.cwd_under", "/opt/m", 256),
        ("allow.host_paths", "/srv/data", 256),
        ("allow.devices", "/dev/ttyUSB0", 256),
        ("allow.capabilities", "NET_ADMIN", 64),
        ("allow.users", "edge", 256),
        ("required_labels", "owner", 256),
        ("residency", {"data_class": "personal", "regions": ["eu"]}, 256),
        ("residency.0.regions", "eu", 256),
    ],
)
def test_each_list_of_a_policy_is_bounded(rule: str, item: Any, limit: int) -> None:
    def policy_with(count: int) -> str:
        value: Any = [item] * count
        *parents, leaf = rule.replace(".0.", ".").split(".")
        if rule == "residency.0.regions":
            return json.dumps({"residency": [{"data_class": "personal", "regions": value}]})
        return json.dumps({parents[0]: {leaf: value}} if parents else {leaf: value})

    assert load_policy(policy_with(limit))
    with pytest.raises(ProtocolError) as caught:
        load_policy(policy_with(limit + 1), source="p.yaml")
    assert caught.value.field == f"p.yaml: {rule}"


@pytest.mark.parametrize(("rule", "bad"), [("max_cpu", 0), ("max_memory_mb", 0)])
def test_resource_caps_are_above_zero(rule: str, bad: int) -> None:
    assert getattr(load_policy(f"resources: {{{rule}: 1}}").resources, rule) == 1
    with pytest.raises(ProtocolError) as caught:
        load_policy(f"resources: {{{rule}: {bad}}}", source="p.yaml")
    assert caught.value.field == f"p.yaml: resources.{rule}"


# -- images ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        ("gw-registry:5000/plant/meter:1.4", "gw-registry:5000/plant/meter"),
        ("localhost:5000/meter", "localhost:5000/meter"),
        ("a/b/c:tag", "docker.io/a/b/c"),
    ],
)
def test_a_registry_with_a_port_is_a_registry_not_a_docker_hub_user(
    image: str, repository: str
) -> None:
    assert image_reference(image) == (repository, None)


def test_an_image_refusal_names_the_normalised_repository() -> None:
    policy = "images: {allow: [registry.example.net/plant/*]}"
    assert said(docker(image="evil/miner:1"), policy) == [
        "images.allow: image docker.io/evil/miner is not in the allow-list"
    ]


def test_a_prefix_entry_covers_what_is_under_it_not_a_longer_name() -> None:
    policy = "images: {allow: [registry.example.net/plant/*]}"
    assert said(docker(image="registry.example.net/plant/meter:1"), policy) == []
    assert said(docker(image="registry.example.net/plantation/meter:1"), policy) == [
        "images.allow: image registry.example.net/plantation/meter is not in the allow-list"
    ]


def test_an_unpinned_image_is_named_as_written() -> None:
    assert said(docker(image="busybox:latest"), "images: {require_digest: true}") == [
        "images.require_digest: image busybox:latest is not pinned by digest (@sha256:...)"
    ]


def test_image_rules_judge_containers_only() -> None:
    policy = "images: {allow: [docker.io/library/busybox], require_digest: true}"
    assert said(process(image="evil/miner:latest"), policy) == []


# -- commands --------------------------------------------------------------------------------


def test_a_command_refusal_names_the_program() -> None:
    assert said(process(command=["/bin/sh", "-c", "x"]), "commands: {allow: [/opt/m/bin/*]}") == [
        "commands.allow: command /bin/sh is not allowed"
    ]


def test_command_rules_judge_processes_only() -> None:
    policy = "commands: {allow: [/opt/m/bin/*], cwd_under: [/opt/m]}"
    assert said(docker(command=["/bin/sh", "-c", "x"]), policy) == []


def test_a_working_directory_outside_the_roots_is_named_or_said_missing() -> None:
    policy = "commands: {cwd_under: [/opt/m]}"
    assert said(process(cwd="/tmp"), policy) == [
        "commands.cwd_under: working directory /tmp is not under an allowed directory"
    ]
    assert said(process(), policy) == [
        "commands.cwd_under: working directory (none) is not under an allowed directory"
    ]


def test_a_root_is_compared_by_whole_path_components() -> None:
    policy = "commands: {cwd_under: [/opt/APEX]}\nallow: {host_paths: [/srv/X]}"
    assert said(process(cwd="/opt/APEX/run"), policy) == []
    assert said(process(cwd="/opt/APEX"), policy) == []
    assert said(docker(volumes=[{"source": "/srv/X/db", "target": "/d"}]), policy) == []
    assert said(process(cwd="/opt/APEXES"), policy) == [
        "commands.cwd_under: working directory /opt/APEXES is not under an allowed directory"
    ]


# -- allowances ------------------------------------------------------------------------------


def test_each_forbidden_option_is_refused_in_words() -> None:
    spec = docker(privileged=True, host_network=True,
                  volumes=[{"source": "/etc", "target": "/e"}, {"source": "cache", "target": "/c"}],
                  devices=[{"host": "/dev/mem"}, {"host": "/dev/ttyUSB0"}],
                  cap_add=["SYS_ADMIN", "NET_ADMIN"], user="root")  # fmt: skip
    policy = "allow: {devices: [/dev/ttyUSB0], capabilities: [NET_ADMIN], users: [edge, '1000']}"
    assert said(spec, policy) == [
        "allow.privileged: privileged containers are forbidden",
        "allow.host_network: host network is forbidden",
        "allow.host_paths: host path /etc is not allowed",
        "allow.devices: device /dev/mem is not allowed",
        "allow.capabilities: capability SYS_ADMIN is not allowed",
        "allow.users: run-as user root is not allowed",
    ]


def test_any_user_is_allowed_unless_the_policy_lists_users() -> None:
    assert said(docker(user="root"), "{}") == []
    assert said(docker(user="root"), "allow: {users: ['*']}") == []
    assert said(docker(user="edge"), "allow: {users: [edge]}") == []


# -- resources -------------------------------------------------------------------------------


def test_resources_at_the_cap_are_allowed_and_above_it_refused_in_words() -> None:
    policy = "resources: {max_cpu: 1.5, max_memory_mb: 512}"
    assert said(docker(resources={"cpu": 1.5, "memory_mb": 512}), policy) == []
    assert said(docker(resources={"cpu": 2, "memory_mb": 513}), policy) == [
        "resources.max_cpu: cpu 2 is above 1.5",
        "resources.max_memory_mb: memory_mb 513 is above 512",
    ]


# -- residency on a gateway ------------------------------------------------------------------

RESIDENCY = "residency: [{data_class: personal, regions: [eu, ch]}]"


def test_on_a_gateway_residency_names_the_regions_and_where_it_was_asked_to_run() -> None:
    personal = docker(data_class="personal")
    assert said(personal, RESIDENCY, region="ch") == []
    assert said(personal, RESIDENCY, region="us") == [
        "residency: data class personal may run only in eu, ch, not in us"
    ]
    assert said(personal, RESIDENCY, region="") == [
        "residency: data class personal may run only in eu, ch, not in a node without a region"
    ]


def test_the_gateway_view_names_each_workload_and_treats_no_region_as_none() -> None:
    policy = load_policy(RESIDENCY)
    work = [("meter-0", docker(data_class="personal")), ("cam-0", docker())]
    assert document_violations(work, policy, region="eu") == []
    assert document_violations(work, policy, region="us") == [
        "meter-0: residency: data class personal may run only in eu, ch, not in us"
    ]
    assert document_violations(work, policy, region=None) == [
        "meter-0: residency: data class personal may run only in eu, ch, not in a node without"
        " a region"
    ]


# -- admission of a manifest (the orchestrator) ----------------------------------------------


def app(placement: dict[str, Any] | None = None, **workload: Any) -> tuple[Any, dict[str, Any]]:
    raw: dict[str, Any] = {
        "name": "meter", "replicas": 1, "labels": {"team": "ops"},
        "workload": {"runtime": "docker", "image": "busybox" + DIGEST, **workload},
    }  # fmt: skip
    if placement is not None:
        raw["placement"] = placement
    return load_manifest(json.dumps(raw)), raw


def admitted(policy: str, manifest: tuple[Any, dict[str, Any]]) -> list[str]:
    return [str(v) for v in manifest_violations(manifest[0], load_policy(policy),
                                                 given=manifest[1])]  # fmt: skip


def test_admission_names_missing_resources_and_each_missing_label() -> None:
    policy = "resources: {required: true}\nrequired_labels: [owner, site]"
    assert admitted(policy, app()) == [
        "resources.required: the workload must set resources",
        "required_labels: label owner is required",
        "required_labels: label site is required",
    ]
    assert admitted("{}", app()) == []


def test_admission_residency_wants_regions_within_the_rule() -> None:
    personal = {"data_class": "personal"}
    assert admitted(RESIDENCY, app({"regions": ["eu"]}, **personal)) == []
    assert admitted(RESIDENCY, app(None, **personal)) == [
        "residency: data class personal may run only in eu, ch: set placement.regions within them"
    ]
    assert admitted(RESIDENCY, app({"regions": ["eu", "us", "br"]}, **personal)) == [
        "residency: data class personal may run only in eu, ch: set placement.regions within"
        " them (br, us is not)"
    ]


def test_admission_checks_every_residency_rule_not_only_the_first() -> None:
    policy = ("residency: [{data_class: telemetry, regions: [us]},"
              " {data_class: personal, regions: [eu]}]")  # fmt: skip
    assert admitted(policy, app({"regions": ["us"]}, data_class="personal")) == [
        "residency: data class personal may run only in eu: set placement.regions within them"
        " (us is not)"
    ]
