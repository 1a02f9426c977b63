"""How ``edgefleet events`` selects and prints events (docs/protocol.md, "Events"): one
line per event, so a follow can be piped to ``grep`` or a file. No network I/O: values
in, lines out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class EventFilter:
    """``--node``, ``--app`` and ``--kind`` (any of several kinds); ``None``/empty: all."""

    node: str | None = None
    app: str | None = None
    kinds: Sequence[str] = ()

    def matches(self, event: Mapping[str, Any]) -> bool:
        if self.node is not None and event.get("node") != self.node:
            return False
        if self.app is not None and event.get("app") != self.app:
            return False
        return not self.kinds or event.get("kind") in self.kinds

    def args(self) -> dict[str, Any]:
        """The ``events`` command's own filters (it takes one kind; more are applied here)."""
        found: dict[str, Any] = {}
        if self.node is not None:
            found["node"] = self.node
        if self.app is not None:
            found["app"] = self.app
        if len(self.kinds) == 1:
            found["kind"] = self.kinds[0]
        return found


def event_key(event: Mapping[str, Any]) -> tuple[Any, ...]:
    """What makes an event the same one twice (the recent list and the live stream can
    both carry an event published while the CLI was asking)."""
    return (event.get("ts"), event.get("kind"), event.get("message"), event.get("node"))


def event_line(event: Mapping[str, Any], *, source: str = "orchestrator") -> str:
    """``2026-12-06 01:20:33 UTC  warning  node-isolated  node gw-1: message``; ``source``
    names who published it (an agent's events say its node)."""
    ts = event.get("ts")
    when = (
        datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        if isinstance(ts, int | float)
        else "-"
    )
    about = [f"{k} {event[k]}" for k in ("node", "app") if event.get(k)]
    subject = f" [{', '.join(about)}]" if about else ""
    return (
        f"{when}  {event.get('level', 'info')!s:<7}  {source:<12}  "
        f"{event.get('kind')}{subject}: {event.get('message')}"
    )
