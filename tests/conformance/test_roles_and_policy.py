"""docs/protocol.md, Roles and scope, and Compliance policies, against a real orchestrator
started with a roles file and a policy file: a verb beyond an operator's role is
``forbidden`` and runs nothing; a deploy the policy refuses is ``policy_violation`` listing
every broken rule, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

from conformance_pins import pins
from conftest import NODES, Fleet

ROLES = """operators:
  alice: admin
  vic: viewer
"""
POLICY = """resources: {max_cpu: 1, max_memory_mb: 512}
"""


def orchestrator_args(work: Path) -> list[str]:
    (work / "roles.yaml").write_text(ROLES)
    (work / "policy.yaml").write_text(POLICY)
    return ["--roles", str(work / "roles.yaml"), "--policy", str(work / "policy.yaml")]


def manifest(name: str, cpu: float, memory_mb: int = 64) -> dict[str, object]:
    return {"name": name, "replicas": 1, "workload": {
        "runtime": "simulated", "resources": {"cpu": cpu, "memory_mb": memory_mb}}}  # fmt: skip


@pins("Roles and scope", codes=("forbidden",))
def test_a_verb_beyond_the_operator_s_role_is_forbidden_and_runs_nothing(
    fleet: Fleet, mark: int
) -> None:
    reply = fleet.call("deploy", operator="vic", manifest=manifest("vics", 0.1))
    assert (reply["ok"], reply["error"]["code"]) == (False, "forbidden")
    assert reply["error"]["details"]
    assert fleet.call("apps", operator="vic")["ok"]  # a viewer reads
    assert fleet.call("app", app="vics")["error"]["code"] == "not_found"  # nothing ran
    nobody = fleet.call("apps", operator="mallory")  # not in the file: no role
    assert nobody["error"]["code"] == "forbidden"
    audit = fleet.obs.expect_json(
        fleet.orch_events,
        lambda b: (
            b["kind"] == "command"
            and b["details"]["operator"] == "vic"
            and b["details"]["verb"] == "deploy"
        ),
        after=mark,
    ).json()
    assert audit["details"]["result"] == "forbidden"


@pins("Compliance policies", codes=("policy_violation",))
def test_a_deploy_the_policy_refuses_lists_every_broken_rule_and_stores_nothing(
    fleet: Fleet,
) -> None:
    reply = fleet.call("deploy", manifest=manifest("greedy", 2.0, 1024))
    assert (reply["ok"], reply["error"]["code"]) == (False, "policy_violation")
    violations = reply["error"]["details"]["violations"]
    assert len(violations) == 2, violations
    assert fleet.call("app", app="greedy")["error"]["code"] == "not_found"
    assert fleet.call("deploy", manifest=manifest("modest", 0.5))["ok"]
    assert fleet.call("delete", app="modest")["ok"]


@pins("Document size", codes=("too_large",))
def test_a_deploy_whose_node_document_would_be_too_large_is_refused(fleet: Fleet) -> None:
    # 4 replicas on 2 nodes with 150 KB of env each: each node's document would be about
    # 300 KB, over the agents' 256 KiB limit, while the command itself stays under it.
    big = {"name": "huge", "replicas": 4, "workload": {
        "runtime": "simulated", "resources": {"cpu": 0.1, "memory_mb": 32},
        "env": {"BLOB": "x" * 150_000}}}  # fmt: skip
    reply = fleet.call("deploy", manifest=big)
    assert (reply["ok"], reply["error"]["code"]) == (False, "too_large")
    assert {"node", "bytes", "limit"} <= set(reply["error"]["details"])
    assert fleet.call("app", app="huge")["error"]["code"] == "not_found"  # nothing changed


def _barrier(fleet: Fleet, mark: int) -> None:
    """Another command answered and audited after the plan's: anything the plan had set
    off (a pass, a retained publish) would have gone out on the same loop by then."""
    reply = fleet.call("apps")
    fleet.audit(reply["request_id"], after=mark)


@pins("Plans", topics=("commands", "replies", "desired", "app-status", "app-rollout"))
def test_a_plan_answers_what_a_deploy_would_do_and_changes_nothing(fleet: Fleet, mark: int) -> None:
    base = manifest("planned", 0.1)
    assert fleet.call("deploy", manifest=base)["result"]["revision"] == 1
    fleet.obs.expect_json(
        fleet.topics.app_status("planned"),
        lambda b: b["state"] == "healthy" and b["running"] == 1,
        after=mark,
    )
    changed = {**base, "replicas": 2,
               "workload": {**base["workload"], "env": {"LEVEL": "2"}}}  # type: ignore[dict-item]  # fmt: skip
    before = fleet.obs.mark()
    reply = fleet.call("plan", manifest=changed)
    assert reply["ok"], reply
    plan = reply["result"]
    assert (plan["app"], plan["action"], plan["desired"]) == ("planned", "update", 2)
    assert plan["changes"] == [
        {"path": "replicas", "from": 1, "to": 2},
        {"path": "workload.env.LEVEL", "to": "2"},
    ]
    assert (plan["revision"], plan["from_revision"], plan["rollout"]) == (2, 1, "progressing")
    changes = sorted(r["change"] for r in plan["replicas"])
    assert changes == ["kept", "placed"] and plan["unplaced"] == []
    assert {r["node"] for r in plan["replicas"]} <= set(NODES)
    _barrier(fleet, before)
    stored = fleet.call("app", app="planned")["result"]["manifest"]
    assert stored["replicas"] == 1 and not stored["workload"].get("env")
    history = fleet.call("rollout-history", app="planned")["result"]
    assert [r["revision"] for r in history["revisions"]] == [1]
    quiet = ("/desired", "/apps/planned/status", "/apps/planned/rollout")
    assert [s.topic for s in fleet.obs.since(before) if s.topic.endswith(quiet)] == []
    # The same manifest again: unchanged, nothing would start.
    same = fleet.call("plan", manifest=base)["result"]
    assert (same["action"], same["changes"], same["revision"], same["rollout"]) == (
        "unchanged", [], None, None)  # fmt: skip
    # The deploy it previewed does what the plan said.
    done = fleet.call("deploy", manifest=changed)["result"]
    assert (done["action"], done["revision"], done["rollout"]) == ("updated", 2, "progressing")
    assert fleet.call("delete", app="planned")["ok"]


@pins("Plans", codes=("forbidden", "policy_violation", "too_large", "bad_request"))
def test_a_plan_is_refused_as_its_deploy_would_be_and_a_new_app_stays_unstored(
    fleet: Fleet,
) -> None:
    assert fleet.call("plan", operator="vic", manifest=manifest("v", 0.1))["error"]["code"] == (
        "forbidden"
    )
    assert fleet.call("plan", manifest=manifest("greedy", 2.0, 1024))["error"]["code"] == (
        "policy_violation"
    )
    big = {"name": "huge", "replicas": 4, "workload": {
        "runtime": "simulated", "resources": {"cpu": 0.1, "memory_mb": 32},
        "env": {"BLOB": "x" * 150_000}}}  # fmt: skip
    assert fleet.call("plan", manifest=big)["error"]["code"] == "too_large"
    typo = {**manifest("typo", 0.1), "replicaz": 2}
    bad = fleet.call("plan", manifest=typo)["error"]
    assert (bad["code"], bad["details"]["field"]) == ("bad_request", "manifest.replicaz")
    fresh = fleet.call("plan", manifest=manifest("fresh", 0.1))["result"]
    assert (fresh["action"], fresh["revision"], fresh["rollout"]) == ("create", 1, None)
    assert {c["path"] for c in fresh["changes"]} >= {"name", "replicas", "workload.runtime"}
    assert len(fresh["replicas"]) == 1 and fresh["replicas"][0]["change"] == "placed"
    assert fleet.call("app", app="fresh")["error"]["code"] == "not_found"


@pins("Recent events", topics=("orchestrator-events", "replies"), codes=("bad_request",))
def test_events_answers_the_newest_published_events_in_the_operator_s_scope(
    fleet: Fleet, mark: int
) -> None:
    asked = fleet.call("apps")
    published = fleet.audit(asked["request_id"], after=mark)
    newest = fleet.call("events", kind="command", limit=1)["result"]["events"]
    assert newest == [published]  # exactly as it went out on orchestrator/events
    everything = fleet.call("events", limit=200)["result"]["events"]
    assert published in everything and len(everything) > 1
    assert [e["ts"] for e in everything] == sorted(e["ts"] for e in everything)
    # A viewer sees its own command events only (as with audit).
    fleet.audit(fleet.call("apps", operator="vic")["request_id"], after=mark)
    theirs = fleet.call("events", operator="vic", kind="command")["result"]["events"]
    assert theirs and {e["details"]["operator"] for e in theirs} == {"vic"}
    refused = fleet.call("events", limit=0)["error"]
    assert (refused["code"], refused["details"]["field"]) == ("bad_request", "limit")
