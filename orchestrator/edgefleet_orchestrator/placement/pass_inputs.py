"""What one placement pass carries from app to app, and what its caller says per app.

Owned by :mod:`.pipeline`: the running usage totals (with the change log the score book
reads), the caches the apps of a pass share, and the caller's per-app inputs (moves and
presence of nodes that are not answering).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.placement.model import Rejection, Size
from edgefleet_orchestrator.placement.score_book import ScoreBook
from edgefleet_orchestrator.placement.state import StaticCache


@dataclass(slots=True)
class Usage:
    """What the nodes hold so far in a pass: cpu, memory, host ports (port -> app), and
    the log of nodes whose usage changed (the score book rescores only those)."""

    cpu_m: dict[str, int]
    memory_mb: dict[str, int]
    ports: dict[str, dict[int, str]]
    changed: list[str]

    def add(self, node: str, cpu_m: int, memory_mb: int) -> None:
        self.cpu_m[node] = self.cpu_m.get(node, 0) + cpu_m
        self.memory_mb[node] = self.memory_mb.get(node, 0) + memory_mb
        self.changed.append(node)

    def hold(self, node: str, ports: frozenset[int], app: str) -> None:
        if ports:
            held = self.ports.setdefault(node, {})
            for port in ports:
                held.setdefault(port, app)

    def release(self, node: str, app: str) -> None:
        """Forget ``app``'s ports on ``node`` (its replicas are placed again, and charge
        them again as they are kept or taken); another app's ports stay."""
        held = self.ports.get(node)
        if held:
            for port in [p for p, owner in held.items() if owner == app]:
                del held[port]


@dataclass(frozen=True, slots=True)
class Caches:
    """What the apps of one pass share: static filter outcomes and node scores."""

    static: StaticCache
    scores: ScoreBook


@dataclass(frozen=True, slots=True)
class Moves:
    """What the caller asks of one app's existing replicas: new sizes, leaving, and
    copying make-before-break (``surge``: the old copy keeps its node)."""

    sizes: Mapping[str, Size]
    leaving: Mapping[str, Rejection]
    surge: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Presence:
    """What the caller said about nodes that are not answering, for one app.

    ``lost``: beyond the app's grace (or named lost outright). ``known``: every node the
    caller accounts for as offline or lost, so a replica on a node missing from ``nodes``
    (e.g. not heard of since an orchestrator restart) waits out its grace like one on an
    offline node, instead of being moved as if the node had left the fleet.
    """

    lost: frozenset[str]
    known: frozenset[str]

    @classmethod
    def of(
        cls,
        app: AppManifest,
        lost_nodes: frozenset[str],
        offline_for_s: Mapping[str, float] | None,
    ) -> Presence:
        if not offline_for_s:
            return cls(lost=lost_nodes, known=lost_nodes)
        grace = app.disconnect.grace_s
        beyond = {node for node, gone in offline_for_s.items() if gone >= grace}
        return cls(lost=lost_nodes | beyond, known=lost_nodes | frozenset(offline_for_s))
