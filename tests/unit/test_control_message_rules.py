"""The refusals docs/protocol.md promises for the orchestrator's own messages and the
command envelope, in their words: workload names unique within a desired document, a
reply that is ok carries no error and a failed one always does, a request id of 1-128
characters of ``A-Z a-z 0-9 _ . : -``, a reply topic of at most 512 characters without
wildcards or NUL. Why: each is what a Node-RED flow or a script relies on to read a
message without second-guessing it; mutation testing found them unpinned for these models.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from edgefleet_protocol import CommandReply, CommandRequest, Desired, ProtocolError, decode

SPEC = {"runtime": "simulated"}


def workload(name: str) -> dict[str, Any]:
    return {"name": name, "app": "web", "spec": SPEC, "spec_hash": "sha256:0123456789abcdef"}


def refusal(model: type[Any], body: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as caught:
        decode(model, json.dumps({"v": 1, **body}))
    return caught.value.field, caught.value.reason


def desired(*names: str) -> dict[str, Any]:
    return {
        "node": "gw-1",
        "generation": 1,
        "issued_at": 1,
        "workloads": [workload(n) for n in names],
    }


def test_workload_names_are_unique_within_a_desired_document() -> None:
    assert [w.name for w in decode(Desired, json.dumps(desired("web-0", "web-1"))).workloads] == [
        "web-0",
        "web-1",
    ]
    field, reason = refusal(Desired, desired("web-1", "web-0", "web-1", "web-0", "web-2"))
    assert (field, reason) == ("workloads", "duplicate workload name(s): web-0, web-1")


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ({"ok": True, "error": {"code": "x", "message": "y"}}, "an ok reply carries no error"),
        ({"ok": False}, "a failed reply must carry an error"),
        ({"ok": False, "result": {"app": "x"}}, "a failed reply must carry an error"),
    ],
)  # fmt: skip
def test_a_reply_is_ok_with_a_result_or_failed_with_an_error(
    reply: dict[str, Any], reason: str
) -> None:
    assert refusal(CommandReply, {"request_id": "op-1", **reply}) == ("payload", reason)


def test_an_ok_reply_and_a_failed_reply_as_documented() -> None:
    ok = decode(CommandReply, json.dumps({"request_id": "op-1", "ok": True}))
    assert (ok.ok, ok.result, ok.error, ok.verb) == (True, None, None, None)
    error = {"code": "not_found", "message": "no app x"}
    failed = decode(CommandReply, json.dumps({"request_id": "op-1", "ok": False, "error": error}))
    assert failed.error is not None and failed.error.details == {}


@pytest.mark.parametrize("request_id", ["a", "A-z_0.9:x", "x" * 128])
def test_a_request_id_of_the_documented_characters_and_length_is_taken(request_id: str) -> None:
    assert (
        decode(CommandRequest, json.dumps({"v": 1, "request_id": request_id})).request_id
        == request_id
    )


@pytest.mark.parametrize("request_id", ["", "x" * 129, "op 1", "op/1", "op+1", "ö"])
def test_any_other_request_id_is_refused_naming_it(request_id: str) -> None:
    assert refusal(CommandRequest, {"request_id": request_id})[0] == "request_id"


def test_a_reply_topic_is_one_to_512_characters_without_wildcards_or_nul() -> None:
    longest = "edgefleet/v1/replies/alice/" + "x" * (512 - 27)
    assert (
        decode(
            CommandRequest, json.dumps({"v": 1, "request_id": "r", "reply_to": longest})
        ).reply_to
        == longest
    )
    for bad in ("", longest + "x"):
        assert refusal(CommandRequest, {"request_id": "r", "reply_to": bad})[0] == "reply_to"
    for wild in ("edgefleet/v1/replies/+/x", "edgefleet/v1/replies/#", "edgefleet/v1/replies/a\0"):
        field, reason = refusal(CommandRequest, {"request_id": "r", "reply_to": wild})
        assert (field, reason) == ("reply_to", "must be a plain topic: no '+', '#' or NUL")


@pytest.mark.parametrize("reply_to", ["r", "edgefleet/v1/replies/alice/X-Ray 7"])
def test_any_other_reply_topic_is_read_for_the_orchestrator_to_judge(reply_to: str) -> None:
    # The envelope refuses only what can never be a topic to publish to; whether it lies
    # under the replies prefix is the orchestrator's check (bad_reply_to), which needs it read.
    read = decode(CommandRequest, json.dumps({"v": 1, "request_id": "r", "reply_to": reply_to}))
    assert read.reply_to == reply_to


def test_a_desired_signature_of_more_than_128_characters_refuses_the_document() -> None:
    # docs/protocol.md: base64 of 64 bytes, at most 128 characters; whether it verifies is
    # the agent's check against its trust anchor, after the document is read.
    longest = {**desired("web-0"), "key_id": "0123456789abcdef", "signature": "s" * 128}
    assert decode(Desired, json.dumps({"v": 1, **longest})).signature == "s" * 128
    assert refusal(Desired, {**longest, "signature": "s" * 129})[0] == "signature"
