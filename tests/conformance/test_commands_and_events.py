"""docs/protocol.md, Commands, Reply topics, Replies and Events, against the real
orchestrator process: replies are QoS 1 and never retained, ``reply_to`` wins over the
MQTT 5 Response Topic, which refusals reach the reply topic, every error code, and
rejected messages reported on ``orchestrator/events`` within a rate limit."""

from __future__ import annotations

import uuid

from conformance_pins import pins
from conftest import NODES, Fleet
from harness.observer import retained_now


def rid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pins("Replies", topics=("commands", "replies"))
def test_a_reply_is_qos_1_never_retained_and_carries_the_request_id(
    fleet: Fleet, mark: int
) -> None:
    request = rid("apps")
    fleet.send("apps", {"v": 1, "request_id": request, "reply_to": fleet.reply_topic(request)})
    reply = fleet.reply(request, after=mark)
    assert (reply.retain, reply.qos) == (False, 1)
    body = reply.json()
    assert (body["v"], body["request_id"], body["verb"], body["ok"]) == (1, request, "apps", True)
    assert "apps" in body["result"]
    assert retained_now(fleet.url, f"{fleet.root}/replies/#") == []
    audit = fleet.audit(request, after=mark)
    assert (audit["details"]["ok"], audit["details"]["result"]) == (True, "ok")


@pins("Reply topics", topics=("replies",))
def test_reply_to_wins_over_the_response_topic_and_correlation_data_comes_back(
    fleet: Fleet, mark: int
) -> None:
    request = rid("both")
    other = fleet.reply_topic(f"{request}-property")
    fleet.send(
        "nodes",
        {"v": 1, "request_id": request, "reply_to": fleet.reply_topic(request)},
        response_topic=other,
        correlation_data=b"corr-1",
    )
    reply = fleet.reply(request, after=mark)
    assert reply.correlation_data == b"corr-1"
    fleet.audit(request, after=mark)  # answered and audited: nothing more will come
    assert not [s for s in fleet.obs.since(mark) if s.topic == other]


@pins("Commands", topics=("commands-anonymous", "replies"))
def test_the_accountless_command_topic_runs_commands_as_anonymous(fleet: Fleet, mark: int) -> None:
    request = rid("anon")
    reply_to = f"{fleet.root}/replies/anonymous/{request}"
    fleet.send("apps", {"v": 1, "request_id": request, "reply_to": reply_to}, operator=None)
    reply = fleet.obs.expect(lambda s: s.topic == reply_to, after=mark, what="the reply")
    assert (reply.retain, reply.qos, reply.json()["ok"]) == (False, 1, True)
    assert fleet.audit(request, after=mark)["details"]["operator"] == "anonymous"


@pins("Reply topics", topics=("replies",))
def test_the_mqtt5_response_topic_alone_names_the_reply_topic(fleet: Fleet, mark: int) -> None:
    request = rid("prop")
    topic = fleet.reply_topic(request)
    fleet.send("nodes", {"v": 1, "request_id": request}, response_topic=topic,
               correlation_data=b"\x00\x01")  # fmt: skip
    reply = fleet.obs.expect(lambda s: s.topic == topic, after=mark, what="the reply")
    assert (reply.retain, reply.correlation_data) == (False, b"\x00\x01")
    assert len(reply.json()["result"]["nodes"]) == len(NODES)


@pins("Reply topics", codes=("bad_reply_to",))
def test_a_reply_topic_outside_replies_is_bad_reply_to_answered_on_events_only(
    fleet: Fleet, mark: int
) -> None:
    for reply_to in (f"{fleet.root}/apps/web/status", f"{fleet.root}/replies/alice/+",
                     f"{fleet.root}/replies//x"):  # fmt: skip
        request = rid("badreply")
        fleet.send("apps", {"v": 1, "request_id": request, "reply_to": reply_to})
        audit = fleet.audit(request, after=mark)["details"]
        assert (audit["ok"], audit["result"]) == (False, "bad_reply_to")
    assert not [s for s in fleet.obs.since(mark) if "/replies/" in s.topic]
    assert not [s for s in fleet.obs.since(mark) if s.topic.endswith("/apps/web/status")]


@pins("Commands", codes=("unknown_verb", "bad_request", "not_found", "conflict"))
def test_each_refusal_is_answered_on_the_reply_topic_with_its_code(fleet: Fleet) -> None:
    reply = fleet.call("frobnicate")
    assert (reply["ok"], reply["error"]["code"]) == (False, "unknown_verb")
    assert "deploy" in reply["error"]["details"]["verbs"]
    reply = fleet.call("scale", app="web", replicas="3")
    assert reply["error"]["code"] == "bad_request"
    assert reply["error"]["details"]["field"] == "replicas"
    assert fleet.call("app", app="no-such-app")["error"]["code"] == "not_found"
    daemon = {"name": "agentd", "mode": "daemon", "workload": {"runtime": "simulated"}}
    assert fleet.call("deploy", manifest=daemon)["ok"]
    reply = fleet.call("scale", app="agentd", replicas=3)
    assert reply["error"]["code"] == "conflict"
    assert fleet.call("delete", app="agentd")["ok"]


