"""Compliance decisions, pure: the agent's report (drift, violations of a tightened local
policy) and the orchestrator's count (the agent's word plus generations it never issued)."""

from __future__ import annotations

from edgefleet_agent.core.compliance import compliance_report
from edgefleet_orchestrator.fleet.records import NodeRecord
from edgefleet_orchestrator.reconcile.compliance import noncompliance
from edgefleet_orchestrator.reconcile.status import fleet_summary
from edgefleet_protocol import ComplianceReport, Desired, DesiredWorkload, Reported, WorkloadSpec
from edgefleet_protocol.policy import load_policy, policy_hash


def held(*names: str, **spec: object) -> Desired:
    spec_model = WorkloadSpec.model_validate({"runtime": "docker", "image": "busybox", **spec})
    workloads = [
        DesiredWorkload(name=n, app="a", spec=spec_model, spec_hash="sha256:1") for n in names
    ]
    return Desired(node="n1", site="s1", generation=4, issued_at=1.0, workloads=workloads)


def report(**kw: object) -> ComplianceReport:
    args: dict[str, object] = dict(node="n1", site="s1", region="eu", agent_version="9",
                                   policy=None, key_id=None, signed=False, held=held("w"),
                                   running=["w"], last_refusal=None, now=5.0)  # fmt: skip
    args.update(kw)
    return compliance_report(**args)  # type: ignore[arg-type]


def test_a_node_running_exactly_its_document_is_compliant() -> None:
    r = report()
    assert (r.compliant, r.drift, r.violations, r.generation, r.policy_hash) == (
        True, [], [], 4, None,
    )  # fmt: skip


def test_a_workload_running_but_not_desired_is_drift() -> None:
    r = report(running=["w", "stray"])
    assert r.drift == ["stray: running but not desired"]
    assert not r.compliant


def test_a_policy_tightened_after_acceptance_shows_as_violations() -> None:
    policy = load_policy("allow: {privileged: false}")
    r = report(held=held("w", privileged=True), policy=policy)
    assert r.violations == ["w: allow.privileged: privileged containers are forbidden"]
    assert r.policy_hash == policy_hash(policy)
    assert not r.compliant


def test_the_orchestrator_counts_the_agents_word_and_generations_it_never_issued() -> None:
    bad_report = report(running=["w", "stray"])
    nodes = {
        "n1": NodeRecord(node="n1", site="s1", compliance=bad_report),
        "n2": NodeRecord(node="n2", site="s1",
                         reported=Reported(node="n2", observed_generation=7, session=1, ts=1.0)),
        "n3": NodeRecord(node="n3", site="s1", compliance=report(),
                         reported=Reported(node="n3", observed_generation=3, session=1, ts=1.0)),
    }  # fmt: skip
    found = noncompliance(nodes, {"n2": 6, "n3": 3})
    assert found == {
        "n1": ["stray: running but not desired"],
        "n2": ["observed generation 7 is above any issued (6)"],
    }
    summary = fleet_summary(nodes, {}, now=1.0, noncompliant=found)
    assert summary.nodes_noncompliant == 2
    assert summary.noncompliant == found
