"""docs/protocol.md, Orchestrator status, Node status and the restart rules, against the
real processes: the orchestrator's and the agent's wills, republishing stored desired
documents on start, the agents' hello to a new orchestrator, the session rule, a retained
command replayed on (re)subscribe, and the ``internal`` error code."""

from __future__ import annotations

import sqlite3
import threading
import uuid

from conformance_pins import pins
from conftest import NODES, USER, Fleet
from harness.observer import retained_now


@pins("Orchestrator status", topics=("orchestrator-status",))
def test_the_orchestrator_status_is_online_retained_with_since_and_version(
    fleet: Fleet,
) -> None:
    (status,) = retained_now(fleet.url, fleet.orch_status)
    assert status.qos == 1
    body = status.json()
    assert (body["v"], body["state"]) == (1, "online")
    assert body["since"] > 0 and body["version"]


@pins("Services", topics=("services",))
def test_a_service_lists_running_replicas_retained_and_is_cleared_with_its_app(
    fleet: Fleet, mark: int
) -> None:
    manifest = {"name": "api", "replicas": 2, "workload": {"runtime": "simulated"},
                "placement": {"max_per_node": 1},
                "service": {"ports": [{"name": "http", "port": 8080}]}}  # fmt: skip
    assert fleet.call("deploy", manifest=manifest)["ok"]
    topic = fleet.topics.service("api")
    seen = fleet.obs.expect_json(topic, lambda b: len(b["endpoints"]) == 2, after=mark)
    assert (seen.retain, seen.qos) == (True, 1)
    body = seen.json()
    assert body["app"] == "api"
    assert {e["node"] for e in body["endpoints"]} == set(NODES)
    assert all(e["port"] == 8080 and e["address"] == "127.0.0.1" for e in body["endpoints"])
    assert fleet.call("delete", app="api")["ok"]
    empty = fleet.obs.expect_json(topic, lambda b: b["endpoints"] == [], after=mark)
    cleared = fleet.obs.expect(lambda s: s.topic == topic and s.payload == b"", after=mark)
    assert empty.at <= cleared.at and cleared.retain
    assert retained_now(fleet.url, topic) == []


@pins("Orchestrator status", topics=("orchestrator-status", "desired"))
def test_a_killed_orchestrator_s_will_says_offline_and_a_restart_republishes_documents(
    fleet: Fleet, mark: int
) -> None:
    manifest = {"name": "keep", "replicas": 2, "workload": {"runtime": "simulated"},
                "placement": {"max_per_node": 1}}  # fmt: skip
    assert fleet.call("deploy", manifest=manifest)["ok"]
    docs = {
        node: fleet.obs.expect_json(
            fleet.node(node, "desired"), lambda b: len(b["workloads"]) == 1, after=mark
        ).json()
        for node in NODES
    }
    online = retained_now(fleet.url, fleet.orch_status)[0].json()
    before_kill = fleet.obs.mark()
    fleet.orch.kill9()
    will = fleet.obs.expect_json(
        fleet.orch_status, lambda b: b["state"] == "offline", after=before_kill
    )
    assert will.retain and will.json()["since"] == online["since"]
    # Agents keep running their last desired state while the orchestrator is away.
    # A retained command left on the broker meanwhile is replayed to the restarted
    # orchestrator when it subscribes: it must never run.
    request = f"stale-{uuid.uuid4().hex[:6]}"
    fleet.send("apps", {"v": 1, "request_id": request, "reply_to": fleet.reply_topic(request)},
               retain=True)  # fmt: skip
    before_start = fleet.obs.mark()
    fleet.orch.start()
    back = fleet.obs.expect_json(
        fleet.orch_status, lambda b: b["state"] == "online", after=before_start
    ).json()
    assert back["since"] > online["since"]
    # "On start, the orchestrator also republishes every node's last desired document
    # from its own store (same generation)".
    for node, doc in docs.items():
        again = fleet.obs.expect_json(
            fleet.node(node, "desired"),
            lambda b, g=doc["generation"]: b["generation"] == g,
            after=before_start,
        )
        assert again.retain
        assert again.json()["workloads"] == doc["workloads"]
    rejected = fleet.obs.expect_json(
        fleet.orch_events,
        lambda b: b["kind"] == "message-rejected" and "retained" in b["details"]["reason"],
        after=before_start,
    )
    assert rejected.json()["details"]["topic"] == fleet.topics.command("apps", USER)
    fleet.send("apps", b"", retain=True)
    assert fleet.call("apps")["ok"]  # a later command: the replayed one was handled before
    assert not [s for s in fleet.obs.since(before_start) if s.topic == fleet.reply_topic(request)]


