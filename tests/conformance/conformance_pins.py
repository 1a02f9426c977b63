"""Which sentence of docs/protocol.md a conformance test pins.

Every test in tests/conformance is decorated with :func:`pins`: the doc section it holds
the processes to, and the topic rows (as written in the doc's topic table) and error codes
it observes. ``tests/unit/test_conformance_coverage.py`` parses docs/protocol.md and fails
when a documented topic or error code is pinned by no test, or a test names a section the
doc lacks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Pin:
    test: str
    section: str
    topics: tuple[str, ...]
    codes: tuple[str, ...]


PINS: list[Pin] = []

# The topic rows of the doc's topic table, by short name, so tests read naturally.
TOPIC = {
    "status": "edgefleet/v1/nodes/{site}/{node}/status",
    "capabilities": "edgefleet/v1/nodes/{site}/{node}/capabilities",
    "telemetry": "edgefleet/v1/nodes/{site}/{node}/telemetry",
    "desired": "edgefleet/v1/nodes/{site}/{node}/desired",
    "reported": "edgefleet/v1/nodes/{site}/{node}/reported",
    "node-events": "edgefleet/v1/nodes/{site}/{node}/events",
    "compliance": "edgefleet/v1/nodes/{site}/{node}/compliance",
    "app-status": "edgefleet/v1/apps/{app}/status",
    "services": "edgefleet/v1/services/{service}",
    "fleet-summary": "edgefleet/v1/fleet/summary",
    "orchestrator-status": "edgefleet/v1/orchestrator/status",
    "orchestrator-events": "edgefleet/v1/orchestrator/events",
    "commands": "edgefleet/v1/commands/{operator}/{verb}",
    "commands-anonymous": "edgefleet/v1/commands/{verb}",
    "replies": "edgefleet/v1/replies/{operator}/…",
    "app-rollout": "edgefleet/v1/apps/{app}/rollout",
    "logs": "edgefleet/v1/nodes/{site}/{node}/logs",
    "logs-replies": "edgefleet/v1/replies/{operator}/logs/{site}/{node}/…",
}


def pins(
    section: str, *, topics: tuple[str, ...] = (), codes: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Record that the decorated test pins ``section`` (a heading of docs/protocol.md)."""

    def mark(test: F) -> F:
        PINS.append(Pin(test.__name__, section, tuple(TOPIC[t] for t in topics), codes))
        return test

    return mark
