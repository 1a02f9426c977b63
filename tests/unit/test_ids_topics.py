"""Identifiers and topics: what is accepted at the boundary, what is refused and why, and
that every topic a builder makes parses back to what it was built from."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from edgefleet_protocol import RULES, ParsedTopic, ProtocolError, TopicKind, Topics, validate_id
from edgefleet_protocol import ids as ids_module
from edgefleet_protocol.ids import ID_RULE, app_id, node_id, service_id, site_id, workload_id
from edgefleet_protocol.topics import NODE_KINDS, REPLY_RULE, Rule, validate_root
from paho.mqtt.client import topic_matches_sub

# -- identifiers ------------------------------------------------------------------------------

VALID_IDS = ["a", "0", "n1", "node-1", "9lives", "a-", "a--b", "a" * 63, "x" + "-" * 62]


@pytest.mark.parametrize("value", VALID_IDS)
def test_a_valid_identifier_is_returned_unchanged(value: str) -> None:
    assert validate_id(value) == value


INVALID_IDS: list[tuple[object, str]] = [
    ("", "must not be empty"),
    ("+", "not a valid"),
    ("#", "not a valid"),
    ("a/b", "not a valid"),
    ("a+b", "'+'"),
    ("site#1", "'#'"),
    ("/", "'/'"),
    ("Node1", "'N'"),
    ("UPPER", "not a valid"),
    ("-leading", "not a valid"),
    ("a" * 64, "64 characters long"),
    ("a" * 1000, "1000 characters long"),
    ("a b", "' '"),
    ("a.b", "'.'"),
    ("a_b", "'_'"),
    ("café", "'é'"),
    ("a\x00", "not a valid"),
    ("a\n", "not a valid"),
    (None, "must be a string"),
    (5, "must be a string"),
    (["a"], "must be a string"),
]


@pytest.mark.parametrize(("value", "reason"), INVALID_IDS)
def test_an_invalid_identifier_is_refused_with_a_reason(value: object, reason: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_id(value, kind="node")
    assert info.value.field == "node"
    assert reason in info.value.reason


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (site_id, "site"),
        (node_id, "node"),
        (app_id, "app"),
        (service_id, "service"),
        (workload_id, "workload"),
    ],
)
def test_each_typed_identifier_names_its_own_kind_when_refused(
    make: Callable[[object], str], field: str
) -> None:
    assert make("ok-1") == "ok-1"
    with pytest.raises(ProtocolError) as info:
        make("Not/OK")
    assert info.value.field == field


# -- topic builders and the parser ------------------------------------------------------------

ROOTS = ["edgefleet/v1", "acme", "fleet-a/prod/v1", "Site_7.eu/edge-fleet", "x/y/z/w/v"]

BUILDS: list[tuple[TopicKind, Callable[[Topics], str], ParsedTopic]] = [
    (
        TopicKind.APP_ROLLOUT,
        lambda t: t.app_rollout("web"),
        ParsedTopic(TopicKind.APP_ROLLOUT, app="web"),
    ),
    (
        TopicKind.NODE_STATUS,
        lambda t: t.node_status("s1", "n1"),
        ParsedTopic(TopicKind.NODE_STATUS, site="s1", node="n1"),
    ),
    (
        TopicKind.NODE_CAPABILITIES,
        lambda t: t.node_capabilities("s1", "n1"),
        ParsedTopic(TopicKind.NODE_CAPABILITIES, site="s1", node="n1"),
    ),
    (
        TopicKind.NODE_TELEMETRY,
        lambda t: t.node_telemetry("plant-9", "gw-2"),
        ParsedTopic(TopicKind.NODE_TELEMETRY, site="plant-9", node="gw-2"),
    ),
    (
        TopicKind.NODE_DESIRED,
        lambda t: t.node_desired("s1", "n1"),
        ParsedTopic(TopicKind.NODE_DESIRED, site="s1", node="n1"),
    ),
    (
        TopicKind.NODE_REPORTED,
        lambda t: t.node_reported("s1", "n1"),
        ParsedTopic(TopicKind.NODE_REPORTED, site="s1", node="n1"),
    ),
    (
        TopicKind.NODE_EVENTS,
        lambda t: t.node_events("s1", "n1"),
        ParsedTopic(TopicKind.NODE_EVENTS, site="s1", node="n1"),
    ),
    (
        TopicKind.NODE_LOGS,
        lambda t: t.node_logs("s1", "n1"),
        ParsedTopic(TopicKind.NODE_LOGS, site="s1", node="n1"),
    ),
    (
        TopicKind.NODE_COMPLIANCE,
        lambda t: t.node("s1", "n1", TopicKind.NODE_COMPLIANCE),
        ParsedTopic(TopicKind.NODE_COMPLIANCE, site="s1", node="n1"),
    ),
    (
        TopicKind.APP_STATUS,
        lambda t: t.app_status("web"),
        ParsedTopic(TopicKind.APP_STATUS, app="web"),
    ),
    (
        TopicKind.SERVICE,
        lambda t: t.service("mqtt-bridge"),
        ParsedTopic(TopicKind.SERVICE, service="mqtt-bridge"),
    ),
    (TopicKind.FLEET_SUMMARY, lambda t: t.fleet_summary(), ParsedTopic(TopicKind.FLEET_SUMMARY)),
    (
        TopicKind.ORCHESTRATOR_STATUS,
        lambda t: t.orchestrator_status(),
        ParsedTopic(TopicKind.ORCHESTRATOR_STATUS),
    ),
    (
        TopicKind.ORCHESTRATOR_EVENTS,
        lambda t: t.orchestrator_events(),
        ParsedTopic(TopicKind.ORCHESTRATOR_EVENTS),
    ),
    (
        TopicKind.COMMAND,
        lambda t: t.command("deploy"),
        ParsedTopic(TopicKind.COMMAND, verb="deploy"),
    ),
]


def test_the_build_table_covers_every_topic_kind() -> None:
    assert {kind for kind, _, _ in BUILDS} == set(TopicKind)


@pytest.mark.parametrize("root", ROOTS)
@pytest.mark.parametrize(("kind", "build", "expected"), BUILDS, ids=[k for k, _, _ in BUILDS])
def test_every_built_topic_parses_back_to_what_it_was_built_from(
    root: str, kind: TopicKind, build: Callable[[Topics], str], expected: ParsedTopic
) -> None:
    topics = Topics(root)
    topic = build(topics)
    assert topic.startswith(root + "/")
    assert topics.parse(topic) == expected
    assert expected.kind == kind


def test_the_default_root_is_edgefleet_v1_and_topics_are_spelled_as_documented() -> None:
    t = Topics()
    assert t.node_status("s1", "n1") == "edgefleet/v1/nodes/s1/n1/status"
    assert t.node_desired("s1", "n1") == "edgefleet/v1/nodes/s1/n1/desired"
    assert t.app_status("web") == "edgefleet/v1/apps/web/status"
    assert t.service("web") == "edgefleet/v1/services/web"
    assert t.fleet_summary() == "edgefleet/v1/fleet/summary"
    assert t.orchestrator_status() == "edgefleet/v1/orchestrator/status"
    assert t.orchestrator_events() == "edgefleet/v1/orchestrator/events"
    assert t.command("scale") == "edgefleet/v1/commands/scale"


@pytest.mark.parametrize("kind", NODE_KINDS)
def test_the_per_kind_node_filter_matches_that_kind_only(kind: TopicKind) -> None:
    t = Topics("fleet/a")
    node_filter = t.all_nodes(kind)
    for other in NODE_KINDS:
        matches = topic_matches_sub(node_filter, t.node("s1", "n1", other))
        assert matches == (other == kind)
    assert topic_matches_sub(t.all_nodes(), t.node("s1", "n1", kind))


def test_an_operators_command_topic_names_the_operator() -> None:
    t = Topics()
    topic = t.command("drain", "alice")
    assert topic == "edgefleet/v1/commands/alice/drain"
    parsed = t.parse(topic)
    assert (parsed.kind, parsed.operator, parsed.verb) == (TopicKind.COMMAND, "alice", "drain")
    assert t.parse(t.command("drain")).operator is None  # accountless: no operator
    assert t.replies("alice") == "edgefleet/v1/replies/alice"
    assert topic_matches_sub(t.all_operator_commands(), topic)
    assert not topic_matches_sub(t.all_commands(), topic)
    with pytest.raises(ProtocolError):
        t.command("drain", "s1.n1")


def test_command_and_app_filters_match_their_topics() -> None:
    t = Topics()
    assert topic_matches_sub(t.all_commands(), t.command("drain"))
    assert not topic_matches_sub(t.all_commands(), t.fleet_summary())
    assert topic_matches_sub(t.all_app_status(), t.app_status("web"))
    assert not topic_matches_sub(t.all_app_status(), t.service("web"))


BAD_BUILDS: list[tuple[Callable[[Topics], str], str]] = [
    (lambda t: t.node_status("Site", "n1"), "site"),
    (lambda t: t.node_status("s1", "+"), "node"),
    (lambda t: t.node_desired("s1", "#"), "node"),
    (lambda t: t.node_telemetry("a/b", "n1"), "site"),
    (lambda t: t.node_events("", "n1"), "site"),
    (lambda t: t.app_status("a" * 64), "app"),
    (lambda t: t.service("web/x"), "service"),
    (lambda t: t.command("Deploy"), "verb"),
    (lambda t: t.node("s1", "n1", TopicKind.APP_STATUS), "kind"),
    (lambda t: t.all_nodes(TopicKind.COMMAND), "kind"),
]


@pytest.mark.parametrize(("build", "field"), BAD_BUILDS)
def test_builders_refuse_bad_identifiers_before_a_topic_exists(
    build: Callable[[Topics], str], field: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        build(Topics())
    assert info.value.field == field


FOREIGN = [
    ("other/v1/nodes/s1/n1/status", "topic"),
    ("edgefleet/v2/fleet/summary", "topic"),
    ("edgefleet/v1x/fleet/summary", "topic"),
    ("edgefleet/v1", "topic"),
    ("edgefleet/v1/", "topic"),
    ("/edgefleet/v1/fleet/summary", "topic"),
    ("edgefleet/v1/nodes/s1/n1", "topic"),
    ("edgefleet/v1/nodes/s1/n1/status/extra", "topic"),
    ("edgefleet/v1/nodes/s1/n1/unknown", "topic"),
    ("edgefleet/v1/nodes/S1/n1/status", "topic.site"),
    ("edgefleet/v1/nodes/+/n1/status", "topic.site"),
    ("edgefleet/v1/nodes/s1/#/status", "topic.node"),
    ("edgefleet/v1/nodes//n1/status", "topic.site"),
    ("edgefleet/v1/apps/web", "topic"),
    ("edgefleet/v1/apps/web/other", "topic"),
    ("edgefleet/v1/apps/Web/status", "topic.app"),
    ("edgefleet/v1/services/web/extra", "topic"),
    ("edgefleet/v1/services/we_b", "topic.service"),
    ("edgefleet/v1/fleet/other", "topic"),
    ("edgefleet/v1/orchestrator/other", "topic"),
    ("edgefleet/v1/commands", "topic"),
    ("edgefleet/v1/commands/Deploy", "topic.verb"),
    ("edgefleet/v1/commands/alice/deploy/now", "topic"),
    ("edgefleet/v1/commands/Alice/deploy", "topic.operator"),
    ("edgefleet/v1/commands/s1.n1/deploy", "topic.operator"),
    ("edgefleet/v1/commands/alice/Deploy", "topic.verb"),
    ("edgefleet/v1/replies/alice/1", "topic"),
    ("", "topic"),
]


@pytest.mark.parametrize(("topic", "field"), FOREIGN)
def test_foreign_or_malformed_topics_are_refused_with_the_offending_level(
    topic: str, field: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        Topics().parse(topic)
    assert info.value.field == field


def test_a_topic_of_another_root_is_foreign_to_this_fleet() -> None:
    topic = Topics("fleet-a").fleet_summary()
    with pytest.raises(ProtocolError, match="not under the root"):
        Topics("fleet-b").parse(topic)
    with pytest.raises(ProtocolError):
        Topics("fleet").parse(Topics("fleet/a").fleet_summary())


def test_parse_refuses_a_non_string() -> None:
    with pytest.raises(ProtocolError) as info:
        Topics().parse(b"edgefleet/v1/fleet/summary")  # type: ignore[arg-type]
    assert info.value.field == "topic"


@pytest.mark.parametrize("root", ["", "a/", "/a", "a//b", "a/+", "#", "a b", "a/#/b", "é"])
def test_an_invalid_root_is_refused(root: str) -> None:
    with pytest.raises(ProtocolError) as info:
        validate_root(root)
    assert info.value.field == "root"
    with pytest.raises(ProtocolError):
        Topics(root)


# -- publish rules ----------------------------------------------------------------------------

EXPECTED_RULES = {
    TopicKind.APP_ROLLOUT: (1, True),
    TopicKind.NODE_STATUS: (1, True),
    TopicKind.NODE_CAPABILITIES: (1, True),
    TopicKind.NODE_TELEMETRY: (0, False),
    TopicKind.NODE_DESIRED: (1, True),
    TopicKind.NODE_REPORTED: (1, True),
    TopicKind.NODE_EVENTS: (1, False),
    TopicKind.NODE_LOGS: (1, False),
    TopicKind.NODE_COMPLIANCE: (1, True),
    TopicKind.APP_STATUS: (1, True),
    TopicKind.SERVICE: (1, True),
    TopicKind.FLEET_SUMMARY: (1, True),
    TopicKind.ORCHESTRATOR_STATUS: (1, True),
    TopicKind.ORCHESTRATOR_EVENTS: (1, False),
    TopicKind.COMMAND: (1, False),
}


@pytest.mark.parametrize("kind", list(TopicKind))
def test_each_kind_has_the_documented_qos_and_retain_rule(kind: TopicKind) -> None:
    rule = RULES[kind]
    assert (rule.qos, rule.retain) == EXPECTED_RULES[kind]


# -- refusal words (killing make mutate's survivors in ids.py) ------------------------------

RULE = "1-63 characters of a-z, 0-9 and '-', starting with a letter or digit"


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        (7, "id", "must be a string, got int"),
        ("", "id", "must not be empty"),
        ("a" * 64, "id", "is 64 characters long; at most 63 allowed"),
        ("GW_1", "id", f"'GW_1' is not a valid id: {RULE} (found 'G', 'W', '_')"),
        ("-gw", "id", f"'-gw' is not a valid id: {RULE}"),
    ],
)
def test_an_identifier_refusal_names_the_field_and_the_rule_in_words(
    value: object, field: str, reason: str
) -> None:
    from edgefleet_protocol import ProtocolError, validate_id

    with pytest.raises(ProtocolError) as refused:
        validate_id(value)
    assert (refused.value.field, refused.value.reason) == (field, reason)


def test_a_model_identifier_field_refuses_with_the_same_reason() -> None:
    from edgefleet_protocol import ProtocolError, decode
    from edgefleet_protocol.node_messages import NodeStatus

    with pytest.raises(ProtocolError) as refused:
        decode(
            NodeStatus, b'{"v":1,"node":"GW","site":"s1","state":"online","session":1,"since":1}'
        )
    assert refused.value.field == "node"
    assert refused.value.reason.startswith(f"'GW' is not a valid id: {RULE}")


def test_the_found_detail_lists_every_character_outside_the_rule() -> None:
    from edgefleet_protocol import ProtocolError, validate_id

    with pytest.raises(ProtocolError) as refused:
        validate_id("aX")
    assert refused.value.reason.endswith("(found 'X')")


# -- topic refusals word for word, and the reply rule (killing make mutate's survivors) -------


def test_replies_are_qos1_and_never_retained() -> None:
    assert Rule(qos=1, retain=False) == REPLY_RULE


def topic_refusal(call: Callable[[], object]) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as caught:
        call()
    return caught.value.field, caught.value.reason


def test_each_topic_refusal_says_why_in_full() -> None:
    t = Topics("edgefleet/v1")
    assert topic_refusal(lambda: Topics("a//b")) == (
        "root",
        "'a//b' is not a valid topic root: levels of A-Z, a-z, 0-9, '_', '.', '-'",
    )
    assert topic_refusal(lambda: t.node("s", "n", TopicKind.COMMAND)) == (
        "kind",
        "command is not a node topic",
    )
    assert topic_refusal(lambda: t.all_nodes(TopicKind.SERVICE)) == (
        "kind",
        "service is not a node topic",
    )
    assert topic_refusal(lambda: t.parse(7)) == ("topic", "must be a string")  # type: ignore[arg-type]
    assert topic_refusal(lambda: t.parse("other/v1/x")) == (
        "topic",
        "'other/v1/x' is not under the root 'edgefleet/v1'",
    )
    assert topic_refusal(lambda: t.parse("edgefleet/v1/nodes/s/n/weather")) == (
        "topic",
        "unknown node topic 'weather'",
    )
    assert topic_refusal(lambda: t.parse("edgefleet/v1/fleet/other")) == (
        "topic",
        "'edgefleet/v1/fleet/other' is not an edgefleet topic",
    )


def test_builders_and_the_parser_name_the_identifier_they_refuse() -> None:
    t = Topics()
    assert topic_refusal(lambda: t.app_rollout("A!")) == (
        "app",
        f"'A!' is not a valid app: {ID_RULE} (found '!', 'A')",
    )
    for build in (lambda: t.command("deploy", "Bob"), lambda: t.replies("Bob")):
        field, reason = topic_refusal(build)
        assert (field, reason.split(":")[0]) == ("operator", "'Bob' is not a valid operator")
    assert topic_refusal(lambda: t.parse(f"{t.root}/apps/A!/rollout"))[0] == "topic.app"


def test_the_cache_of_valid_model_ids_stays_within_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert ids_module.KNOWN_VALID_MAX == 65_536
    monkeypatch.setattr(ids_module, "KNOWN_VALID_MAX", 3)
    monkeypatch.setattr(ids_module, "_KNOWN_VALID", set())
    for n in range(7):
        ids_module._pydantic_id(f"cache-bound-{n}")
        assert len(ids_module._KNOWN_VALID) <= 3
    assert "cache-bound-6" in ids_module._KNOWN_VALID
