"""docs/protocol.md, "Logs on demand", field by field: every documented bound and default
of ``LogsRequest`` and ``LogsChunk`` at its edge, the closed sets of ``end`` and error
codes, the reply topic an operator may name (and which user names can be one), and the
8192-character cut of a line. The numbers are the document's, written out, not read from
the module. Pure.
"""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.codec import validate
from edgefleet_protocol.logs import (
    LogsChunk,
    LogsRequest,
    check_logs_reply_to,
    clip_line,
    logs_reply_to,
)

R = "edgefleet/v1"
REPLY = f"{R}/replies/alice/logs/plant-a/gw-1/alice-7f3a"


def request(**fields: Any) -> LogsRequest:
    data = {"v": 1, "request_id": "alice-7f3a", "reply_to": REPLY, "workload": "web-0"}
    return validate(LogsRequest, {**data, **fields})


def chunk(**fields: Any) -> LogsChunk:
    data = {"v": 1, "request_id": "alice-7f3a", "node": "gw-1", "workload": "web-0", "seq": 0}
    return validate(LogsChunk, {**data, **fields})


def refused_field(make: Any, **fields: Any) -> str:
    with pytest.raises(ProtocolError) as caught:
        make(**fields)
    return caught.value.field


def test_a_request_defaults_to_the_last_100_lines_without_following_for_60_s() -> None:
    req = request()
    assert (req.tail, req.follow, req.follow_s, req.cursor) == (100, False, 60.0, None)


@pytest.mark.parametrize(
    "fields",
    [
        {"request_id": "a"},
        {"request_id": "A-z._9" + "x" * 122},  # 128 characters
        {"reply_to": "r"},  # the model takes it; the agent's topic check decides
        {"reply_to": "r" * 512},
        {"tail": 0},
        {"tail": 10_000},
        {"follow_s": 0.5},
        {"follow_s": 600},
        {"cursor": "p" * 64},
    ],
)
def test_a_request_at_each_documented_edge_is_taken(fields: dict[str, Any]) -> None:
    req = request(**fields)
    for name, value in fields.items():
        assert getattr(req, name) == value


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"request_id": ""}, "request_id"),
        ({"request_id": "x" * 129}, "request_id"),
        ({"request_id": "alice/7f3a"}, "request_id"),
        ({"request_id": "alice 7f3a"}, "request_id"),
        ({"reply_to": ""}, "reply_to"),
        ({"reply_to": "r" * 513}, "reply_to"),
        ({"tail": -1}, "tail"),
        ({"tail": 10_001}, "tail"),
        ({"follow_s": 0}, "follow_s"),
        ({"follow_s": 600.5}, "follow_s"),
        ({"cursor": "p" * 65}, "cursor"),
    ],
)
def test_a_request_past_a_documented_edge_is_refused_naming_the_field(
    fields: dict[str, Any], field: str
) -> None:
    assert refused_field(request, **fields) == field


def test_a_chunk_defaults_to_no_lines_and_not_done() -> None:
    c = chunk()
    assert (c.lines, c.cursor, c.done, c.end, c.error) == ([], None, False, None, None)


@pytest.mark.parametrize("end", ["complete", "expired", "stopped", "error"])
def test_every_documented_end_of_a_stream_is_a_valid_last_chunk(end: str) -> None:
    assert chunk(done=True, end=end).end == end


@pytest.mark.parametrize("code", ["not_found", "bad_request", "unsupported", "busy"])
def test_every_documented_error_code_is_a_valid_refusal(code: str) -> None:
    refusal = chunk(done=True, end="error", error={"code": code, "message": "m" * 2048})
    assert refusal.error is not None and refusal.error.code == code


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"end": "finished"}, "end"),
        ({"error": {"code": "denied", "message": "no"}}, "error.code"),
        ({"error": {"code": "busy", "message": "m" * 2049}}, "error.message"),
        ({"request_id": ""}, "request_id"),
        ({"request_id": "x" * 129}, "request_id"),
        ({"seq": -1}, "seq"),
        ({"lines": ["l"] * 201}, "lines"),
        ({"cursor": "p" * 65}, "cursor"),
    ],
)
def test_a_chunk_outside_the_contract_is_refused_naming_the_field(
    fields: dict[str, Any], field: str
) -> None:
    assert refused_field(chunk, **fields) == field


