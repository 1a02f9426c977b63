"""docs/protocol.md, node topics and desired state, against the real agent and
orchestrator processes: who publishes each topic, retained or not, at which QoS, the
generation rule and the agent's answers to stale documents."""

from __future__ import annotations

import json
import uuid

from conformance_pins import pins
from conftest import NODES, SITE, Fleet
from edgefleet_protocol import TopicKind, decode_for_kind
from harness.observer import Seen, retained_now


def last(fleet: Fleet, topic: str) -> Seen:
    found = [s for s in fleet.obs.seen(topic) if s.payload]
    assert found, f"nothing seen on {topic}"
    return found[-1]


def settled(fleet: Fleet, node: str) -> dict[str, object]:
    """The node's desired document once its agent reports having applied it, and no newer
    one arrived meanwhile (tests before this one may still be moving replicas)."""
    topic = fleet.node(node, "desired")
    while True:
        current = last(fleet, topic).json()
        generation = current["generation"]
        fleet.obs.expect_json(
            fleet.node(node, "reported"),
            lambda b, g=generation: b["observed_generation"] == g,
        )
        if last(fleet, topic).json()["generation"] == generation:
            return current  # type: ignore[no-any-return]


@pins("Node status", topics=("status",))
def test_an_agent_publishes_its_status_online_retained_at_qos_1(fleet: Fleet) -> None:
    for node in NODES:
        seen = fleet.obs.expect_json(fleet.node(node, "status"), lambda b: b["state"] == "online")
        assert (seen.retain, seen.qos) == (True, 1)
        body = seen.json()
        assert (body["v"], body["node"], body["site"]) == (1, node, SITE)
        assert body["session"] >= 1


@pins("Node capabilities", topics=("capabilities",))
def test_an_agent_publishes_its_capabilities_retained_at_qos_1(fleet: Fleet) -> None:
    for node in NODES:
        seen = fleet.obs.expect_json(fleet.node(node, "capabilities"))
        assert (seen.retain, seen.qos) == (True, 1)
        caps = decode_for_kind(TopicKind.NODE_CAPABILITIES, seen.payload)
        assert caps.model_dump()["node"] == node


@pins("Node compliance report", topics=("compliance",))
def test_an_agent_publishes_its_compliance_report_retained_at_qos_1(fleet: Fleet) -> None:
    for node in NODES:
        seen = fleet.obs.expect_json(fleet.node(node, "compliance"))
        assert (seen.retain, seen.qos) == (True, 1)
        report = decode_for_kind(TopicKind.NODE_COMPLIANCE, seen.payload).model_dump()
        assert (report["node"], report["site"]) == (node, SITE)
        assert report["compliant"] == (not report["violations"] and not report["drift"])
        assert report["agent_version"]


@pins("Node telemetry", topics=("telemetry",))
def test_telemetry_is_not_retained_and_qos_0_with_a_full_heartbeat(fleet: Fleet) -> None:
    node = NODES[0]
    seen = fleet.obs.expect_json(
        fleet.node(node, "telemetry"), lambda b: b.get("full") is True, timeout_s=30
    )
    assert (seen.retain, seen.qos) == (False, 0)
    assert retained_now(fleet.url, fleet.node(node, "telemetry")) == []


@pins("Node desired state", topics=("desired", "reported", "node-events", "app-status"))
def test_deploy_publishes_retained_desired_documents_and_agents_report_them(
    fleet: Fleet, mark: int
) -> None:
    manifest = {"name": "web", "replicas": 2, "workload": {"runtime": "simulated"},
                "placement": {"max_per_node": 1}}  # fmt: skip
    assert fleet.call("deploy", manifest=manifest)["ok"]
    for node in NODES:
        desired = fleet.obs.expect_json(
            fleet.node(node, "desired"), lambda b: len(b["workloads"]) == 1, after=mark
        )
        assert (desired.retain, desired.qos) == (True, 1)
        generation = desired.json()["generation"]
        reported = fleet.obs.expect_json(
            fleet.node(node, "reported"),
            lambda b, g=generation: (
                b["observed_generation"] == g
                and all(w["state"] == "running" for w in b["workloads"].values())
                and len(b["workloads"]) == 1
            ),
            after=mark,
        )
        assert (reported.retain, reported.qos) == (True, 1)
        status = last(fleet, fleet.node(node, "status")).json()
        assert reported.json()["session"] == status["session"]
        accepted = fleet.obs.expect_json(
            fleet.node(node, "events"),
            lambda b, g=generation: (
                b["kind"] == "desired-accepted" and b["details"]["generation"] == g
            ),
            after=mark,
        )
        assert (accepted.retain, accepted.qos) == (False, 1)
    app = fleet.obs.expect_json(
        fleet.topics.app_status("web"), lambda b: b["state"] == "healthy", after=mark
    )
    assert (app.retain, app.qos) == (True, 1)
    assert app.json()["running"] == 2


