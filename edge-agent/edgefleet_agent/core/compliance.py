"""The agent's compliance report, decided purely from what the agent holds and observes.

Who calls it: the agent service after every converge pass and every refused document; it
publishes the report (retained) when anything but the timestamp changed. Drift is what
runs that the held document does not name (a container someone started with the agent's
labels, a workload the runtime would not remove); violations are the rules of the local
policy the held document breaks (a policy tightened after the document was accepted).
"""

from __future__ import annotations

from collections.abc import Iterable

from edgefleet_protocol import ComplianceReport, Desired
from edgefleet_protocol.compliance import MAX_LISTED, Refusal
from edgefleet_protocol.policy import CompliancePolicy, document_violations, policy_hash


def compliance_report(
    *,
    node: str,
    site: str,
    region: str | None,
    agent_version: str,
    policy: CompliancePolicy | None,
    key_id: str | None,
    signed: bool,
    held: Desired | None,
    running: Iterable[str],
    last_refusal: Refusal | None,
    now: float,
) -> ComplianceReport:
    desired = {w.name for w in held.workloads} if held is not None else set()
    drift = sorted(f"{name}: running but not desired" for name in set(running) - desired)
    violations: list[str] = []
    if policy is not None and held is not None:
        workloads = ((w.name, w.spec) for w in held.workloads)
        violations = document_violations(workloads, policy, region=region)
    return ComplianceReport(
        node=node,
        site=site,
        ts=now,
        agent_version=agent_version,
        policy_hash=policy_hash(policy) if policy is not None else None,
        signed=signed,
        key_id=key_id,
        generation=held.generation if held is not None else None,
        violations=violations[:MAX_LISTED],
        drift=drift[:MAX_LISTED],
        last_refusal=last_refusal,
        compliant=not violations and not drift,
    )
