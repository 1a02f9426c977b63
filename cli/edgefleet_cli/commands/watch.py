"""``edgefleet watch``: a live fleet view from the retained status topics alone, so it
works (and says so) while the orchestrator is down.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from edgefleet_protocol import Topics
from rich.console import RenderableType
from rich.live import Live

from edgefleet_cli import views
from edgefleet_cli.client import OperatorClient, fleet_filters
from edgefleet_cli.config import ClientSettings
from edgefleet_cli.options import (
    Common,
    Output,
    emit,
    execute,
    operator_command,
    out,
)

COALESCE_S = 0.5
"""When stdout is not a terminal, changes within this long print as one snapshot."""


@operator_command
def watch(
    common: Common,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
) -> None:
    """A live fleet view from the retained status topics (summary, apps, nodes).

    Works without a running orchestrator (it shows it as offline or absent). With
    --output json it prints one JSON snapshot per change, one per line. Ctrl-C ends it.
    """
    output = common.output

    async def work() -> None:
        settings = common.settings()
        async with OperatorClient(settings, follow=_filters(settings)) as client:
            await client.settle(max_s=min(settings.timeout_s, 3.0))
            if once:
                emit(output, client.snapshot.as_json(),
                     lambda: views.fleet_view(client.snapshot, settings.root))  # fmt: skip
                return
            if output is Output.json:
                while True:
                    typer.echo(json.dumps(client.snapshot.as_json()))
                    while not await client.next_change(3600):
                        pass

            def render() -> RenderableType:
                return views.fleet_view(client.snapshot, settings.root)

            console = out()
            if not console.is_terminal:
                # Redirected: a live view would print nothing. One snapshot per change
                # instead (a burst coalesced into one), each followed by a blank line.
                while True:
                    console.print(render())
                    console.print()
                    console.file.flush()
                    while not await client.next_change(3600):
                        pass
                    await asyncio.sleep(COALESCE_S)

            with Live(render(), console=console, refresh_per_second=4) as live:
                while True:
                    await client.next_change(1.0)
                    live.update(render())

    execute(work, interrupted=0)


def _filters(settings: ClientSettings) -> list[str]:
    return fleet_filters(Topics(settings.root))
