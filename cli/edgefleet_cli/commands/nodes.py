"""``edgefleet nodes``, ``node``, ``cordon`` and ``uncordon``: reading nodes and taking
them out of scheduling. (``drain`` has its own module: it follows progress.) The connection
flags and ``--output`` come from :func:`~edgefleet_cli.options.operator_command`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from edgefleet_cli import views
from edgefleet_cli.listing import ListOutput, ListOutputOpt, SelectorOpt, listing
from edgefleet_cli.options import Common, operator_command, simple

NodeArg = Annotated[str, typer.Argument(metavar="NODE", help="The node's name.")]


@operator_command
def nodes(
    common: Common, selector: SelectorOpt = None, output: ListOutputOpt = ListOutput.table
) -> None:
    """List the nodes the orchestrator knows (-l selects by label, -o wide shows more)."""
    listing(common, "nodes", "nodes", selector=selector, output=output, view=views.nodes_view)


@operator_command
def node(name: Annotated[str, typer.Argument(help="The node's name.")], common: Common) -> None:
    """One node: capabilities, usage, and the workloads it reports."""
    simple(common, "node", {"node": name}, views.node_view)


@operator_command
def cordon(name: NodeArg, common: Common) -> None:
    """Place no new replicas on a node; what runs there stays."""
    simple(common, "cordon", {"node": name}, lambda r: views.done_line("cordon", r))


@operator_command
def uncordon(name: NodeArg, common: Common) -> None:
    """Undo cordon: the node takes new replicas again."""
    simple(common, "uncordon", {"node": name}, lambda r: views.done_line("uncordon", r))
