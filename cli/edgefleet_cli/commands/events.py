"""``edgefleet events [--follow]``: the orchestrator's recent events, then (``--follow``)
every new one as it happens, until Ctrl-C or SIGTERM.

Events are not retained (docs/protocol.md, "Events"), so the recent ones come from the
orchestrator's ``events`` command (the last 200 it published since it started, narrowed to
the operator's scope); ``--follow`` subscribes to ``orchestrator/events`` and the agents'
``nodes/+/+/events`` before asking, so nothing published meanwhile is missed, and prints an
event that is both in the answer and on the topic once. The production ACL lets operators
read only ``orchestrator/events``: there the agents' events do not arrive.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from edgefleet_protocol import ProtocolError, TopicKind, Topics
from edgefleet_protocol.commands import RECENT_EVENTS
from edgefleet_protocol.session import InboundMessage

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, refusal_lines
from edgefleet_cli.event_views import EventFilter, event_key, event_line
from edgefleet_cli.options import (
    Common,
    Output,
    execute,
    operator_command,
    stop_on_signals,
)


@operator_command
def events(
    common: Common,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Then print new events until Ctrl-C.")
    ] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            min=0,
            max=RECENT_EVENTS,
            help="How many recent events to print first (0: none).",
        ),
    ] = 20,
    node: Annotated[
        str | None, typer.Option("--node", help="Only events naming this node.")
    ] = None,
    app: Annotated[str | None, typer.Option("--app", help="Only events naming this app.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", help="Only events of this kind (repeat for several)."),
    ] = None,
) -> None:
    """Print the orchestrator's recent events; --follow streams new ones (-o json: one per line)."""
    wanted = EventFilter(node, app, tuple(kind or ()))

    def show(event: dict[str, Any], source: str) -> None:
        if common.output is Output.json:
            typer.echo(json.dumps(event, sort_keys=False))
        else:
            typer.echo(event_line(event, source=source))

    async def work() -> None:
        stop = stop_on_signals()
        settings = common.settings()
        topics = Topics(settings.root)
        live: asyncio.Queue[tuple[dict[str, Any], str]] = asyncio.Queue()

        def tap(message: InboundMessage) -> bool:
            taken = _event_of(topics, message)
            if taken is not None:
                live.put_nowait(taken)
            return taken is not None

        filters = [topics.orchestrator_events(), topics.all_nodes(TopicKind.NODE_EVENTS)]
        async with OperatorClient(settings, follow=filters if follow else (), tap=tap) as client:
            printed: set[tuple[Any, ...]] = set()
            if limit:
                # Several kinds: the command filters one, so ask for all it keeps.
                asked = RECENT_EVENTS if len(wanted.kinds) > 1 else limit
                reply = await client.call("events", {"limit": asked, **wanted.args()})
                if not reply.ok:
                    raise CommandRefused(*refusal_lines(reply))
                recent = [e for e in reply.result.get("events", []) if wanted.matches(e)]
                for event in recent[-limit:]:
                    printed.add(event_key(event))
                    show(event, "orchestrator")
            if not follow:
                return
            stopper = asyncio.create_task(stop.wait())
            while not stop.is_set():
                getter = asyncio.create_task(live.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when="FIRST_COMPLETED")
                if getter not in done:
                    getter.cancel()
                    break
                event, source = getter.result()
                if wanted.matches(event) and event_key(event) not in printed:
                    show(event, source)

    execute(work, interrupted=0)


def _event_of(topics: Topics, message: InboundMessage) -> tuple[dict[str, Any], str] | None:
    """An events message as ``(event, who published it)``; ``None`` for anything else
    (and for an unreadable event, which is not worth ending a follow for)."""
    try:
        parsed = topics.parse(message.topic)
        if parsed.kind not in (TopicKind.ORCHESTRATOR_EVENTS, TopicKind.NODE_EVENTS):
            return None
        body = json.loads(message.payload)
    except (ProtocolError, ValueError):
        return None
    if not isinstance(body, dict):
        return None
    source = "orchestrator" if parsed.node is None else parsed.node
    return body, source
