"""Property tests for the boundary: whatever arrives — any topic string, any bytes, any JSON
object, any command — the protocol package answers with a value or a ProtocolError, never
with another exception; and whatever it accepts, it can write back and read again."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from edgefleet_protocol import (
    AppStatus,
    Capabilities,
    CommandReply,
    CommandRequest,
    Desired,
    Event,
    FleetSummary,
    NodeStatus,
    OrchestratorStatus,
    ParsedTopic,
    ProtocolError,
    Reported,
    ServiceEndpoints,
    Telemetry,
    TopicKind,
    Topics,
    decode,
    decode_for_kind,
    encode,
    validate_id,
)
from edgefleet_protocol.commands import VERBS, check_reply_to, manifest_from_text, parse_command
from edgefleet_protocol.ids import ID_PATTERN
from edgefleet_protocol.topics import NODE_KINDS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

R = TypeVar("R")

# The machine is small and noisy: no per-example deadline, a bounded number of examples.
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

T = 1_700_000_000.0
SPEC = {"runtime": "docker", "image": "nginx:1.25"}
SEEDS: dict[type[BaseModel], dict[str, Any]] = {
    NodeStatus: {"v": 1, "node": "n", "site": "s", "state": "online", "session": 1, "since": T},
    Capabilities: {
        "v": 1,
        "node": "n",
        "site": "s",
        "arch": "x86_64",
        "cpu_cores": 2,
        "memory_mb": 512,
        "disk_mb": 0,
        "runtimes": ["process"],
    },
    Telemetry: {"v": 1, "node": "n", "site": "s", "ts": T, "metrics": {"q": 1.0}},
    Desired: {
        "v": 1,
        "node": "n",
        "generation": 1,
        "issued_at": T,
        "workloads": [{"name": "w", "app": "a", "spec": SPEC, "spec_hash": "sha256:0"}],
    },
    Reported: {
        "v": 1,
        "node": "n",
        "observed_generation": 1,
        "session": 1,
        "ts": T,
        "workloads": {"w": {"spec_hash": "sha256:0", "state": "running", "since": T}},
    },
    Event: {"v": 1, "ts": T, "kind": "k", "message": "m", "details": {"x": [1]}},
    AppStatus: {
        "v": 1,
        "app": "a",
        "state": "healthy",
        "desired": 1,
        "placed": 1,
        "running": 1,
        "updated_at": T,
    },
    ServiceEndpoints: {
        "v": 1,
        "service": "a",
        "app": "a",
        "updated_at": T,
        "endpoints": [{"node": "n", "address": "10.0.0.1", "port": 80}],
    },
    FleetSummary: {
        "v": 1,
        "ts": T,
        "nodes_total": 1,
        "nodes_online": 1,
        "nodes_offline": 0,
        "apps_total": 0,
        "apps_healthy": 0,
        "apps_degraded": 0,
    },
    OrchestratorStatus: {"v": 1, "state": "online", "since": T},
    CommandRequest: {"v": 1, "request_id": "r1", "reply_to": "edgefleet/v1/replies/u/1"},
    CommandReply: {"v": 1, "request_id": "r1", "ok": False, "error": {"code": "x", "message": "m"}},
}
MODELS = list(SEEDS)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=16)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=16,
)


def field_names(model: type[BaseModel]) -> list[str]:
    return sorted(set(model.model_fields) | set(SEEDS[model]))


@st.composite
def mutated_payloads(draw: st.DrawFn) -> tuple[type[BaseModel], bytes]:
    """A seed payload with a few fields replaced, dropped or added: close enough to valid
    that validation, not JSON parsing, is what gets exercised."""
    model = draw(st.sampled_from(MODELS))
    data = dict(SEEDS[model])
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(field_names(model)) | st.text(max_size=8))
        if draw(st.booleans()) and key in data:
            del data[key]
        else:
            data[key] = draw(json_values)
    return model, json.dumps(data).encode()


def attempt(fn: Callable[..., R], *args: Any) -> R | ProtocolError:
    """The value, or the ProtocolError; any other exception escapes and fails the test."""
    try:
        return fn(*args)
    except ProtocolError as exc:
        return exc


def round_trips(model: type[BaseModel], decoded: BaseModel) -> None:
    assert isinstance(decoded, model)
    assert decode(model, encode(decoded)) == decoded


# -- topics -----------------------------------------------------------------------------------

ROOT = "edgefleet/v1"
LEVELS = [
    "nodes",
    "apps",
    "services",
    "fleet",
    "orchestrator",
    "commands",
    "status",
    "summary",
    "events",
    "desired",
    "reported",
    "telemetry",
    "capabilities",
    "s1",
    "n1",
    "+",
    "#",
    "",
    "A",
    "a" * 64,
]
topic_like = st.lists(st.sampled_from(LEVELS) | st.text(max_size=6), max_size=6).map(
    lambda levels: "/".join([ROOT, *levels])
)


def rebuild(topics: Topics, parsed: ParsedTopic) -> str:
    if parsed.kind in NODE_KINDS:
        assert parsed.site is not None
        assert parsed.node is not None
        return topics.node(parsed.site, parsed.node, parsed.kind)
    builders: dict[TopicKind, Callable[[], str]] = {
        TopicKind.APP_STATUS: lambda: topics.app_status(str(parsed.app)),
        TopicKind.SERVICE: lambda: topics.service(str(parsed.service)),
        TopicKind.FLEET_SUMMARY: topics.fleet_summary,
        TopicKind.ORCHESTRATOR_STATUS: topics.orchestrator_status,
        TopicKind.ORCHESTRATOR_EVENTS: topics.orchestrator_events,
        TopicKind.COMMAND: lambda: topics.command(str(parsed.verb), parsed.operator),
    }
    return builders[parsed.kind]()


@FAST
@given(st.text() | topic_like)
def test_parse_of_any_string_is_a_parsed_topic_that_rebuilds_to_it_or_a_protocol_error(
    topic: str,
) -> None:
    topics = Topics(ROOT)
    parsed = attempt(topics.parse, topic)
    if isinstance(parsed, ProtocolError):
        assert parsed.field.startswith("topic")
    else:
        assert rebuild(topics, parsed) == topic


@FAST
@given(st.text())
def test_validate_id_accepts_exactly_the_documented_pattern(value: str) -> None:
    result = attempt(validate_id, value)
    if isinstance(result, ProtocolError):
        assert ID_PATTERN.fullmatch(value) is None
    else:
        assert result == value
        assert ID_PATTERN.fullmatch(value) is not None
        assert not set(value) & set("+#/")


# -- payloads ---------------------------------------------------------------------------------


@FAST
@given(st.sampled_from(MODELS), st.binary(max_size=512))
def test_any_bytes_decode_to_a_model_or_a_protocol_error(
    model: type[BaseModel], raw: bytes
) -> None:
    decoded = attempt(decode, model, raw)
    if not isinstance(decoded, ProtocolError):
        round_trips(model, decoded)


@FAST
@given(st.sampled_from(list(TopicKind)), st.binary(max_size=256) | st.text(max_size=256))
def test_any_bytes_decode_for_any_kind_or_raise_a_protocol_error(
    kind: TopicKind, raw: bytes | str
) -> None:
    decoded = attempt(decode_for_kind, kind, raw)
    if not isinstance(decoded, ProtocolError):
        round_trips(type(decoded), decoded)


@FAST
@given(st.sampled_from(MODELS), st.dictionaries(st.text(max_size=10), json_values, max_size=8))
def test_any_json_object_decodes_to_a_model_or_a_protocol_error(
    model: type[BaseModel], data: dict[str, Any]
) -> None:
    decoded = attempt(decode, model, json.dumps(data))
    if not isinstance(decoded, ProtocolError):
        round_trips(model, decoded)


@FAST
@given(mutated_payloads())
def test_a_near_valid_payload_decodes_and_round_trips_or_names_a_field(
    case: tuple[type[BaseModel], bytes],
) -> None:
    model, raw = case
    decoded = attempt(decode, model, raw)
    if isinstance(decoded, ProtocolError):
        assert decoded.field
        assert decoded.reason
    else:
        round_trips(model, decoded)


@FAST
@given(json_values)
def test_free_form_fields_carry_any_json_value_and_round_trip(value: Any) -> None:
    # Event.details and CommandReply.result are untyped, so only the codec stands between
    # them and values that are not JSON (NaN, Infinity).
    for model, field in ((Event, "details"), (CommandReply, "result")):
        data = {**SEEDS[model], field: {"x": value} if field == "details" else value}
        decoded = attempt(decode, model, json.dumps(data))
        if not isinstance(decoded, ProtocolError):
            round_trips(model, decoded)


# -- commands ---------------------------------------------------------------------------------

ARG_NAMES = sorted({name for m in VERBS.values() for name in m.model_fields})
MANIFEST_TEXT = st.text(max_size=200) | st.sampled_from(
    [
        "name: web\nreplicas: 2\n",
        "a: &x [1]\nb: *x\n",
        "a: 2001-02-30\n",
        "a: !!binary 'zz'\n",
        "? [1, 2]\n: x\n",
        "<<: 5\n",
        "a: !!python/object:os.system x\n",
        "{" * 200,
        "- 1\n- 2\n",
        "a: 1e400\n",
        "1: one\n",
        "a: !!set {x, y}\n",
    ]
)


@st.composite
def command_payloads(draw: st.DrawFn) -> bytes:
    data: dict[str, Any] = {}
    if draw(st.booleans()):
        data.update(
            v=1, request_id=draw(st.sampled_from(["r1", "", "bad id"]) | st.text(max_size=8))
        )
    for _ in range(draw(st.integers(0, 4))):
        key = draw(st.sampled_from([*ARG_NAMES, "reply_to", "v"]) | st.text(max_size=6))
        if key == "manifest":
            data[key] = draw(MANIFEST_TEXT | json_values)
        else:
            data[key] = draw(json_values | st.integers(-3, 5) | st.sampled_from(["web", "gw-1"]))
    return json.dumps(data).encode()


@FAST
@given(
    st.sampled_from(sorted(VERBS)) | st.text(max_size=10),
    command_payloads() | st.binary(max_size=256),
)
def test_any_command_parses_to_its_verbs_model_or_raises_a_protocol_error(
    verb: str, raw: bytes
) -> None:
    parsed = attempt(parse_command, verb, raw)
    if isinstance(parsed, ProtocolError):
        assert verb in VERBS or parsed.field == "verb"
        return
    request, args = parsed
    assert isinstance(args, VERBS[verb])
    assert isinstance(request, CommandRequest)
    json.dumps(args.model_dump(mode="json"), allow_nan=False)  # the args are plain JSON


@FAST
@given(MANIFEST_TEXT)
def test_any_manifest_text_becomes_a_json_object_or_a_manifest_error(text: str) -> None:
    raw = json.dumps({"v": 1, "request_id": "r1", "manifest": text})
    parsed = attempt(parse_command, "deploy", raw)
    if isinstance(parsed, ProtocolError):
        assert parsed.field == "manifest"
        return
    manifest = parsed[1].model_dump(mode="json")["manifest"]
    assert isinstance(manifest, dict)
    json.dumps(manifest, allow_nan=False)


@FAST
@given(st.text(max_size=60) | st.text(max_size=20).map(lambda s: f"{ROOT}/replies/{s}"))
def test_check_reply_to_accepts_only_plain_topics_under_the_replies_prefix(reply_to: str) -> None:
    result = attempt(check_reply_to, ROOT, reply_to)
    if isinstance(result, ProtocolError):
        assert result.field == "reply_to"
    else:
        assert result == reply_to
        assert reply_to.startswith(f"{ROOT}/replies/")
        assert "" not in reply_to[len(ROOT) + 1 :].split("/")
        assert not set(reply_to) & set("+#\0")


@FAST
@given(MANIFEST_TEXT)
def test_manifest_text_parsing_raises_nothing_but_value_error(text: str) -> None:
    # Called directly, outside pydantic (which would turn a ValueError into its own error):
    # anything else escaping here would escape parse_command too.
    try:
        manifest = manifest_from_text(text)
    except ValueError as exc:
        assert str(exc)  # noqa: PT017 - the property is about the exception type
    else:
        json.dumps(manifest, allow_nan=False)
