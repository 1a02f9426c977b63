"""Which nodes are not compliant, and why: each agent's own report plus what only the
orchestrator can see — a node observing a generation above any it issued (a forged or
replayed document was applied somewhere, or the node is fed by another orchestrator).

Pure. Called by the status board for the fleet summary (``nodes_noncompliant`` and the
reasons of up to :data:`MAX_LISTED` nodes).
"""

from __future__ import annotations

from collections.abc import Mapping

from edgefleet_orchestrator.fleet.records import NodeRecord

MAX_LISTED = 100
MAX_REASONS = 8


def noncompliance(
    nodes: Mapping[str, NodeRecord], issued: Mapping[str, int]
) -> dict[str, list[str]]:
    """node -> reasons, for every node that is not compliant (sorted by node)."""
    found: dict[str, list[str]] = {}
    for name in sorted(nodes):
        record = nodes[name]
        reasons: list[str] = []
        report = record.compliance
        if report is not None and not report.compliant:
            reasons += [*report.violations, *report.drift] or ["the agent reports non-compliance"]
        reported = record.reported
        top = issued.get(name, 0)
        if reported is not None and reported.observed_generation > top:
            reasons.append(
                f"observed generation {reported.observed_generation} is above any issued ({top})"
            )
        if reasons:
            found[name] = reasons[:MAX_REASONS]
    return found
