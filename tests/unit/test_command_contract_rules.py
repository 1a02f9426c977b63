"""Regression tests for the command-contract defects an independent MQTT.js client found
(#12 item 10): whole numbers written as ``3.0``, a wildcard reply topic, and a refused
envelope whose ``request_id`` and ``reply_to`` can still be read."""

from __future__ import annotations

import json

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.commands import (
    DrainArgs,
    ErrorCode,
    ScaleArgs,
    parse_command,
    parse_envelope,
    salvage_envelope,
)

ROOT = "edgefleet/v1"
REPLY = f"{ROOT}/replies/alice/1"


def body(**fields: object) -> bytes:
    return json.dumps({"v": 1, "request_id": "r-1", "reply_to": REPLY, **fields}).encode()


@pytest.mark.parametrize("value", [3, 3.0])
def test_a_whole_number_is_an_integer_argument_as_the_conventions_say(value: object) -> None:
    _, scale = parse_command("scale", body(app="web", replicas=value))
    assert isinstance(scale, ScaleArgs)
    assert scale.replicas == 3
    assert type(scale.replicas) is int
    _, drain = parse_command("drain", body(node="gw-1", max_unavailable=value))
    assert isinstance(drain, DrainArgs)
    assert drain.max_unavailable == 3
    assert type(drain.max_unavailable) is int


@pytest.mark.parametrize("value", [3.5, "3", True, None, [3], 1e300])
def test_a_fraction_a_string_or_a_boolean_is_not_a_replica_count(value: object) -> None:
    with pytest.raises(ProtocolError) as refused:
        parse_command("scale", body(app="web", replicas=value))
    assert refused.value.field == "replicas"


def refusal(payload: bytes) -> ProtocolError:
    with pytest.raises(ProtocolError) as refused:
        parse_envelope(payload)
    return refused.value


@pytest.mark.parametrize("reply_to", [f"{ROOT}/replies/+", f"{ROOT}/replies/alice/#"])
def test_a_wildcard_reply_topic_is_bad_reply_to_not_bad_request(reply_to: str) -> None:
    payload = json.dumps({"v": 1, "request_id": "r-7", "reply_to": reply_to}).encode()
    salvage = salvage_envelope(ROOT, payload, refusal(payload))
    assert salvage.code is ErrorCode.BAD_REPLY_TO
    assert salvage.request_id == "r-7"
    assert salvage.reply_to is None  # never answered on a wildcard


@pytest.mark.parametrize("v", [2, "1", None])
def test_a_bad_version_with_a_readable_request_id_and_reply_to_is_answered_there(
    v: object,
) -> None:
    payload = json.dumps({"v": v, "request_id": "r-9", "reply_to": REPLY}).encode()
    salvage = salvage_envelope(ROOT, payload, refusal(payload))
    assert (salvage.code, salvage.request_id, salvage.reply_to) == (
        ErrorCode.BAD_REQUEST,
        "r-9",
        REPLY,
    )


@pytest.mark.parametrize(
    ("payload", "request_id", "reply_to"),
    [
        (b"not json", "unknown", None),
        (b"", "unknown", None),
        (json.dumps({"v": 2, "request_id": "has space", "reply_to": REPLY}).encode(),
         "unknown", REPLY),
        (json.dumps({"v": 2, "request_id": "r-1", "reply_to": "elsewhere/x"}).encode(),
         "r-1", None),
        (json.dumps({"v": 2, "request_id": "r-1", "reply_to": 5}).encode(), "r-1", None),
        (json.dumps({"v": 2, "request_id": "r-1", "reply_to": REPLY + "x" * 600}).encode(),
         "r-1", None),
    ],
)  # fmt: skip
def test_what_cannot_be_read_is_not_guessed(
    payload: bytes, request_id: str, reply_to: str | None
) -> None:
    salvage = salvage_envelope(ROOT, payload, ProtocolError("v", "unsupported"))
    assert (salvage.request_id, salvage.reply_to) == (request_id, reply_to)
    assert salvage.code is ErrorCode.BAD_REQUEST


# -- bounds and the closed error-code set (killing make mutate's survivors) ----------------


@pytest.mark.parametrize(
    ("verb", "field", "ok", "too_many"),
    [
        ("scale", "replicas", 10_000, 10_001),
        ("drain", "max_unavailable", 10_000, 10_001),
        ("audit", "limit", 1000, 1001),
    ],
)
def test_count_arguments_are_bounded_exactly_where_documented(
    verb: str, field: str, ok: int, too_many: int
) -> None:
    from edgefleet_protocol.commands import parse_command

    def payload(value: int) -> bytes:
        args = {"app": "web", "node": "gw-1", field: value}
        return json.dumps({"v": 1, "request_id": "r-1", **args}).encode()

    _, args = parse_command(verb, payload(ok))
    assert getattr(args, field) == ok
    with pytest.raises(ProtocolError) as refused:
        parse_command(verb, payload(too_many))
    assert refused.value.field == field


def test_the_error_codes_are_exactly_the_documented_wire_strings() -> None:
    from edgefleet_protocol.commands import ErrorCode

    assert sorted(code.value for code in ErrorCode) == sorted(
        ["bad_request", "unknown_verb", "bad_reply_to", "not_found", "conflict",
         "policy_violation", "forbidden", "internal", "rate_limited", "too_large"]
    )  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), [("3", "must be a JSON integer"),
                                              (3.5, "must be a whole number")])  # fmt: skip
def test_a_count_that_is_not_a_whole_number_is_refused_in_words(value: object, reason: str) -> None:
    from edgefleet_protocol.commands import parse_command

    with pytest.raises(ProtocolError) as refused:
        parse_command("scale", json.dumps({"v": 1, "request_id": "r", "app": "web",
                                           "replicas": value}).encode())  # fmt: skip
    assert refused.value.reason.endswith(reason), refused.value.reason


def test_a_manifest_given_as_yaml_text_arrives_as_an_object() -> None:
    from edgefleet_protocol.commands import DeployArgs, parse_command

    text = "name: web\nreplicas: 2\nworkload:\n  runtime: simulated\n"
    _, args = parse_command(
        "deploy", json.dumps({"v": 1, "request_id": "r", "manifest": text}).encode()
    )
    assert isinstance(args, DeployArgs)
    assert args.manifest == {"name": "web", "replicas": 2, "workload": {"runtime": "simulated"}}