@pins("Orchestrator status", topics=("status", "telemetry"))
def test_agents_say_hello_to_a_new_orchestrator_within_about_a_second(
    fleet: Fleet,
) -> None:
    # The restart above published a new `since`: each agent answered with a live online
    # status and a full telemetry message (not waiting a heartbeat of 3 s... or 60 s).
    online = [
        s for s in fleet.obs.seen(fleet.orch_status) if s.payload and s.json()["state"] == "online"
    ]
    # The first `online` of the restarted run: it says `online` again (same `since`) when it
    # finds its predecessor's will retained, and that repeat can come after the hellos on a
    # loaded machine; agents rightly do not greet the same `since` twice.
    since = online[-1].json()["since"]
    restarted = next(s for s in online if s.json()["since"] == since)
    for node in NODES:
        status = fleet.obs.expect(
            lambda s, n=node: (
                s.topic == fleet.node(n, "status")
                and s.at > restarted.at
                and s.json()["state"] == "online"
            ),
            what=f"{node}'s hello",
        )
        assert status.at - restarted.at < 5.0  # "within about a second"; loaded-CI margin


@pins("Node status", topics=("status",))
def test_a_killed_agent_s_will_carries_its_session_and_a_restart_raises_it(
    fleet: Fleet, mark: int
) -> None:
    node = NODES[1]
    topic = fleet.node(node, "status")
    (current,) = retained_now(fleet.url, topic)
    session = current.json()["session"]
    fleet.agents[node].kill9()
    will = fleet.obs.expect_json(topic, lambda b: b["state"] == "offline", after=mark, timeout_s=30)
    assert will.retain and will.json()["session"] == session
    fleet.agents[node].start()
    back = fleet.obs.expect_json(topic, lambda b: b["state"] == "online", after=mark)
    assert back.json()["session"] == session + 1
    summary = fleet.obs.expect_json(
        fleet.topics.fleet_summary(), lambda b: b["nodes_online"] == len(NODES), after=mark
    )
    assert summary.retain


@pins("Replies", codes=("internal",))
def test_a_store_failure_is_internal_and_a_retry_with_the_same_request_id_runs_it(
    fleet: Fleet, mark: int
) -> None:
    # "internal: the orchestrator failed; retry with the same request_id". Another process
    # holds the store's write lock longer than the orchestrator's 5 s busy timeout.
    db = next((fleet.orch_data / "").glob("*.db"))
    locker = sqlite3.connect(db, isolation_level=None, timeout=30, check_same_thread=False)
    locker.execute("BEGIN IMMEDIATE")
    released = threading.Timer(6.5, locker.execute, args=("ROLLBACK",))
    released.start()
    request = f"int-{uuid.uuid4().hex[:6]}"
    manifest = {"name": "late", "replicas": 1, "workload": {"runtime": "simulated"}}
    try:
        reply = fleet.call("deploy", request_id=request, manifest=manifest)
    finally:
        released.join()
        locker.close()
    assert (reply["ok"], reply["error"]["code"]) == (False, "internal")
    retry = fleet.call("deploy", request_id=request, manifest=manifest)
    assert retry["ok"], retry
    assert fleet.call("delete", app="late")["ok"]
