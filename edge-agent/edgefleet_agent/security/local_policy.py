"""The gateway's own compliance policy over a desired document: refuse it as a whole.

Who calls it: the agent's desired intake, for a document admission would accept (a
higher generation, verified when a trust anchor is configured). The policy file is local to
the gateway and the orchestrator cannot change it, so a correctly signed document that asks
for a privileged container or a command the owner did not allow is still refused: the
event lists every broken rule, and the gateway keeps running what it ran.
"""

from __future__ import annotations

from edgefleet_protocol import Desired
from edgefleet_protocol.policy import CompliancePolicy, document_violations

from edgefleet_agent.core.admission import Reject

MAX_REASON = 3500


def local_policy_verdict(
    desired: Desired, policy: CompliancePolicy, *, region: str | None
) -> Reject | None:
    """``Reject("policy", ...)`` naming every broken rule, or ``None`` when compliant."""
    broken = document_violations(
        ((w.name, w.spec) for w in desired.workloads), policy, region=region
    )
    if not broken:
        return None
    reason = (
        f"generation {desired.generation} breaks this gateway's policy"
        f" ({len(broken)} rule(s)): {'; '.join(broken)}"
    )
    return Reject("policy", reason[:MAX_REASON])
