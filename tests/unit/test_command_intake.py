"""The command intake's I/O shell (``service.commands.CommandIntake``) against
docs/protocol.md's Commands section, without a broker: a real store on a temp file, the
real event publisher, and a fake session that records what would be published. The
broker-tier conformance suite pins the same promises end to end; these run in
milliseconds, so ``make mutate`` can run them once per mutant.

What is pinned: which topic a reply goes to (``reply_to`` wins over the MQTT 5 Response
Topic; a bad reply topic is answered on events only; a refused envelope is answered where
it can still be read), that replies are QoS 1 and never retained and echo Correlation
Data, idempotency per operator (``internal`` excepted), the audit entry and ``command``
event of every answer, roles and scope, and what the pass loop is told.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from edgefleet_orchestrator.access.roles import AccessPolicy, parse_policy
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.service import commands
from edgefleet_orchestrator.service.commands import CommandIntake
from edgefleet_orchestrator.service.config import ServiceStats
from edgefleet_orchestrator.service.events import EventPublisher
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.sqlite import SqliteStore, open_store
from edgefleet_protocol import Capabilities, NodeStatus, TopicKind, Topics
from edgefleet_protocol.session import InboundMessage, Publication, Session
from pydantic import BaseModel

ROOT = "edgefleet/v1"
TOPICS = Topics(ROOT)
EVENTS = TOPICS.orchestrator_events()
NOW = 1234.5
STATE_NOW = 777.0
MANIFEST = {"name": "web", "replicas": 1, "workload": {"runtime": "simulated"}}
POLICY = parse_policy(
    {
        "operators": {
            "eve": "viewer",
            "dev": {"role": "deployer", "sites": ["plant-a"]},
            "ops": {"role": "admin", "sites": ["plant-b"]},
            "cam": {"role": "viewer", "apps": ["web"]},
        }
    },
    "roles.yaml",
)


class FakeSession:
    """The session seam: records every publication instead of sending it."""

    def __init__(self) -> None:
        self.published: list[Publication] = []

    async def publish(self, pub: Publication) -> bool:
        self.published.append(pub)
        return True

    async def publish_model(self, kind: TopicKind, topic: str, model: BaseModel) -> bool:
        return await self.publish(Publication.of(kind, topic, model))


class Rig:
    """One intake over a real store and state, and what it did."""

    def __init__(self, store: SqliteStore, access: AccessPolicy) -> None:
        registry = Registry()
        for node, site in (("gw-1", "plant-a"), ("gw-2", "plant-b")):
            caps = Capabilities(
                node=node, site=site, arch="x86_64", cpu_cores=2, memory_mb=1024, disk_mb=1,
                runtimes=["simulated"],
            )  # fmt: skip
            registry.ingest(TopicKind.NODE_CAPABILITIES, site, node, caps, 1.0)
            status = NodeStatus(node=node, site=site, state="online", session=1, since=1.0)
            registry.ingest(TopicKind.NODE_STATUS, site, node, status, 1.0)
        self.store = store
        self.state = ControlState(
            apps={}, registry=registry, assignments=[], access=access, clock=lambda: STATE_NOW
        )
        self.session = FakeSession()
        self.stats = ServiceStats()
        self.changes: list[bool] = []
        session = cast(Session, self.session)
        events = EventPublisher(
            session, TOPICS, self.stats, max_rejections_per_s=100.0, clock=lambda: NOW
        )
        self.intake = CommandIntake(
            root=ROOT, session=session, store=store, state=self.state, events=events,
            stats=self.stats, on_change=self.changes.append, clock=lambda: NOW,
        )  # fmt: skip

    async def send(
        self,
        verb: str,
        payload: dict[str, Any] | bytes,
        *,
        operator: str | None = "alice",
        response_topic: str | None = None,
        correlation: bytes | None = None,
    ) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        where = f"{operator}/{verb}" if operator else verb
        message = InboundMessage(
            topic=f"{ROOT}/commands/{where}", payload=raw, qos=1, retain=False,
            response_topic=response_topic, correlation_data=correlation,
        )  # fmt: skip
        await self.intake.command(verb, message, operator)

    def replies(self) -> list[Publication]:
        return [p for p in self.session.published if p.topic != EVENTS]

    def reply(self) -> dict[str, Any]:
        (only,) = self.replies()
        assert only.qos == 1 and only.retain is False  # documented: QoS 1, never retained
        return cast(dict[str, Any], json.loads(only.payload))

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(p.payload) for p in self.session.published if p.topic == EVENTS]

    def audit(self) -> list[dict[str, Any]]:
        return [e.as_details() for e in self.store.audit_entries(limit=100)]

    def clear(self) -> None:
        self.session.published.clear()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = open_store(tmp_path, synchronous="NORMAL")
    yield opened
    opened.close()


@pytest.fixture
def rig(store: SqliteStore) -> Rig:
    return Rig(store, AccessPolicy())


def req(rid: str, reply: str | None = None, **args: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"v": 1, "request_id": rid, **args}
    if reply is not None:
        body["reply_to"] = f"{ROOT}/replies/{reply}"
    return body


def entry(
    rid: str, result: str, verb: str, target: tuple[str | None, str | None] = (None, None),
    operator: str = "alice",
) -> dict[str, Any]:  # fmt: skip
    return {
        "ts": NOW, "operator": operator, "verb": verb, "request_id": rid,
        "target_kind": target[0], "target": target[1], "ok": result == "ok", "result": result,
    }  # fmt: skip


async def test_a_deploy_is_run_answered_on_reply_to_audited_and_starts_the_clock(rig: Rig) -> None:
    await rig.send("deploy", req("d1", "alice/d1", manifest=MANIFEST), correlation=b"c-1")
    (pub,) = rig.replies()
    assert (pub.topic, pub.correlation_data) == (f"{ROOT}/replies/alice/d1", b"c-1")
    reply = rig.reply()
    assert (reply["request_id"], reply["verb"], reply["ok"]) == ("d1", "deploy", True)
    assert reply["result"]["app"] == "web" and "web" in rig.state.apps
    assert rig.changes == [True]
    assert rig.stats.commands == 1
    assert rig.stats.deploys_waiting == {"web": STATE_NOW}
    assert rig.audit() == [{**entry("d1", "ok", "deploy", ("app", "web")), "ts": NOW}]
    (event,) = rig.events()
    assert (event["kind"], event["level"], event["app"]) == ("command", "info", "web")
    assert event["details"] == entry("d1", "ok", "deploy", ("app", "web"))
    # The reply on record is exactly the one sent.
    assert rig.store.get_reply("d1", operator="alice") == pub.payload.decode()


async def test_a_deploy_that_changes_nothing_does_not_restart_the_clock(rig: Rig) -> None:
    await rig.send("deploy", req("d1", manifest=MANIFEST))
    rig.stats.deploys_waiting.clear()
    await rig.send("deploy", req("d2", manifest=MANIFEST))
    assert rig.changes == [True, False]
    assert rig.stats.deploys_waiting == {}
    assert rig.stats.commands == 2


async def test_a_node_verb_is_audited_against_its_node(rig: Rig) -> None:
    await rig.send("cordon", req("c1", "alice/c1", node="gw-1"))
    assert rig.reply()["ok"] is True
    assert rig.changes == [True] and rig.stats.deploys_waiting == {}
    assert rig.audit() == [entry("c1", "ok", "cordon", ("node", "gw-1"))]
    assert rig.events()[0]["node"] == "gw-1"


async def test_the_response_topic_answers_when_there_is_no_reply_to(rig: Rig) -> None:
    topic = f"{ROOT}/replies/alice/rt"
    await rig.send("apps", req("a1"), response_topic=topic, correlation=b"x")
    (pub,) = rig.replies()
    assert (pub.topic, pub.correlation_data) == (topic, b"x")
    assert rig.changes == [False]


async def test_reply_to_wins_over_the_response_topic(rig: Rig) -> None:
    await rig.send("apps", req("a1", "alice/mine"), response_topic=f"{ROOT}/replies/alice/rt")
    assert [p.topic for p in rig.replies()] == [f"{ROOT}/replies/alice/mine"]


async def test_a_command_without_a_reply_topic_still_runs_and_is_audited(rig: Rig) -> None:
    await rig.send("deploy", req("d1", manifest=MANIFEST))
    assert rig.replies() == [] and "web" in rig.state.apps
    assert [e["result"] for e in rig.audit()] == ["ok"]


@pytest.mark.parametrize(
    ("reply_to", "response_topic"),
    [
        (f"{ROOT}/replies/bob/x", None),  # another operator's subtree
        (None, f"{ROOT}/replies/bob/x"),  # the Response Topic is checked the same way
        (f"{ROOT}/replies/alice/x", f"{ROOT}/replies/bob/x"),  # ... unless reply_to wins
    ],
)
async def test_a_bad_reply_topic_is_answered_on_events_only(
    rig: Rig, reply_to: str | None, response_topic: str | None
) -> None:
    body = req("b1", manifest=MANIFEST)
    if reply_to is not None:
        body["reply_to"] = reply_to
    await rig.send("deploy", body, response_topic=response_topic)
    if reply_to is not None and reply_to.startswith(f"{ROOT}/replies/alice/"):
        assert rig.reply()["ok"] is True
        return
    assert rig.replies() == [] and rig.state.apps == {} and rig.changes == []
    assert rig.audit() == [entry("b1", "bad_reply_to", "deploy")]
    (event,) = rig.events()
    assert (event["kind"], event["level"]) == ("command", "warning")
    assert rig.store.get_reply("b1", operator="alice") is None


async def test_a_reply_to_the_envelope_refuses_is_answered_on_events_only(rig: Rig) -> None:
    # reply_to that is not even a string: the envelope itself fails on reply_to, and the
    # Response Topic is not used instead (the caller named a reply topic, a bad one).
    body = {"v": 1, "request_id": "b2", "reply_to": 7}
    await rig.send("apps", body, response_topic=f"{ROOT}/replies/alice/rt")
    assert rig.replies() == []
    assert rig.audit() == [entry("b2", "bad_reply_to", "apps")]


async def test_a_bad_envelope_is_answered_on_its_readable_reply_to(rig: Rig) -> None:
    body = {"v": 2, "request_id": "e1", "reply_to": f"{ROOT}/replies/alice/e1"}
    await rig.send("apps", body, response_topic=f"{ROOT}/replies/alice/rt", correlation=b"k")
    (pub,) = rig.replies()
    assert (pub.topic, pub.correlation_data) == (f"{ROOT}/replies/alice/e1", b"k")
    reply = rig.reply()
    assert (reply["request_id"], reply["ok"], reply["error"]["code"]) == (
        "e1",
        False,
        "bad_request",
    )
    assert reply["error"]["details"]["field"] == "v"
    assert rig.changes == [] and rig.stats.commands == 1
    assert rig.audit() == [entry("e1", "bad_request", "apps")]


async def test_a_bad_envelope_without_a_usable_reply_to_uses_the_response_topic(rig: Rig) -> None:
    body = {"v": 2, "request_id": "e1", "reply_to": f"{ROOT}/replies/bob/e1"}
    await rig.send("apps", body, response_topic=f"{ROOT}/replies/alice/rt")
    assert [p.topic for p in rig.replies()] == [f"{ROOT}/replies/alice/rt"]
    assert rig.reply()["error"]["code"] == "bad_request"


@pytest.mark.parametrize(
    "response_topic", [None, f"{ROOT}/replies/bob/rt", f"{ROOT}/replies/alice/+"]
)
async def test_an_unreadable_request_without_an_acceptable_response_topic_gets_no_reply(
    rig: Rig, response_topic: str | None
) -> None:
    await rig.send("apps", b"not json", response_topic=response_topic)
    assert rig.replies() == []
    assert rig.audit() == [entry("unknown", "bad_request", "apps")]


async def test_an_unreadable_request_is_answered_on_an_mqtt5_response_topic(rig: Rig) -> None:
    await rig.send("apps", b"[1]", response_topic=f"{ROOT}/replies/alice/rt")
    reply = rig.reply()
    assert (reply["request_id"], reply["error"]["code"]) == ("unknown", "bad_request")


async def test_an_empty_payload_is_a_cleared_retained_command_not_a_command(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="edgefleet.orchestrator")
    await rig.send("deploy", b"", response_topic=f"{ROOT}/replies/alice/rt")
    assert rig.session.published == [] and rig.audit() == [] and rig.stats.commands == 0
    assert f"cleared retained command on {ROOT}/commands/alice/deploy" in caplog.messages


async def test_an_accountless_command_runs_as_anonymous(rig: Rig) -> None:
    await rig.send("apps", req("n1", "anyone/n1"), operator=None)
    assert rig.reply()["ok"] is True
    assert rig.audit() == [entry("n1", "ok", "apps", operator="anonymous")]
    assert rig.store.get_reply("n1", operator="anonymous") is not None


async def test_a_repeated_request_id_gets_the_stored_reply_and_runs_nothing(rig: Rig) -> None:
    await rig.send("scale", req("s1", "alice/s1", app="web", replicas=2))
    first = rig.reply()
    assert first["error"]["code"] == "not_found"  # a refusal is remembered too
    await rig.send("deploy", req("d1", manifest=MANIFEST))
    rig.clear()
    await rig.send("scale", req("s1", "alice/again", app="web", replicas=2), correlation=b"2")
    (pub,) = rig.replies()
    assert (pub.topic, pub.correlation_data) == (f"{ROOT}/replies/alice/again", b"2")
    assert json.loads(pub.payload) == first
    assert rig.state.apps["web"].replicas == 1 and rig.changes == [True]
    assert rig.events() == []  # a replay adds no audit entry
    assert [e["request_id"] for e in rig.audit()] == ["s1", "d1"]


async def test_request_ids_are_per_operator(rig: Rig) -> None:
    await rig.send("deploy", req("same", manifest=MANIFEST), operator="alice")
    await rig.send("delete", req("same", "bob/r", app="web"), operator="bob")
    assert rig.reply()["ok"] is True and rig.state.apps == {}
    assert rig.changes == [True, True]


async def test_an_internal_failure_is_answered_not_remembered_and_runs_again(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(commands, "handle", broken)
    await rig.send("delete", req("i1", "alice/i1", app="web"))
    reply = rig.reply()
    assert reply["error"]["code"] == "internal"
    assert reply["error"]["message"] == "RuntimeError: disk on fire"
    assert rig.store.get_reply("i1", operator="alice") is None
    assert rig.audit() == [entry("i1", "internal", "delete", ("app", "web"))]
    assert rig.changes == []
    assert "command delete failed" in caplog.messages  # with the traceback, for the operator
    monkeypatch.undo()
    rig.clear()
    await rig.send("deploy", req("d1", manifest=MANIFEST))
    await rig.send("delete", req("i1", "alice/i1", app="web"))
    assert rig.reply()["ok"] is True and rig.state.apps == {}


async def test_the_audit_trail_failing_never_costs_the_answer(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: Any) -> int:
        raise OSError("read-only store")

    monkeypatch.setattr(rig.store, "append_audit", broken)
    await rig.send("apps", req("a1", "alice/a1"))
    assert rig.reply()["ok"] is True
    assert [e["kind"] for e in rig.events()] == ["command"]
    assert "could not store the audit entry of alice apps" in caplog.messages


@pytest.mark.parametrize(
    ("verb", "args", "code", "target"),
    [
        ("frobnicate", {}, "unknown_verb", (None, None)),
        ("deploy", {}, "bad_request", (None, None)),  # no manifest
        ("deploy", {"manifest": {**MANIFEST, "name": "Not An Id"}}, "bad_request", (None, None)),
        ("deploy", {"manifest": {**MANIFEST, "name": 5}}, "bad_request", (None, None)),
        ("scale", {"app": "nope", "replicas": 2}, "not_found", ("app", "nope")),
        ("drain", {"node": "nope"}, "not_found", ("node", "nope")),
    ],
)
async def test_refusals_reach_the_reply_topic_and_the_audit_trail(
    rig: Rig, verb: str, args: dict[str, Any], code: str, target: tuple[str | None, str | None]
) -> None:
    await rig.send(verb, req("r1", "alice/r1", **args))
    reply = rig.reply()
    assert (reply["ok"], reply["error"]["code"], reply["verb"]) == (False, code, verb)
    assert rig.audit() == [entry("r1", code, verb, target)]
    assert rig.changes == []


async def test_rollout_verbs_go_to_the_rollout_handlers(rig: Rig) -> None:
    await rig.send("deploy", req("d1", manifest=MANIFEST))
    await rig.send("rollout-status", req("r1", "alice/r1", app="web"))
    reply = rig.reply()
    assert reply["ok"] is True and reply["result"]["app"] == "web"
    assert "rollout" in reply["result"]


@pytest.fixture
def scoped(store: SqliteStore) -> Rig:
    return Rig(store, POLICY)


def pinned(*sites: str) -> dict[str, Any]:
    return {**MANIFEST, "placement": {"sites": list(sites)}}


@pytest.mark.parametrize(
    ("operator", "verb", "args", "allowed"),
    [
        ("eve", "deploy", {"manifest": pinned("plant-a")}, False),  # a viewer changes nothing
        ("dev", "deploy", {"manifest": pinned("plant-a")}, True),
        ("dev", "deploy", {"manifest": pinned("plant-b")}, False),  # outside its sites
        ("dev", "deploy", {"manifest": MANIFEST}, False),  # not pinned at all
        ("dev", "deploy", {"manifest": {**MANIFEST, "placement": {"sites": "plant-a"}}}, False),
        ("ops", "cordon", {"node": "gw-2"}, True),  # the node's own site
        ("ops", "cordon", {"node": "gw-1"}, False),
        ("ops", "cordon", {"node": "gw-9"}, False),  # unknown node: no site to match
        ("nobody", "apps", {}, False),
    ],
)
async def test_roles_and_scope_decide_before_anything_runs(
    scoped: Rig, operator: str, verb: str, args: dict[str, Any], allowed: bool
) -> None:
    await scoped.send(verb, req("p1", f"{operator}/p1", **args), operator=operator)
    reply = scoped.reply()
    assert reply["ok"] is allowed, reply
    if not allowed:
        assert reply["error"]["code"] == "forbidden"
        assert reply["error"]["details"]["operator"] == operator
        assert scoped.changes == [] and scoped.state.apps == {}
        assert scoped.audit()[0]["result"] == "forbidden"


async def test_a_stored_apps_pinned_sites_scope_verbs_on_it(scoped: Rig) -> None:
    await scoped.send("deploy", req("d1", manifest=pinned("plant-a")), operator="dev")
    await scoped.send(
        "deploy", req("d2", manifest={**pinned("plant-b"), "name": "db"}), operator="ops"
    )
    await scoped.send("scale", req("s1", "dev/s1", app="web", replicas=2), operator="dev")
    assert scoped.reply()["ok"] is True
    scoped.clear()
    await scoped.send("scale", req("s2", "dev/s2", app="db", replicas=2), operator="dev")
    assert scoped.reply()["error"]["code"] == "forbidden"
    scoped.clear()
    await scoped.send("scale", req("s3", "dev/s3", app="gone", replicas=2), operator="dev")
    assert scoped.reply()["error"]["code"] == "forbidden"  # no stored app: no sites


async def test_list_results_are_narrowed_to_the_operators_scope(scoped: Rig) -> None:
    await scoped.send("deploy", req("d1", manifest=pinned("plant-a")), operator="dev")
    await scoped.send(
        "deploy", req("d2", manifest={**pinned("plant-b"), "name": "db"}), operator="ops"
    )
    assert scoped.changes == [True, True]
    await scoped.send("apps", req("l1", "cam/l1"), operator="cam")
    assert [row["app"] for row in scoped.reply()["result"]["apps"]] == ["web"]
