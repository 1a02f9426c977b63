"""``edgefleet apps``, ``app``, ``scale`` and ``delete``: reading and changing apps.

Each is one command round trip over MQTT (the same ``commands/<user>/<verb>`` a Node-RED flow or
``mosquitto_pub`` would publish), printed with :mod:`edgefleet_cli.views`. The connection
flags and ``--output`` come from :func:`~edgefleet_cli.options.operator_command`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from edgefleet_cli import views
from edgefleet_cli.listing import ListOutput, ListOutputOpt, SelectorOpt, listing
from edgefleet_cli.options import Common, operator_command, simple

AppArg = Annotated[str, typer.Argument(metavar="APP", help="The app's name.")]


@operator_command
def apps(
    common: Common, selector: SelectorOpt = None, output: ListOutputOpt = ListOutput.table
) -> None:
    """List the deployed apps with their state (-l selects by label, -o wide shows more)."""
    listing(common, "apps", "apps", selector=selector, output=output, view=views.apps_view)


@operator_command
def app(name: Annotated[str, typer.Argument(help="The app's name.")], common: Common) -> None:
    """One app: its manifest, every replica's state, and why any is not placed."""
    simple(common, "app", {"app": name}, views.app_view)


@operator_command
def scale(
    name: AppArg,
    replicas: Annotated[
        int, typer.Argument(metavar="N", min=0, help="Replica count (0 keeps the app).")
    ],
    common: Common,
) -> None:
    """Set an app's replica count."""
    args = {"app": name, "replicas": replicas}
    simple(common, "scale", args, lambda r: views.done_line("scale", r))


@operator_command
def delete(name: AppArg, common: Common) -> None:
    """Remove an app and all its replicas."""
    simple(common, "delete", {"app": name}, lambda r: views.done_line("delete", r))