def test_a_chunk_holds_up_to_200_lines_and_any_request_id_up_to_128_characters() -> None:
    c = chunk(request_id="a", lines=["l"] * 200, cursor="p" * 64, seq=0)
    assert len(c.lines) == 200
    assert chunk(request_id="x" * 128).request_id == "x" * 128


def test_a_line_of_8192_characters_is_kept_and_a_longer_one_cut_with_a_mark() -> None:
    assert clip_line("y" * 8192) == "y" * 8192
    cut = clip_line("y" * 8193)
    assert cut == "y" * 8191 + "…" and len(cut) == 8192
    assert clip_line("") == ""


@pytest.mark.parametrize("user", ["Xavier", "alice.ops", "a"])
def test_any_user_name_that_is_one_topic_level_names_a_reply_topic(user: str) -> None:
    topic = logs_reply_to(R, user, "plant-a", "gw-1", "r-1")
    assert topic == f"{R}/replies/{user}/logs/plant-a/gw-1/r-1"
    assert check_logs_reply_to(R, topic, site="plant-a", node="gw-1") == topic


@pytest.mark.parametrize("user", ["", "a/b", "a+", "#", "a\0b"])
def test_a_user_name_that_is_not_one_topic_level_is_refused(user: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        logs_reply_to(R, user, "plant-a", "gw-1", "r-1")
    assert (caught.value.field, caught.value.reason) == (
        "user",
        f"{user!r} cannot be one topic level",
    )


@pytest.mark.parametrize(
    ("site", "node", "field"), [("Plant A", "gw-1", "site"), ("a", "", "node")]
)
def test_a_bad_site_or_node_is_refused_naming_which(site: str, node: str, field: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        logs_reply_to(R, "alice", site, node, "r-1")
    assert caught.value.field == field


@pytest.mark.parametrize(
    "topic",
    [
        f"{R}/replies/alice/logs/plant-a/gw-1/x+y",
        f"{R}/replies/alice/logs/plant-a/gw-1/x#",
        f"{R}/replies/alice/logs/plant-a/gw-1/x\0",
        f"{R}/apps/web/status",
    ],
)
def test_a_reply_topic_with_a_wildcard_or_outside_replies_is_refused_in_words(topic: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_logs_reply_to(R, topic, site="plant-a", node="gw-1")
    assert (caught.value.field, caught.value.reason) == (
        "reply_to",
        "must be a plain topic under 'edgefleet/v1/replies/'",
    )


@pytest.mark.parametrize(
    "topic",
    [
        f"{R}/replies/alice/logs/plant-a/gw-2/x",
        f"{R}/replies//logs/plant-a/gw-1/x",  # an empty user level
        f"{R}/replies/alice/logs/plant-a/gw-1/",  # an empty id
        f"{R}/replies/alice/status/plant-a/gw-1/x",
    ],
)
def test_a_reply_topic_not_shaped_for_this_node_is_refused_saying_the_shape(topic: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        check_logs_reply_to(R, topic, site="plant-a", node="gw-1")
    assert (caught.value.field, caught.value.reason) == (
        "reply_to",
        "must be edgefleet/v1/replies/<user>/logs/plant-a/gw-1/<id> for this node",
    )


def test_a_reply_topic_may_hold_any_letter() -> None:
    topic = f"{R}/replies/Xena/logs/plant-a/gw-1/X-1"
    assert check_logs_reply_to(R, topic, site="plant-a", node="gw-1") == topic
