"""docs/protocol.md is the public contract: every example in it must decode with the model
it names, every topic kind and command verb must be in it with the QoS and retain flag the
code uses, and its copy-paste mosquitto lines must be valid requests."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import edgefleet_protocol
import pytest
from edgefleet_protocol import (
    DEFAULT_ROOT,
    RULES,
    CommandReply,
    Desired,
    TopicKind,
    Topics,
    decode,
    decode_for_kind,
    spec_hash,
)
from edgefleet_protocol.codec import MODEL_FOR_KIND
from edgefleet_protocol.commands import VERBS, ErrorCode, check_reply_to, parse_command
from paho.mqtt.client import topic_matches_sub
from pydantic import BaseModel

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"
DOC = DOC_PATH.read_text(encoding="utf-8")

MARKER = re.compile(r"<!-- example: (\S+) -->")
EXAMPLE = re.compile(r"<!-- example: (\S+) -->\n```json\n(.*?)\n```", re.DOTALL)
EXAMPLES: list[tuple[str, str]] = EXAMPLE.findall(DOC)
MODEL_EXAMPLES = [(name, body) for name, body in EXAMPLES if not name.startswith("command:")]
COMMAND_EXAMPLES = [
    (name.removeprefix("command:"), body) for name, body in EXAMPLES if name.startswith("command:")
]

# How each kind is written in the doc's topic table, with {placeholders} for identifiers.
TEMPLATES = {
    TopicKind.NODE_STATUS: "edgefleet/v1/nodes/{site}/{node}/status",
    TopicKind.NODE_CAPABILITIES: "edgefleet/v1/nodes/{site}/{node}/capabilities",
    TopicKind.NODE_TELEMETRY: "edgefleet/v1/nodes/{site}/{node}/telemetry",
    TopicKind.NODE_DESIRED: "edgefleet/v1/nodes/{site}/{node}/desired",
    TopicKind.NODE_REPORTED: "edgefleet/v1/nodes/{site}/{node}/reported",
    TopicKind.NODE_EVENTS: "edgefleet/v1/nodes/{site}/{node}/events",
    TopicKind.NODE_LOGS: "edgefleet/v1/nodes/{site}/{node}/logs",
    TopicKind.NODE_COMPLIANCE: "edgefleet/v1/nodes/{site}/{node}/compliance",
    TopicKind.APP_STATUS: "edgefleet/v1/apps/{app}/status",
    TopicKind.APP_ROLLOUT: "edgefleet/v1/apps/{app}/rollout",
    TopicKind.SERVICE: "edgefleet/v1/services/{service}",
    TopicKind.FLEET_SUMMARY: "edgefleet/v1/fleet/summary",
    TopicKind.ORCHESTRATOR_STATUS: "edgefleet/v1/orchestrator/status",
    TopicKind.ORCHESTRATOR_EVENTS: "edgefleet/v1/orchestrator/events",
    TopicKind.COMMAND: "edgefleet/v1/commands/{operator}/{verb}",
}
PLACEHOLDERS = {
    "site": "plant-a",
    "node": "gw-1",
    "app": "web",
    "service": "web",
    "verb": "apps",
    "operator": "alice",
}


def model_named(name: str) -> type[BaseModel]:
    model = getattr(edgefleet_protocol, name, None)
    assert isinstance(model, type), f"docs name an unknown model {name!r}"
    assert issubclass(model, BaseModel)
    return model


def table_row(first_cell: str) -> list[str]:
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no table row starts with {first_cell}")


# -- examples ---------------------------------------------------------------------------------


def test_every_example_marker_is_followed_by_a_json_block() -> None:
    assert len(MARKER.findall(DOC)) == len(EXAMPLES)
    assert len(EXAMPLES) >= 20


@pytest.mark.parametrize(("name", "body"), MODEL_EXAMPLES, ids=[n for n, _ in MODEL_EXAMPLES])
def test_every_model_example_decodes_with_the_model_it_names(name: str, body: str) -> None:
    decoded = decode(model_named(name), body.encode())
    assert decoded.model_dump(mode="json")["v"] == 1


def test_every_payload_model_has_an_example() -> None:
    named = {name for name, _ in MODEL_EXAMPLES}
    wanted = {m.__name__ for m in MODEL_FOR_KIND.values() if m.__name__ != "CommandRequest"}
    assert wanted | {CommandReply.__name__} <= named


def test_examples_are_complete_documents_not_fragments() -> None:
    # "Full example" means every field of the model appears in at least one of its examples.
    for name in {n for n, _ in MODEL_EXAMPLES}:
        model = model_named(name)
        seen: set[str] = set()
        for other, body in MODEL_EXAMPLES:
            if other == name:
                seen |= set(json.loads(body))
        missing = set(model.model_fields) - seen
        assert not missing, f"{name} examples never show {sorted(missing)}"


def test_desired_examples_carry_the_real_spec_hashes() -> None:
    for name, body in MODEL_EXAMPLES:
        if name == "Desired":
            for workload in decode(Desired, body.encode()).workloads:
                assert workload.spec_hash == spec_hash(workload.spec), workload.name


def test_every_reply_to_in_the_doc_is_acceptable() -> None:
    for found in re.findall(r'"reply_to": "([^"]+)"', DOC):
        assert check_reply_to(DEFAULT_ROOT, found) == found


# -- topics -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(TopicKind))
def test_every_topic_kind_is_documented_with_its_qos_and_retain_rule(kind: TopicKind) -> None:
    template = TEMPLATES[kind]
    assert Topics().parse(template.format(**PLACEHOLDERS)).kind == kind
    assert f"`{kind.value}`" in DOC
    _, writer, retained, qos, model = table_row(f"`{template}`")[:5]
    assert writer
    rule = RULES[kind]
    assert qos == str(rule.qos)
    assert retained.strip("*") == (
        "yes"
        if rule.retain
        else ("never" if kind in (TopicKind.COMMAND, TopicKind.NODE_LOGS) else "no")
    )
    if kind is not TopicKind.COMMAND:
        assert MODEL_FOR_KIND[kind].__name__ in model


def test_every_subscription_line_is_a_filter_that_matches_some_edgefleet_topic() -> None:
    built = [t.format(**PLACEHOLDERS) for t in TEMPLATES.values()]
    built.append("edgefleet/v1/replies/alice/1")
    lines = [line for line in DOC.splitlines() if line.startswith("mosquitto_sub ")]
    assert len(lines) >= 5
    for line in lines:
        argv = shlex.split(line, comments=True)
        topic_filter = argv[argv.index("-t") + 1]
        assert any(topic_matches_sub(topic_filter, topic) for topic in built), line


# -- commands ---------------------------------------------------------------------------------


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_every_command_verb_has_an_example_that_parses(verb: str) -> None:
    bodies = [body for name, body in COMMAND_EXAMPLES if name == verb]
    assert bodies, f"no example for the {verb} command"
    for body in bodies:
        request, args = parse_command(verb, body.encode())
        assert isinstance(args, VERBS[verb])
        assert request.request_id
        assert f"| `{verb}` |" in DOC  # and it is in the verb table


def test_command_examples_name_only_known_verbs() -> None:
    assert {name for name, _ in COMMAND_EXAMPLES} <= set(VERBS)


@pytest.mark.parametrize("code", list(ErrorCode))
def test_every_error_code_is_documented(code: ErrorCode) -> None:
    assert f"| `{code.value}` |" in DOC


def mosquitto_pub_lines() -> list[list[str]]:
    return [shlex.split(line) for line in DOC.splitlines() if line.startswith("mosquitto_pub ")]


def test_every_mosquitto_pub_message_is_a_valid_publication_for_its_topic() -> None:
    with_message = [argv for argv in mosquitto_pub_lines() if "-m" in argv]
    assert len(with_message) >= 5
    topics = Topics()
    for argv in with_message:
        topic, message = argv[argv.index("-t") + 1], argv[argv.index("-m") + 1]
        parsed = topics.parse(topic)
        if parsed.kind is TopicKind.COMMAND:
            assert parsed.verb is not None
            request, _ = parse_command(parsed.verb, message.encode())
            assert request.reply_to is None or check_reply_to(
                DEFAULT_ROOT, request.reply_to, parsed.operator
            )
            assert "-r" not in argv, "commands are never retained"
            assert argv[argv.index("-q") + 1] == "1"
        else:
            decode_for_kind(parsed.kind, message.encode())
        if "-D" in argv:  # MQTT 5 properties: a response topic must follow the reply rule
            at = argv.index("response-topic")
            check_reply_to(DEFAULT_ROOT, argv[at + 1], parsed.operator)


def test_the_doc_states_the_limits_and_conventions_it_promises() -> None:
    for phrase in (
        "256 KiB",
        "Unix epoch seconds",
        "Unknown fields are ignored",
        '"v": 1',
        "Correlation Data",
        "Response Topic",
        "idempotent by `request_id`",
        "full: true",
        "rises **by exactly one**",
        "session",
    ):
        assert phrase in DOC, phrase
