"""The ``edgefleet`` command: the operator's tool, a client of the public MQTT contract.

Its command groups live in :mod:`edgefleet_cli.commands` and are mounted here. Groups from
other packages join through the ``edgefleet.commands`` entry-point group: that is how
``edgefleet orchestrator run`` (package ``edgefleet_orchestrator``) is reachable from this
command while this package never imports the orchestrator (import-linter keeps it so).
"""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from edgefleet_cli import __version__

PLUGIN_GROUP = "edgefleet.commands"

app = typer.Typer(
    name="edgefleet",
    help="edgefleet: orchestrate applications across fleets of IoT edge gateways over MQTT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgefleet {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """edgefleet: orchestrate applications across fleets of IoT edge gateways over MQTT."""


def _mount() -> None:
    # Imported here so that importing this module stays cheap.
    from edgefleet_cli.commands import (
        apps,
        audit,
        broker,
        compliance,
        deploy,
        diff,
        drain,
        events,
        keys,
        logs,
        nodes,
        profiles,
        rollout,
        secret,
        services,
        validate,
        watch,
    )

    verbs = (
        deploy.deploy,
        diff.diff,
        apps.apps,
        apps.app,
        nodes.nodes,
        nodes.node,
        apps.scale,
        apps.delete,
        nodes.cordon,
        nodes.uncordon,
        drain.drain,
        services.services,
        services.service,
        watch.watch,
        events.events,
        logs.logs,
        validate.validate,
        audit.audit,
        compliance.compliance,
    )
    for command in verbs:
        app.command(command.__name__)(command)
    app.add_typer(broker.app, name="broker")
    app.add_typer(profiles.app, name="profiles")
    app.add_typer(keys.app, name="keys")
    app.add_typer(secret.app, name="secret")
    app.add_typer(rollout.app, name="rollout")
    for plugin in entry_points(group=PLUGIN_GROUP):
        app.add_typer(plugin.load(), name=plugin.name)


def main() -> None:
    _mount()
    app()
