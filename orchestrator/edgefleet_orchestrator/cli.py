"""The ``edgefleet`` command: operator CLI and the orchestrator service entry point.

Sub-command groups live in their own modules (``cli_*.py``) and are mounted here, so each
stays small and importing the CLI stays cheap.
"""

from __future__ import annotations

import typer

from edgefleet_orchestrator import __version__

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
    # Imported here so a missing optional group never breaks the others.
    from edgefleet_orchestrator import cli_broker, cli_operator, cli_orchestrator, cli_profiles

    cli_operator.register(app)
    app.add_typer(cli_broker.app, name="broker")
    app.add_typer(cli_profiles.app, name="profiles")
    app.add_typer(cli_orchestrator.app, name="orchestrator")


def main() -> None:
    _mount()
    app()
