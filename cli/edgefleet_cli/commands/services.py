"""``edgefleet services`` and ``edgefleet service NAME``: the service catalog, read from
the retained ``services/{service}`` topics alone (no command round trip), so they work
while the orchestrator is away and show exactly what every gateway's proxy sees.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

import typer
from edgefleet_protocol import ProtocolError, validate_id
from rich.console import RenderableType
from rich.live import Live

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, UsageError
from edgefleet_cli.options import (
    Common,
    Output,
    emit,
    execute,
    operator_command,
    out,
)
from edgefleet_cli.service_views import as_json, service_view, services_view

WatchOpt = Annotated[
    bool, typer.Option("--watch", "-w", help="Keep printing as the catalog changes (Ctrl-C ends).")
]


@operator_command
def services(common: Common, watch: WatchOpt = False) -> None:
    """List the services with their healthy endpoint counts."""

    def snapshot(client: OperatorClient) -> tuple[object, RenderableType]:
        found = client.snapshot.services
        data = [as_json(found[n]) for n in sorted(found)]
        return data, services_view(found)

    _show(common, "+", watch, snapshot)


@operator_command
def service(
    name: Annotated[str, typer.Argument(help="The service's name.")],
    common: Common,
    watch: WatchOpt = False,
) -> None:
    """One service: every healthy endpoint with its locality and weight."""
    try:
        validate_id(name, kind="service")
    except ProtocolError as exc:
        execute(_refuse(str(exc)))
        return

    def snapshot(client: OperatorClient) -> tuple[object, RenderableType]:
        entry = client.snapshot.services.get(name)
        if entry is None:
            raise CommandRefused(f"error: no service {name} (edgefleet services lists them)")
        return as_json(entry), service_view(entry)

    _show(common, name, watch, snapshot)


def _refuse(message: str) -> Callable[[], Coroutine[Any, Any, None]]:
    async def work() -> None:
        raise UsageError(f"error: {message}")

    return work


def _show(
    common: Common,
    level: str,
    watch: bool,
    snapshot: Callable[[OperatorClient], tuple[object, RenderableType]],
) -> None:
    async def work() -> None:
        settings = common.settings()
        follow = [f"{settings.root}/services/{level}"]
        async with OperatorClient(settings, follow=follow) as client:
            await client.settle(max_s=min(settings.timeout_s, 3.0))
            data, view = snapshot(client)
            if not watch:
                emit(common.output, data, view)
                return
            if common.output is Output.json:
                while True:
                    typer.echo(json.dumps(snapshot(client)[0]))
                    while not await client.next_change(3600):
                        pass
            with Live(view, console=out(), refresh_per_second=4) as live:
                while True:
                    await client.next_change(1.0)
                    live.update(snapshot(client)[1])

    execute(work, interrupted=0)
