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


def agents_word(**kw: object) -> ComplianceReport:
    fields: dict[str, object] = dict(node="n1", site="s1", ts=1.0, agent_version="9",
                                     compliant=False)  # fmt: skip
    fields.update(kw)
    return ComplianceReport.model_validate(fields)


def test_a_node_never_issued_a_document_that_observes_one_is_noncompliant() -> None:
    seen = Reported(node="n1", observed_generation=1, session=1, ts=1.0)
    nodes = {"n1": NodeRecord(node="n1", site="s1", reported=seen)}
    assert noncompliance(nodes, {}) == {"n1": ["observed generation 1 is above any issued (0)"]}
    assert noncompliance(nodes, {"n1": 1}) == {}


def test_an_agent_saying_noncompliant_without_reasons_still_counts() -> None:
    nodes = {"n1": NodeRecord(node="n1", site="s1", compliance=agents_word())}
    assert noncompliance(nodes, {}) == {"n1": ["the agent reports non-compliance"]}


def test_reasons_are_capped_at_eight_violations_first_and_nodes_sorted() -> None:
    word = agents_word(violations=["v1", "v2"], drift=[f"d{i}" for i in range(10)])
    nodes = {
        "z": NodeRecord(node="z", site="s1", compliance=word),
        "a": NodeRecord(node="a", site="s1", compliance=agents_word(violations=["only"])),
    }
    found = noncompliance(nodes, {})
    assert list(found) == ["a", "z"]
    assert found["z"] == ["v1", "v2", "d0", "d1", "d2", "d3", "d4", "d5"]
    assert found["a"] == ["only"]


def test_the_summary_lists_the_reasons_of_at_most_100_nodes_and_counts_them_all() -> None:
    found = {f"n{i:03}": ["the agent reports non-compliance"] for i in range(101)}
    summary = fleet_summary({}, {}, now=1.0, noncompliant=found)
    assert summary.nodes_noncompliant == 101
    assert list(summary.noncompliant) == [f"n{i:03}" for i in range(100)]
