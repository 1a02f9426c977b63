"""How ``edgefleet compliance`` prints the fleet's compliance: every node's retained report
(``nodes/{site}/{node}/compliance``) joined with the fleet summary's non-compliant nodes
(which adds the orchestrator's own checks). No network I/O: values in, renderables out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edgefleet_protocol import ComplianceReport, FleetSummary
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from edgefleet_cli.views import cell

Key = tuple[str, str]


def reasons_of(report: ComplianceReport | None, summary_reasons: list[str]) -> list[str]:
    own = [*report.violations, *report.drift] if report is not None else []
    return own + [r for r in summary_reasons if r not in own]


def rows(
    reports: Mapping[Key, ComplianceReport], summary: FleetSummary | None
) -> list[dict[str, Any]]:
    """One row per node known from a report or from the summary, sorted by site and node."""
    flagged = summary.noncompliant if summary is not None else {}
    sites = {node: site for site, node in reports}
    keys = sorted(set(reports) | {(sites.get(n, "?"), n) for n in flagged})
    out = []
    for site, node in keys:
        report = reports.get((site, node))
        reasons = reasons_of(report, flagged.get(node, []))
        refusal = report.last_refusal if report is not None else None
        out.append({
            "site": site,
            "node": node,
            "compliant": not reasons and (report is None or report.compliant),
            "reported": report is not None,
            "policy_hash": report.policy_hash if report else None,
            "agent_version": report.agent_version if report else None,
            "signed": report.signed if report else None,
            "key_id": report.key_id if report else None,
            "generation": report.generation if report else None,
            "reasons": reasons,
            "last_refusal": refusal.model_dump(mode="json") if refusal else None,
        })  # fmt: skip
    return out


def compliance_view(data: list[dict[str, Any]], summary: FleetSummary | None) -> RenderableType:
    if not data:
        return Text("no compliance reports yet (agents publish one when they connect)")
    table = Table(title=None)
    for name in ("site", "node", "compliant", "policy", "agent", "trust", "gen", "why"):
        table.add_column(name, no_wrap=name in ("site", "node"))
    for row in data:
        trust = f"signed {row['key_id']}" if row["signed"] else "unsigned"
        why = "; ".join(row["reasons"])
        if row["last_refusal"]:
            refusal = row["last_refusal"]
            why = (why + "; " if why else "") + f"last refused: {refusal['field']}"
        table.add_row(
            cell(row["site"]), cell(row["node"]), "yes" if row["compliant"] else "NO",
            cell(row["policy_hash"] or "none"), cell(row["agent_version"] or "-"),
            trust if row["reported"] else "-", cell(str(row["generation"] or "-")), why or "-",
        )  # fmt: skip
    bad = summary.nodes_noncompliant if summary is not None else None
    own = sum(1 for r in data if not r["compliant"])
    line = f"{own} of {len(data)} node(s) not compliant"
    if bad is not None:
        line += f" (the orchestrator counts {bad})"
    return Group(table, Text(line))
