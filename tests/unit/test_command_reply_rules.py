"""The command contract's small rules word for word (protocol/commands.py), each a surviving
mutant of `make mutate`: the unknown-verb refusal and its reply, which reply topic wins,
each reply-topic refusal, every argument bound at both ends, and each manifest-text
refusal with its path."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.commands import (
    RECENT_EVENTS,
    VERBS,
    ErrorCode,
    check_reply_to,
    error_reply,
    manifest_from_text,
    parse_command,
    parse_envelope,
    rejection_reply,
    resolve_reply_to,
    salvage_envelope,
)

ROOT = "edgefleet/v1"


def command(**body: Any) -> bytes:
    return json.dumps({"v": 1, "request_id": "r1", **body}).encode()


def refusal(verb: str, **body: Any) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as caught:
        parse_command(verb, command(**body))
    return caught.value.field, caught.value.reason


def test_an_unknown_verb_is_refused_listing_the_known_ones() -> None:
    field, reason = refusal("frobnicate")
    assert field == "verb"
    assert reason == "unknown command 'frobnicate'; known verbs: " + ", ".join(sorted(VERBS))
    assert reason.startswith("unknown command 'frobnicate'; known verbs: app, apps, audit, ")


def test_a_refused_command_is_answered_with_its_code_and_details() -> None:
    with pytest.raises(ProtocolError) as unknown:
        parse_command("frobnicate", command())
    reply = rejection_reply("r1", "frobnicate", unknown.value)
    assert (reply.request_id, reply.verb, reply.ok) == ("r1", "frobnicate", False)
    assert reply.error is not None
    assert (reply.error.code, reply.error.message) == ("unknown_verb", str(unknown.value))
    assert reply.error.details == {**unknown.value.as_dict(), "verbs": sorted(VERBS)}
    with pytest.raises(ProtocolError) as bad:
        parse_command("scale", command(app="web", replicas=-1))
    reply = rejection_reply("r1", "scale", bad.value)
    assert reply.error is not None
    assert (reply.error.code, reply.error.details) == ("bad_request", bad.value.as_dict())


def test_an_error_reply_without_details_carries_an_empty_object() -> None:
    reply = error_reply("r1", ErrorCode.INTERNAL, "boom")
    assert reply.ok is False
    assert reply.error is not None
    assert (reply.error.code, reply.error.details, reply.verb) == ("internal", {}, None)


def test_reply_to_in_the_payload_wins_over_the_response_topic() -> None:
    mine, props = f"{ROOT}/replies/a", f"{ROOT}/replies/b"
    with_reply = parse_envelope(command(reply_to=mine))
    assert resolve_reply_to(ROOT, with_reply, props) == mine
    bare = parse_envelope(command())
    assert resolve_reply_to(ROOT, bare, props) == props
    assert resolve_reply_to(ROOT, bare, None) is None
    with pytest.raises(ProtocolError, match="must be a topic under"):
        resolve_reply_to(ROOT, bare, "elsewhere/x")


@pytest.mark.parametrize(
    ("topic", "reason"),
    [
        ("x/y", "'x/y' must be a topic under 'edgefleet/v1/replies/bob/'"),
        (f"{ROOT}/replies/bob/a//b", f"'{ROOT}/replies/bob/a//b' has an empty topic level"),
        (f"{ROOT}/replies/bob/+", "must be a plain topic: no '+', '#' or NUL"),
        (f"{ROOT}/replies/bob/#", "must be a plain topic: no '+', '#' or NUL"),
        (f"{ROOT}/replies/bob/a\0", "must be a plain topic: no '+', '#' or NUL"),
    ],
    ids=["elsewhere", "empty level", "plus", "hash", "nul"],
)
def test_each_reply_topic_refusal_says_why(topic: str, reason: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_reply_to(ROOT, topic, "bob")
    assert (caught.value.field, caught.value.reason) == ("reply_to", reason)


def test_a_salvaged_reply_topic_may_be_at_most_512_characters() -> None:
    refused = ProtocolError("v", "unsupported protocol version 2; this peer speaks v=1")
    prefix = f"{ROOT}/replies/"
    longest = prefix + "a" * (512 - len(prefix))
    at_limit = salvage_envelope(ROOT, json.dumps({"v": 2, "reply_to": longest}), refused)
    assert at_limit.reply_to == longest
    over = salvage_envelope(ROOT, json.dumps({"v": 2, "reply_to": longest + "b"}), refused)
    assert over.reply_to is None


@pytest.mark.parametrize(
    ("verb", "body", "lowest", "highest"),
    [
        ("scale", {"app": "web"}, ("replicas", 0), ("replicas", 10_000)),
        ("drain", {"node": "n1"}, ("max_unavailable", 1), ("max_unavailable", 10_000)),
        ("rollout-undo", {"app": "web"}, ("to_revision", 1), ("to_revision", 2**53 - 1)),
        ("audit", {}, ("limit", 1), ("limit", 1000)),
        ("events", {}, ("limit", 1), ("limit", 200)),
    ],
)
def test_each_numeric_argument_takes_both_ends_and_nothing_beyond(
    verb: str, body: dict[str, Any], lowest: tuple[str, int], highest: tuple[str, int]
) -> None:
    for name, value in (lowest, highest):
        _, args = parse_command(verb, command(**body, **{name: value}))
        assert getattr(args, name) == value
    for name, value in ((lowest[0], lowest[1] - 1), (highest[0], highest[1] + 1)):
        assert refusal(verb, **body, **{name: value})[0] == name


def test_audit_and_events_show_fifty_by_default_and_events_keep_two_hundred() -> None:
    assert RECENT_EVENTS == 200
    for verb in ("audit", "events"):
        _, args = parse_command(verb, command())
        assert args.limit == 50  # type: ignore[attr-defined]


def test_an_events_kind_filter_is_one_to_sixty_four_characters() -> None:
    for kind in ("k", "k" * 64):
        assert parse_command("events", command(kind=kind))[1].kind == kind  # type: ignore[attr-defined]
    for kind in ("", "k" * 65):
        assert refusal("events", kind=kind)[0] == "kind"


def test_a_secret_has_an_identifier_name_and_a_sealed_value_up_to_128_kib() -> None:
    _, args = parse_command("secret-set", command(name="db-pass", sealed="x" * 128 * 1024))
    assert (args.name, len(args.sealed)) == ("db-pass", 128 * 1024)  # type: ignore[attr-defined]
    assert refusal("secret-set", name="Db", sealed="x")[0] == "name"
    assert refusal("secret-set", name="db", sealed="")[0] == "sealed"
    assert refusal("secret-set", name="db", sealed="x" * (128 * 1024 + 1))[0] == "sealed"


# -- manifest text ------------------------------------------------------------------------


def nested(depth: int) -> str:
    """A manifest whose value ``a`` holds lists ``depth`` deep around a 1."""
    return json.dumps({"a": json.loads("[" * depth + "1" + "]" * depth)})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("  \n", "manifest text is empty"),
        ("a: [1, 2", "manifest is not valid YAML/JSON: expected ',' or ']', but got '<stream end>'"
                     " (line 1, column 9)"),
        ("a: &x 1\nb: *x\n", "manifest is not valid YAML/JSON: YAML aliases (*name) are not"
                             " allowed in manifests (line 2, column 4)"),
        ("d: 2001-02-30", "manifest has a value YAML cannot read: day is out of range for month"),
        ("- 1\n- 2", "manifest must be a mapping, got list"),
        ("a: .nan", "at manifest.a: nan is not a JSON number"),
        ("a: [1, -.inf]", "at manifest.a.1: -inf is not a JSON number"),
        ("a: {1: x}", "at manifest.a: key 1 must be a string (quote it)"),
        ("a: {b: 2001-02-03}", "at manifest.a.b: a date is not JSON (quote it as a string)"),
        (nested(64), "at manifest.a" + ".0" * 64 + ": nested more than 64 levels deep"),
    ],
    ids=["empty", "yaml", "alias", "bad date", "list", "nan", "inf", "key", "date", "deep"],
)  # fmt: skip
def test_each_manifest_text_refusal_says_where_and_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        manifest_from_text(text)


def test_a_manifest_63_levels_deep_and_plain_json_values_are_read() -> None:
    assert manifest_from_text(nested(63))["a"][0][0][0] is not None
    values = manifest_from_text("a: null\nb: true\nc: 2\nd: x\ne: 1.5\nf: [1]\ng: {h: 1}")
    assert values == {"a": None, "b": True, "c": 2, "d": "x", "e": 1.5, "f": [1], "g": {"h": 1}}


def test_a_reply_topic_may_hold_any_other_character_and_a_one_character_sealed_value() -> None:
    topic = f"{ROOT}/replies/bob/X-1.y_Z"
    assert check_reply_to(ROOT, topic, "bob") == topic
    assert parse_command("secret-set", command(name="db", sealed="x"))[1].sealed == "x"  # type: ignore[attr-defined]


def test_yaml_nested_past_the_parsers_recursion_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^manifest is nested too deeply$"):
        manifest_from_text("a: " + "[" * 1200 + "]" * 1200)
