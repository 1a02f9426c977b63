"""The ``events`` command: the orchestrator's newest events, as published.

Called by the command intake (:mod:`edgefleet_orchestrator.service.commands`). Events are
not retained on the broker (docs/protocol.md, "Events"), so a client that was not
listening has only this: the last :data:`~edgefleet_protocol.commands.RECENT_EVENTS` the
:class:`~edgefleet_orchestrator.service.events.EventPublisher` kept in
:attr:`ControlState.recent_events` since the orchestrator started. The intake narrows the
answer to the operator's scope (:func:`edgefleet_orchestrator.access.roles.visible`).
"""

from __future__ import annotations

from edgefleet_protocol.commands import EventsArgs
from pydantic import BaseModel

from edgefleet_orchestrator.service.handlers import Outcome
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import Store


def handle_events(verb: str, args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """``{events: [Event, ...]}``, oldest first: the newest ``limit`` that match."""
    assert isinstance(args, EventsArgs)
    found = [
        e
        for e in state.recent_events
        if (args.node is None or e.node == args.node)
        and (args.app is None or e.app == args.app)
        and (args.kind is None or e.kind == args.kind)
    ]
    return Outcome(
        {"events": [e.model_dump(mode="json", exclude_none=True) for e in found[-args.limit :]]}
    )


EVENT_VERBS = {"events": handle_events}
