"""docs/protocol.md, Roles and scope, and Compliance policies, against a real orchestrator
started with a roles file and a policy file: a verb beyond an operator's role is
``forbidden`` and runs nothing; a deploy the policy refuses is ``policy_violation`` listing
every broken rule, and nothing is stored."""

from __future__ import annotations

from pathlib import Path

from conformance_pins import pins
from conftest import Fleet

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