@pins("Commands", codes=("bad_request",))
def test_a_bad_envelope_is_answered_on_a_readable_reply_to_and_a_broken_payload_on_events(
    fleet: Fleet, mark: int
) -> None:
    request = rid("v2")
    fleet.send("apps", {"v": 2, "request_id": request, "reply_to": fleet.reply_topic(request)})
    reply = fleet.reply(request, after=mark).json()
    assert (reply["request_id"], reply["error"]["code"]) == (request, "bad_request")
    before = fleet.obs.mark()
    fleet.send("apps", b"{not json")
    audit = fleet.obs.expect_json(
        fleet.orch_events,
        lambda b: b["kind"] == "command" and b["details"]["request_id"] == "unknown",
        after=before,
    ).json()
    assert audit["details"]["result"] == "bad_request"


@pins("Idempotency")
def test_a_repeated_request_id_gets_the_remembered_reply_and_is_not_run_again(
    fleet: Fleet,
) -> None:
    request = rid("idem")
    manifest = {"name": "idem", "replicas": 1, "workload": {"runtime": "simulated"}}
    first = fleet.call("deploy", request_id=request, manifest=manifest)
    again = fleet.call("deploy", request_id=request, manifest={**manifest, "replicas": 2})
    assert first == again
    assert first["result"]["action"] == "created"
    assert fleet.call("app", app="idem")["result"]["manifest"]["replicas"] == 1
    assert fleet.call("delete", app="idem")["ok"]


@pins("Commands", topics=("commands",))
def test_clearing_a_retained_command_is_not_a_command(fleet: Fleet, mark: int) -> None:
    fleet.send("deploy", b"", retain=True)  # docs: how to clear a command retained by mistake
    probe = fleet.call("apps")  # answered after the clear: the clear was handled before
    assert probe["ok"]
    later = fleet.obs.since(mark)
    audited = [s.json()["details"]["request_id"] for s in later
               if s.topic == fleet.orch_events and s.json()["kind"] == "command"]  # fmt: skip
    assert "unknown" not in audited
    assert not [s for s in later if s.topic == fleet.orch_events
                and s.json()["kind"] == "message-rejected"]  # fmt: skip


@pins("Events", topics=("orchestrator-events",))
def test_a_rejected_message_is_reported_on_orchestrator_events_not_retained(
    fleet: Fleet, mark: int
) -> None:
    topic = fleet.node("gw-x", "capabilities")
    fleet.obs.publish(topic, b"not json", retain=False)
    event = fleet.obs.expect_json(
        fleet.orch_events,
        lambda b: b["kind"] == "message-rejected" and b["details"]["topic"] == topic,
        after=mark,
    )
    assert (event.retain, event.qos) == (False, 1)
    body = event.json()
    assert body["level"] == "warning"
    assert "JSON" in body["details"]["reason"]


@pins("Events", topics=("orchestrator-events",))
def test_a_flood_of_bad_messages_becomes_a_bounded_number_of_events(
    fleet: Fleet, mark: int
) -> None:
    # "a hostile flood never becomes an event flood": 300 bad messages in a burst get at
    # most the budget (20 a second by default) plus what refills while they arrive.
    topic = fleet.node("gw-flood", "telemetry")
    for i in range(300):
        fleet.obs.client.publish(topic, f"bad {i}".encode(), qos=0)
    fleet.obs.publish(topic, b"last one", retain=False)  # QoS 1: the burst is out
    probe = fleet.call("apps")  # the orchestrator got past the burst and still answers
    assert probe["ok"]
    events = [s for s in fleet.obs.since(mark) if s.topic == fleet.orch_events
              and s.json()["kind"] == "message-rejected"
              and s.json()["details"]["topic"] == topic]  # fmt: skip
    assert 1 <= len(events) < 150, len(events)


def test_every_message_seen_in_this_module_decodes_with_its_topic_model(fleet: Fleet) -> None:
    from edgefleet_protocol import ProtocolError, TopicKind, Topics, decode_for_kind

    topics = Topics(fleet.root)
    checked = 0
    for seen in fleet.obs.seen():
        if not seen.payload or "/replies/" in seen.topic or "gw-x" in seen.topic:
            continue
        if "gw-flood" in seen.topic or "/commands/" in seen.topic:
            continue  # what the tests sent on purpose
        kind = topics.parse(seen.topic).kind
        try:
            decode_for_kind(kind, seen.payload)
        except ProtocolError as exc:  # pragma: no cover - the assertion says it
            raise AssertionError(f"{seen.topic}: {exc}") from None
        checked += 1
        assert kind is not TopicKind.COMMAND
    assert checked > 10


@pins("Rate limits", codes=("rate_limited",))
def test_a_client_over_its_command_limit_is_answered_rate_limited(fleet: Fleet, mark: int) -> None:
    client = f"flooder{uuid.uuid4().hex[:4]}"
    topics = [f"{fleet.root}/replies/{client}/{i}" for i in range(60)]
    for i, topic in enumerate(topics):
        fleet.send(
            "apps", {"v": 1, "request_id": f"{client}-{i}", "reply_to": topic}, operator=client
        )
    limited = fleet.obs.expect_json(
        f"{fleet.root}/orchestrator/events",
        lambda b: b["kind"] == "commands-refused",
        after=mark,
        what="the commands-refused summary",
    ).json()
    assert limited["details"]["refused"] >= 10
    replies = [s.json() for s in fleet.obs.since(mark) if s.topic in set(topics)]
    refused = [r for r in replies if not r["ok"]]
    assert refused, "no rate_limited reply"
    assert {r["error"]["code"] for r in refused} == {"rate_limited"}
    assert refused[0]["error"]["details"] == {"limit": 50, "window_s": 5.0}
    assert 1 <= len(refused) <= 5  # "for the first 5 refusals per client per window"