@pins("Node desired state", topics=("desired",))
def test_a_node_generation_rises_by_exactly_one_per_changed_document(
    fleet: Fleet, mark: int
) -> None:
    # Generation rule: "rises by exactly one each time the orchestrator changes a node's
    # document (and only then)". Scale web 2 -> 0 -> 2 (max 1 per node): two changes.
    node = NODES[0]
    topic = fleet.node(node, "desired")
    before = last(fleet, topic).json()["generation"]
    for count, per_node in ((0, 0), (2, 1)):
        assert fleet.call("scale", app="web", replicas=count)["ok"]
        fleet.obs.expect_json(topic, lambda b, n=per_node: len(b["workloads"]) == n, after=mark)
    generations = [s.json()["generation"] for s in fleet.obs.since(mark) if s.topic == topic]
    assert generations == [before + 1, before + 2], generations


@pins("Node desired state", topics=("desired", "node-events"))
def test_an_agent_ignores_a_lower_generation_with_a_desired_stale_event(
    fleet: Fleet, mark: int
) -> None:
    node = NODES[1]
    topic = fleet.node(node, "desired")
    current = settled(fleet, node)
    stale = {**current, "generation": current["generation"] - 1, "workloads": []}
    # Not retained: the orchestrator's retained document stays the truth for the node.
    fleet.obs.publish(topic, json.dumps(stale), retain=False)
    event = fleet.obs.expect_json(
        fleet.node(node, "events"), lambda b: b["kind"] == "desired-stale", after=mark
    ).json()
    assert event["details"] == {"generation": stale["generation"], "current": current["generation"]}
    assert event["level"] == "warning"
    # Equal generation: a no-op, no event at all; the workloads still run.
    fleet.obs.publish(topic, json.dumps(current), retain=False)
    reported = fleet.obs.expect_json(
        fleet.node(node, "reported"),
        lambda b: b["observed_generation"] == current["generation"],
    ).json()
    assert len(reported["workloads"]) == len(current["workloads"])
    assert (
        last(fleet, fleet.node(node, "reported")).json()["observed_generation"]
        == (current["generation"])
    )


@pins("App status", topics=("app-status", "fleet-summary"))
def test_a_deleted_app_publishes_deleted_then_clears_its_retained_status(
    fleet: Fleet, mark: int
) -> None:
    topic = fleet.topics.app_status("web")
    assert fleet.call("delete", app="web")["ok"]
    deleted = fleet.obs.expect_json(topic, lambda b: b["state"] == "deleted", after=mark)
    cleared = fleet.obs.expect(
        lambda s: s.topic == topic and s.payload == b"", after=mark, what="the clear"
    )
    assert deleted.retain and cleared.retain
    assert deleted.at <= cleared.at
    assert retained_now(fleet.url, topic) == []
    for node in NODES:
        fleet.obs.expect_json(
            fleet.node(node, "desired"), lambda b: b["workloads"] == [], after=mark
        )
    summary = fleet.obs.expect_json(
        fleet.topics.fleet_summary(), lambda b: b["apps_total"] == 0, after=mark
    )
    assert (summary.retain, summary.qos) == (True, 1)
    assert summary.json()["nodes_online"] == len(NODES)


