"""``edgefleet compliance``: every node's compliance report and the fleet's count, read
from the retained ``nodes/+/+/compliance`` topics and the fleet summary alone (no command
round trip), so it works while the orchestrator is away."""

from __future__ import annotations

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.compliance_views import compliance_view, rows
from edgefleet_cli.options import (
    BrokerOpt,
    Common,
    ConfigOpt,
    Output,
    OutputOpt,
    RootOpt,
    TimeoutOpt,
    UserOpt,
    execute,
    out,
    print_json,
)


def compliance(
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Which nodes are compliant: policy, agent version, trust, violations and drift."""
    common = Common(broker, root, user, timeout, config, output)

    async def work() -> None:
        settings = common.settings()
        follow = [f"{settings.root}/nodes/+/+/compliance", f"{settings.root}/fleet/summary"]
        async with OperatorClient(settings, follow=follow) as client:
            await client.settle(max_s=min(settings.timeout_s, 3.0))
            summary = client.snapshot.summary
            data = rows(client.snapshot.compliance, summary)
            if common.output is Output.json:
                count = summary.nodes_noncompliant if summary is not None else None
                print_json({"nodes": data, "nodes_noncompliant": count})
            else:
                out().print(compliance_view(data, summary))

    execute(work)
