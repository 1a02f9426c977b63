"""The codec and the payload models: good payloads decode, every kind of bad payload is one
ProtocolError naming the field, unknown fields are ignored, and spec hashes are stable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import (
    MAX_PAYLOAD_BYTES,
    AppStatus,
    Capabilities,
    CommandReply,
    CommandRequest,
    ComplianceReport,
    Desired,
    Event,
    FleetSummary,
    NodeStatus,
    OrchestratorStatus,
    ProtocolError,
    Reported,
    RolloutStatus,
    ServiceEndpoints,
    Telemetry,
    TopicKind,
    WorkloadSpec,
    decode,
    decode_for_kind,
    encode,
    identity_hash,
    spec_hash,
    validate,
)
from edgefleet_protocol.codec import MODEL_FOR_KIND
from edgefleet_protocol.codec import validate as codec_validate
from edgefleet_protocol.logs import LogsChunk, LogsRequest
from pydantic import BaseModel, field_validator

T = 1_700_000_000.25
DOCKER_SPEC = {"runtime": "docker", "image": "nginx:1.25-alpine", "ports": [{"container": 80}]}

GOOD: dict[type[BaseModel], dict[str, Any]] = {
    NodeStatus: {
        "v": 1,
        "node": "gw-1",
        "site": "plant-a",
        "state": "online",
        "session": 3,
        "since": T,
        "agent_version": "0.1.0",
    },
    Capabilities: {
        "v": 1,
        "node": "gw-1",
        "site": "plant-a",
        "arch": "aarch64",
        "cpu_cores": 4,
        "memory_mb": 4096,
        "disk_mb": 30000,
        "runtimes": ["docker", "process"],
        "labels": {"zone": "line-3"},
        "network": {"link": "ethernet", "bandwidth_mbps": 1000},
    },
    Telemetry: {
        "v": 1,
        "node": "gw-1",
        "site": "plant-a",
        "ts": T,
        "cpu_pct": 12.5,
        "workloads": {"web-0": {"cpu_pct": 3.0, "memory_mb": 21.5}},
    },
    Desired: {
        "v": 1,
        "node": "gw-1",
        "site": "plant-a",
        "generation": 7,
        "issued_at": T,
        "workloads": [
            {"name": "web-0", "app": "web", "spec": DOCKER_SPEC, "spec_hash": "sha256:0"},
        ],
    },
    Reported: {
        "v": 1,
        "node": "gw-1",
        "observed_generation": 7,
        "session": 3,
        "ts": T,
        "workloads": {"web-0": {"spec_hash": "sha256:0", "state": "running", "since": T}},
    },
    Event: {"v": 1, "ts": T, "level": "warning", "kind": "apply", "message": "pull slow"},
    ComplianceReport: {
        "v": 1,
        "node": "gw-1",
        "site": "plant-a",
        "ts": T,
        "agent_version": "0.1.0",
        "compliant": False,
        "drift": ["stray: running but not desired"],
    },
    AppStatus: {
        "v": 1,
        "app": "web",
        "state": "degraded",
        "desired": 3,
        "placed": 2,
        "running": 2,
        "unplaced": [{"count": 1, "reasons": ["gw-2: memory 64 MB free, 128 MB needed"]}],
        "updated_at": T,
    },
    RolloutStatus: {
        "v": 1,
        "app": "web",
        "revision": 3,
        "from_revision": 2,
        "phase": "canary",
        "counts": {"total": 10, "updated": 1, "healthy": 0, "failed": 0},
        "canary": ["web-0"],
        "started_at": T,
        "updated_at": T,
    },
    ServiceEndpoints: {
        "v": 1,
        "service": "web",
        "app": "web",
        "updated_at": T,
        "endpoints": [{"node": "gw-1", "address": "10.0.0.5", "port": 8080}],
    },
    FleetSummary: {
        "v": 1,
        "ts": T,
        "nodes_total": 3,
        "nodes_online": 2,
        "nodes_offline": 1,
        "apps_total": 2,
        "apps_healthy": 1,
        "apps_degraded": 1,
    },
    OrchestratorStatus: {"v": 1, "state": "online", "since": T, "version": "0.1.0"},
    CommandRequest: {"v": 1, "request_id": "op-42", "reply_to": "edgefleet/v1/replies/ops/42"},
    CommandReply: {"v": 1, "request_id": "op-42", "ok": True, "result": {"apps": []}},
    LogsRequest: {
        "v": 1,
        "request_id": "op-43",
        "reply_to": "edgefleet/v1/replies/ops/logs/plant-a/gw-1/op-43",
        "workload": "web-0",
    },
    LogsChunk: {
        "v": 1,
        "request_id": "op-43",
        "node": "gw-1",
        "workload": "web-0",
        "seq": 0,
        "lines": ["hello"],
        "done": True,
        "end": "complete",
    },
}
MODELS = list(GOOD)


def payload(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


def changed(model: type[BaseModel], **changes: Any) -> bytes:
    data = dict(GOOD[model])
    data.update(changes)
    return payload(data)


def refusal(model: type[BaseModel], raw: bytes | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        decode(model, raw)
    return info.value


# -- good payloads ----------------------------------------------------------------------------


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_good_payload_decodes_and_survives_an_encode_round_trip(model: type[BaseModel]) -> None:
    decoded = decode(model, payload(GOOD[model]))
    assert isinstance(decoded, model)
    assert decode(model, encode(decoded)) == decoded
    assert b"null" not in encode(decoded)  # None fields are left out, not sent as null


@pytest.mark.parametrize("kind", list(TopicKind))
def test_decode_for_kind_uses_the_model_of_that_topic_kind(kind: TopicKind) -> None:
    model = MODEL_FOR_KIND[kind]
    assert isinstance(decode_for_kind(kind, payload(GOOD[model])), model)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_unknown_fields_are_ignored_for_forward_compatibility(model: type[BaseModel]) -> None:
    extended = changed(model, added_in_v1_7={"nested": [1, 2]}, zz_flag=True)
    assert decode(model, extended) == decode(model, payload(GOOD[model]))


def test_a_payload_exactly_at_the_size_limit_is_accepted() -> None:
    raw = payload(GOOD[NodeStatus])
    padded = raw + b" " * (MAX_PAYLOAD_BYTES - len(raw))
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert decode(NodeStatus, padded).node == "gw-1"


# -- bad payloads -----------------------------------------------------------------------------


def required_fields(model: type[BaseModel]) -> list[tuple[type[BaseModel], str]]:
    return [(model, name) for name, field in model.model_fields.items() if field.is_required()]


REQUIRED = [case for model in MODELS for case in required_fields(model)]


def test_every_model_has_required_fields_to_test() -> None:
    assert {model for model, _ in REQUIRED} == set(MODELS)


@pytest.mark.parametrize(("model", "name"), REQUIRED, ids=lambda x: getattr(x, "__name__", x))
def test_a_missing_required_field_is_named(model: type[BaseModel], name: str) -> None:
    data = dict(GOOD[model])
    del data[name]
    error = refusal(model, payload(data))
    assert error.field == name
    assert error.reason == "is required"


WRONG: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (NodeStatus, {"session": "three"}, "session"),
    (NodeStatus, {"session": -1}, "session"),
    (NodeStatus, {"state": "sleeping"}, "state"),
    (NodeStatus, {"node": "GW/1"}, "node"),
    (NodeStatus, {"site": "+"}, "site"),
    (Capabilities, {"runtimes": ["rkt"]}, "runtimes.0"),
    (Capabilities, {"runtimes": []}, "runtimes"),
    (Capabilities, {"cpu_cores": 0}, "cpu_cores"),
    (Capabilities, {"labels": {"zone": 3}}, "labels.zone"),
    (Capabilities, {"network": {"bandwidth_mbps": -5}}, "network.bandwidth_mbps"),
    (Telemetry, {"memory_pct": 101}, "memory_pct"),
    (Telemetry, {"ts": "yesterday"}, "ts"),
    (Telemetry, {"workloads": {"Web": {}}}, "workloads.Web.[key]"),
    (Telemetry, {"metrics": {"queue": "deep"}}, "metrics.queue"),
    (Desired, {"generation": -1}, "generation"),
    (Desired, {"generation": 1.5}, "generation"),
    (Desired, {"workloads": {"web-0": {}}}, "workloads"),
    (
        Desired,
        {"workloads": [{"name": "w", "app": "a", "spec": {"runtime": "docker"}, "spec_hash": "x"}]},
        "workloads.0.spec",
    ),
    (
        Desired,
        {"workloads": [{"name": "w", "app": "a", "spec": {"runtime": "vm"}, "spec_hash": "x"}]},
        "workloads.0.spec.runtime",
    ),
    (
        Desired,
        {"workloads": [{"name": "w", "app": "a", "spec": DOCKER_SPEC, "spec_hash": "x"}] * 2},
        "workloads",
    ),
    (
        Reported,
        {"workloads": {"web-0": {"spec_hash": "x", "state": "dancing", "since": T}}},
        "workloads.web-0.state",
    ),
    (Event, {"level": "fatal"}, "level"),
    (Event, {"kind": ""}, "kind"),
    (AppStatus, {"state": "fine"}, "state"),
    (AppStatus, {"unplaced": [{"count": 0}]}, "unplaced.0.count"),
    (
        ServiceEndpoints,
        {"endpoints": [{"node": "gw-1", "address": "a", "port": 0}]},
        "endpoints.0.port",
    ),
    (FleetSummary, {"nodes_online": -1}, "nodes_online"),
    (OrchestratorStatus, {"state": "busy"}, "state"),
    (CommandRequest, {"request_id": "has space"}, "request_id"),
    (CommandRequest, {"request_id": ""}, "request_id"),
    (CommandRequest, {"reply_to": "edgefleet/v1/replies/+"}, "reply_to"),
    (CommandRequest, {"reply_to": "edgefleet/v1/replies/#"}, "reply_to"),
    (CommandReply, {"ok": "maybe"}, "ok"),
    (CommandReply, {"error": {"code": "x", "message": "y"}}, "payload"),
    (CommandReply, {"ok": False}, "payload"),
]


@pytest.mark.parametrize(
    ("model", "changes", "field"), WRONG, ids=[f"{m.__name__}-{f}" for m, _, f in WRONG]
)
def test_an_ill_typed_or_out_of_range_field_is_named(
    model: type[BaseModel], changes: dict[str, Any], field: str
) -> None:
    assert refusal(model, changed(model, **changes)).field == field


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("version", [2, 0, "1", None, 1.5])
def test_an_unsupported_protocol_version_is_refused(model: type[BaseModel], version: Any) -> None:
    error = refusal(model, changed(model, v=version))
    assert error.field == "v"
    assert "unsupported protocol version" in error.reason


def test_a_number_too_large_for_a_float_is_refused_not_turned_into_infinity() -> None:
    raw = b'{"v": 1, "node": "gw-1", "site": "s", "ts": 1, "metrics": {"queue": 1e400}}'
    error = refusal(Telemetry, raw)
    assert error.field == "metrics.queue"
    assert "finite" in error.reason


def test_a_payload_without_v_is_read_as_version_1() -> None:
    data = dict(GOOD[NodeStatus])
    del data["v"]
    assert decode(NodeStatus, payload(data)).v == 1


BAD_BYTES: list[tuple[bytes | str, str]] = [
    (b"", "is empty"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b'{"v": 1, "node": "\xc3"}', "not UTF-8"),
    (b"not json", "not valid JSON"),
    (b'{"v": 1,', "not valid JSON"),
    (b"[1, 2]", "must be a JSON object, got list"),
    (b'"text"', "must be a JSON object, got str"),
    (b"null", "must be a JSON object, got NoneType"),
    (b"42", "must be a JSON object, got int"),
    (b'{"v": 1, "since": NaN}', "NaN is not a JSON number"),
    (b'{"v": 1, "since": -Infinity}', "-Infinity is not a JSON number"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    (b'{"a":' * 40_000 + b"1" + b"}" * 40_000, "not valid JSON"),
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize(("raw", "reason"), BAD_BYTES, ids=[r for _, r in BAD_BYTES])
def test_bytes_that_are_not_a_json_object_are_refused_as_the_payload(
    model: type[BaseModel], raw: bytes, reason: str
) -> None:
    error = refusal(model, raw)
    assert error.field == "payload"
    assert reason in error.reason


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_payload_over_the_size_limit_is_refused_before_parsing(model: type[BaseModel]) -> None:
    raw = payload(GOOD[model])
    oversize = raw + b" " * (MAX_PAYLOAD_BYTES + 1 - len(raw))
    assert len(oversize) == 256 * 1024 + 1
    error = refusal(model, oversize)
    assert error.field == "payload"
    assert f"{MAX_PAYLOAD_BYTES + 1} bytes exceeds the limit of {MAX_PAYLOAD_BYTES}" in error.reason


def test_a_caller_can_set_a_smaller_limit() -> None:
    with pytest.raises(ProtocolError, match="exceeds the limit of 10"):
        decode(NodeStatus, payload(GOOD[NodeStatus]), max_bytes=10)


def test_several_errors_are_counted_in_the_reason() -> None:
    error = refusal(NodeStatus, b'{"v": 1}')
    assert error.field == "node"
    assert error.reason == "is required (and 4 more errors)"


# -- workload spec hashes ---------------------------------------------------------------------

BASE_SPEC: dict[str, Any] = {
    "runtime": "docker",
    "image": "ghcr.io/acme/sensor-bridge:2.1",
    "command": ["bridge", "--port", "1883"],
    "env": {"LOG_LEVEL": "info", "SITE": "plant-a"},
    "ports": [{"container": 1883, "host": 11883}],
    "resources": {"cpu": 0.5, "memory_mb": 128},
}


def spec(data: dict[str, Any]) -> WorkloadSpec:
    return validate(WorkloadSpec, data)


def test_spec_hash_has_the_documented_shape() -> None:
    digest = spec_hash(spec(BASE_SPEC))
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 16
    int(digest.removeprefix("sha256:"), 16)


def test_spec_hash_does_not_depend_on_key_order() -> None:
    reordered = {key: BASE_SPEC[key] for key in reversed(list(BASE_SPEC))}
    reordered["env"] = {"SITE": "plant-a", "LOG_LEVEL": "info"}
    reordered["resources"] = {"memory_mb": 128, "cpu": 0.5}
    assert spec_hash(spec(reordered)) == spec_hash(spec(BASE_SPEC))


def test_spec_hash_does_not_depend_on_fields_spelled_out_at_their_default() -> None:
    explicit = dict(BASE_SPEC)
    explicit.update(restart="always", stop_timeout_s=10.0, cwd=None, health=None)
    explicit["ports"] = [
        {"container": 1883, "host": 11883, "protocol": "tcp", "host_ip": "0.0.0.0"}
    ]
    assert spec_hash(spec(explicit)) == spec_hash(spec(BASE_SPEC))
    bare = {"runtime": "docker", "image": "x"}
    assert spec_hash(spec({**bare, "resources": {"cpu": 0.1, "memory_mb": 64}, "env": {}})) == (
        spec_hash(spec(bare))
    )


CHANGES: list[tuple[str, Any]] = [
    ("image", "ghcr.io/acme/sensor-bridge:2.2"),
    ("command", ["bridge", "--port", "1884"]),
    ("env", {"LOG_LEVEL": "debug", "SITE": "plant-a"}),
    ("ports", [{"container": 1883, "host": 11884}]),
    ("restart", "on-failure"),
    ("stop_timeout_s", 30),
    ("health", {"kind": "tcp", "port": 1883}),
    ("resources", {"cpu": 1.0, "memory_mb": 128}),
    ("resources", {"cpu": 0.5, "memory_mb": 256}),
]


def test_spec_hash_changes_whenever_any_field_changes() -> None:
    hashes = {spec_hash(spec(BASE_SPEC))}
    for name, value in CHANGES:
        hashes.add(spec_hash(spec({**BASE_SPEC, name: value})))
    assert len(hashes) == len(CHANGES) + 1


@pytest.mark.parametrize("resources", [{"cpu": 2.0}, {"memory_mb": 512}, {}])
def test_identity_hash_ignores_resources_but_spec_hash_does_not(resources: dict[str, Any]) -> None:
    before, after = spec(BASE_SPEC), spec({**BASE_SPEC, "resources": resources})
    assert identity_hash(after) == identity_hash(before)
    assert spec_hash(after) != spec_hash(before)


def test_identity_hash_changes_when_anything_but_resources_changes() -> None:
    base = identity_hash(spec(BASE_SPEC))
    for name, value in CHANGES:
        if name != "resources":
            assert identity_hash(spec({**BASE_SPEC, name: value})) != base, name


# -- forbid_unknown: hand-written specs refuse typos ------------------------------------------

TYPOS: list[tuple[dict[str, Any], str, str]] = [
    ({**BASE_SPEC, "imgae": "x"}, "payload", "imgae"),
    ({**BASE_SPEC, "resources": {"cpu": 1, "memroy_mb": 64}}, "resources", "memroy_mb"),
    ({**BASE_SPEC, "ports": [{"container": 80, "hots": 8080}]}, "ports.0", "hots"),
    (
        {**BASE_SPEC, "health": {"kind": "tcp", "port": 1, "intervall_s": 5}},
        "health",
        "intervall_s",
    ),
]


@pytest.mark.parametrize(("data", "field", "typo"), TYPOS, ids=[t for _, _, t in TYPOS])
def test_forbid_unknown_refuses_a_typo_with_its_path(
    data: dict[str, Any], field: str, typo: str
) -> None:
    assert spec(data) == spec(data)  # on the wire the typo is ignored...
    with pytest.raises(ProtocolError) as info:  # ...but not in a hand-written manifest
        validate(WorkloadSpec, data, forbid_unknown=True)
    assert info.value.field == field
    assert typo in info.value.reason
    assert "allowed:" in info.value.reason


def test_forbid_unknown_reaches_specs_nested_in_a_desired_document() -> None:
    data = dict(GOOD[Desired])
    bad_spec = {**DOCKER_SPEC, "resources": {"memroy_mb": 64}}
    data["workloads"] = [{"name": "w", "app": "a", "spec": bad_spec, "spec_hash": "x"}]
    assert validate(Desired, data).workloads[0].spec.resources.memory_mb == 64
    with pytest.raises(ProtocolError) as info:
        validate(Desired, data, forbid_unknown=True)
    assert info.value.field == "workloads.0.spec.resources"


def test_size_and_empty_refusals_say_what_is_wrong_in_words() -> None:
    # The reason reaches operators in events and replies: it names the size and the limit.
    from edgefleet_protocol.codec import parse_json_object

    with pytest.raises(ProtocolError) as big:
        parse_json_object(b"{}" + b" " * 20, max_bytes=10)
    assert (big.value.field, big.value.reason) == ("payload", "22 bytes exceeds the limit of 10")
    with pytest.raises(ProtocolError) as empty:
        parse_json_object(b"")
    assert (empty.value.field, empty.value.reason) == (
        "payload",
        "is empty; expected a JSON object",
    )


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "is not UTF-8 (invalid start byte at byte 0)"),
        (b"{not json", "is not valid JSON: Expecting property name enclosed in double quotes"),
        (b"[1]", "must be a JSON object, got list"),
        (b'{"a": NaN}', "is not valid JSON: NaN is not a JSON number"),
        (b"[" * 100_000 + b"]" * 100_000, "is not valid JSON: nested too deeply"),
    ],
)
def test_a_broken_payload_is_refused_with_these_exact_words(payload: bytes, reason: str) -> None:
    from edgefleet_protocol.codec import parse_json_object

    with pytest.raises(ProtocolError) as refused:
        parse_json_object(payload, max_bytes=10**7)
    assert (refused.value.field, refused.value.reason) == ("payload", reason)


def test_version_and_validator_refusals_read_as_documented() -> None:
    from edgefleet_protocol.codec import validate

    with pytest.raises(ProtocolError) as version:
        validate(NodeStatus, {"v": 2})
    assert version.value.field == "v"
    assert version.value.reason.startswith("unsupported protocol version 2; this peer speaks v=1")
    # Another Literal field (state) is an ordinary refusal, not a version one.
    good = {"v": 1, "node": "gw-1", "site": "s1", "session": 1, "since": 1.0}
    with pytest.raises(ProtocolError) as state:
        validate(NodeStatus, {**good, "state": "sleeping"})
    assert state.value.field == "state"
    assert "protocol version" not in state.value.reason
    # A validator's own message comes through without pydantic's "Value error, " prefix.
    with pytest.raises(ProtocolError) as runtime:
        validate(WorkloadSpec, {"runtime": "docker"})
    assert not runtime.value.reason.startswith("Value error")
    assert "http" not in runtime.value.reason  # no pydantic documentation links


def test_a_refusal_counts_the_other_errors_in_words() -> None:
    from edgefleet_protocol.codec import validate

    good = {"v": 1, "node": "gw-1", "site": "s1", "state": "online", "session": 1, "since": 1.0}
    with pytest.raises(ProtocolError) as one_more:
        validate(NodeStatus, {k: v for k, v in good.items() if k not in ("node", "site")})
    assert one_more.value.reason == "is required (and 1 more error)"
    with pytest.raises(ProtocolError) as two_more:
        validate(NodeStatus, {k: v for k, v in good.items() if k not in ("node", "site", "state")})
    assert two_more.value.reason == "is required (and 2 more errors)"
    with pytest.raises(ProtocolError) as alone:
        validate(NodeStatus, {k: v for k, v in good.items() if k != "node"})
    assert alone.value.reason == "is required"


class _Bottomless(BaseModel):
    """Stands for data whose validation recursed past Python's limit (a validator that walks
    nested values): pydantic lets the RecursionError through."""

    x: int = 0

    @field_validator("x")
    @classmethod
    def _recurse(cls, value: int) -> int:
        raise RecursionError("maximum recursion depth exceeded")


def test_validation_that_recursed_too_deep_is_a_payload_refusal() -> None:
    with pytest.raises(ProtocolError) as caught:
        codec_validate(_Bottomless, {"x": 1})
    assert (caught.value.field, caught.value.reason) == ("payload", "nested too deeply")
