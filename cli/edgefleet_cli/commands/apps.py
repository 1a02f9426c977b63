"""``edgefleet apps``, ``app``, ``scale`` and ``delete``: reading and changing apps.

Each is one command round trip over MQTT (the same ``commands/<user>/<verb>`` a Node-RED flow or
``mosquitto_pub`` would publish), printed with :mod:`edgefleet_cli.views`.
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


def apps(
    selector: SelectorOpt = None,
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: ListOutputOpt = ListOutput.table,
) -> None:
    """List the deployed apps with their state (-l selects by label, -o wide shows more)."""
    common = Common(broker, root, user, timeout, config, Output.table)
    listing(common, "apps", "apps", selector=selector, output=output, view=views.apps_view)


def app(
    name: Annotated[str, typer.Argument(help="The app's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """One app: its manifest, every replica's state, and why any is not placed."""
    common = Common(broker, root, user, timeout, config, output)
    simple(common, "app", {"app": name}, views.app_view)


def scale(
    name: Annotated[str, typer.Argument(metavar="APP", help="The app's name.")],
    replicas: Annotated[
        int, typer.Argument(metavar="N", min=0, help="Replica count (0 keeps the app).")
    ],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Set an app's replica count."""
    common = Common(broker, root, user, timeout, config, output)
    simple(
        common, "scale", {"app": name, "replicas": replicas}, lambda r: views.done_line("scale", r)
    )


def delete(
    name: Annotated[str, typer.Argument(metavar="APP", help="The app's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Remove an app and all its replicas."""
    common = Common(broker, root, user, timeout, config, output)
    simple(common, "delete", {"app": name}, lambda r: views.done_line("delete", r))
