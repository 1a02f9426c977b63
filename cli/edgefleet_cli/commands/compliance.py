"""``edgefleet compliance``: every node's compliance report and the fleet's count, read
from the retained ``nodes/+/+/compliance`` topics and the fleet summary alone (no command
round trip), so it works while the orchestrator is away."""

from __future__ import annotations

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.compliance_views import compliance_view, rows
from edgefleet_cli.options import (
    Common,
    emit,
    execute,
    operator_command,
)


@operator_command
def compliance(common: Common) -> None:
    """Which nodes are compliant: policy, agent version, trust, violations and drift."""

    async def work() -> None:
        settings = common.settings()
        follow = [f"{settings.root}/nodes/+/+/compliance", f"{settings.root}/fleet/summary"]
        async with OperatorClient(settings, follow=follow) as client:
            await client.settle(max_s=min(settings.timeout_s, 3.0))
            summary = client.snapshot.summary
            data = rows(client.snapshot.compliance, summary)
            count = summary.nodes_noncompliant if summary is not None else None
            emit(common.output, {"nodes": data, "nodes_noncompliant": count},
                 lambda: compliance_view(data, summary))  # fmt: skip

    execute(work)