@pins("Logs on demand", topics=("logs", "logs-replies"))
def test_the_agent_answers_a_logs_request_on_its_reply_topic_at_once(
    fleet: Fleet, mark: int
) -> None:
    node = NODES[0]
    request = f"logs-{uuid.uuid4().hex[:6]}"
    reply_to = f"{fleet.root}/replies/alice/logs/{SITE}/{node}/{request}"
    body = {"v": 1, "request_id": request, "reply_to": reply_to, "workload": "ghost-0"}
    # A retained request the broker replays when the agent (re)subscribes is ignored.
    fleet.agents[node].terminate()
    fleet.obs.publish(fleet.node(node, "logs"), json.dumps({**body, "request_id": "kept"}),
                      retain=True)  # fmt: skip
    restarted = fleet.obs.mark()
    fleet.agents[node].start()
    fleet.obs.expect_json(fleet.node(node, "status"), lambda b: b["state"] == "online",
                          after=restarted)  # fmt: skip
    fleet.obs.publish(fleet.node(node, "logs"), b"", retain=True)
    # The live one is answered with one chunk, at once.
    fleet.obs.publish(fleet.node(node, "logs"), json.dumps(body))
    chunk = fleet.obs.expect(lambda s: s.topic == reply_to, after=mark, what="the chunk")
    assert (chunk.retain, chunk.qos) == (False, 1)
    answer = chunk.json()
    assert (answer["request_id"], answer["node"], answer["seq"], answer["done"]) == (
        request, node, 0, True)  # fmt: skip
    assert (answer["end"], answer["error"]["code"]) == ("error", "not_found")
    # Elsewhere than the node's own logs subtree: dropped, nowhere to answer.
    wrong = f"{fleet.root}/replies/alice/logs/{SITE}/{NODES[1]}/{request}-x"
    fleet.obs.publish(fleet.node(node, "logs"), json.dumps({**body, "reply_to": wrong}))
    fleet.obs.publish(fleet.node(node, "logs"), json.dumps({**body, "request_id": "probe"}))
    fleet.obs.expect_json(reply_to, lambda b: b["request_id"] == "probe", after=mark)
    assert not [s for s in fleet.obs.since(mark) if s.topic == wrong]
    assert not [s for s in fleet.obs.since(mark) if s.payload and s.topic == reply_to
                and s.json()["request_id"] == "kept"]  # fmt: skip


@pins("Rollouts", topics=("app-rollout", "desired"))
def test_a_changed_workload_rolls_out_with_its_status_retained_and_cleared_with_its_app(
    fleet: Fleet, mark: int
) -> None:
    def manifest(version: str) -> dict[str, object]:
        return {"name": "roll", "replicas": 2, "placement": {"max_per_node": 1},
                "workload": {"runtime": "simulated", "env": {"VERSION": version}},
                "update": {"max_parallel": 1, "min_healthy_s": 1, "auto_revert": True,
                           "healthy_deadline_s": 20}}  # fmt: skip

    first = fleet.call("deploy", manifest=manifest("1"))
    assert first["ok"] and first["result"]["revision"] == 1
    topic = fleet.topics.app_rollout("roll")
    for node in NODES:
        fleet.obs.expect_json(fleet.node(node, "desired"), lambda b: len(b["workloads"]) == 1,
                              after=mark)  # fmt: skip
    second = fleet.call("deploy", manifest=manifest("2"))
    assert second["ok"] and second["result"]["revision"] == 2
    guarded = [
        fleet.obs.expect_json(
            fleet.node(node, "desired"),
            lambda b: any(w.get("rollout") for w in b["workloads"]),
            after=mark,
        ).json()
        for node in NODES
    ]
    for doc in guarded:
        (entry,) = doc["workloads"]
        assert entry["rollout"]["revision"] == 2
        assert entry["rollout"]["previous_spec"]["env"] == {"VERSION": "1"}
        assert entry["rollout"]["healthy_deadline_s"] == 20
    done = fleet.obs.expect_json(topic, lambda b: b["phase"] == "succeeded", after=mark)
    assert (done.retain, done.qos) == (True, 1)
    body = done.json()
    assert (body["revision"], body["from_revision"]) == (2, 1)
    counts = body["counts"]
    assert {k: counts[k] for k in ("total", "updated", "healthy", "failed")} == {
        "total": 2, "updated": 2, "healthy": 2, "failed": 0}  # fmt: skip
    assert counts["surged"] + counts["in_place"] == 2  # each replica updated one way, once
    phases = [s.json()["phase"] for s in fleet.obs.since(mark) if s.topic == topic and s.payload]
    assert "progressing" in phases
    assert fleet.call("delete", app="roll")["ok"]
    cleared = fleet.obs.expect(lambda s: s.topic == topic and s.payload == b"", after=mark)
    assert cleared.retain
    assert retained_now(fleet.url, topic) == []
