"""``edgefleet nodes``, ``node``, ``cordon`` and ``uncordon``: reading nodes and taking
them out of scheduling. (``drain`` has its own module: it follows progress.)
"""

from __future__ import annotations

from typing import Annotated

import typer

from edgefleet_cli import views
from edgefleet_cli.listing import ListOutput, ListOutputOpt, SelectorOpt, listing
from edgefleet_cli.options import (
    BrokerOpt,
    Common,
    ConfigOpt,
    Output,
    OutputOpt,
    RootOpt,
    TimeoutOpt,
    UserOpt,
    simple,
)


def nodes(
    selector: SelectorOpt = None,
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: ListOutputOpt = ListOutput.table,
) -> None:
    """List the nodes the orchestrator knows (-l selects by label, -o wide shows more)."""
    common = Common(broker, root, user, timeout, config, Output.table)
    listing(common, "nodes", "nodes", selector=selector, output=output, view=views.nodes_view)


def node(
    name: Annotated[str, typer.Argument(help="The node's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """One node: capabilities, usage, and the workloads it reports."""
    common = Common(broker, root, user, timeout, config, output)
    simple(common, "node", {"node": name}, views.node_view)


def cordon(
    name: Annotated[str, typer.Argument(metavar="NODE", help="The node's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Place no new replicas on a node; what runs there stays."""
    common = Common(broker, root, user, timeout, config, output)
    simple(common, "cordon", {"node": name}, lambda r: views.done_line("cordon", r))


def uncordon(
    name: Annotated[str, typer.Argument(metavar="NODE", help="The node's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Undo cordon: the node takes new replicas again."""
    common = Common(broker, root, user, timeout, config, output)
    simple(common, "uncordon", {"node": name}, lambda r: views.done_line("uncordon", r))
