"""Telling a node failure from a fault of the broker, the orchestrator or a bad link.

Who calls it: :class:`~edgefleet_orchestrator.fleet.registry.Registry`, on every live
transition of a node out of ``online``. Pure: ``now`` is passed in, nothing else is read.

Three rules, each an answer to a restart the fault did not force (issue #13):

* **Burst of wills** (:class:`BurstPolicy`): when ``nodes`` or more nodes go offline
  within ``window_s``, it is a broker (or network) event, not that many gateways failing
  at once. The disconnect grace of every node in the burst starts only ``hold_s`` after the
  burst — long enough for agents to come back through their reconnect backoff — and the
  burst counts as no flap.
* **Flapping** (:class:`FlapPolicy`): a node that leaves ``online`` more than
  ``max_flaps`` times within ``window_s`` is marked flapping. Placement treats it like a
  cordon (what runs there stays; nothing new goes there), so its replicas are not moved
  back and forth; the mark clears once its last flap is ``window_s`` old.
* **Settling** (:class:`FlapPolicy` ``settle_s``): a node that came back becomes a
  rebalancing target only after it has stayed online that long (see
  :func:`settled_online`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BurstPolicy:
    """``nodes`` offline within ``window_s`` is a broker event; grace waits ``hold_s``.
    ``nodes`` of 0 turns burst detection off."""

    nodes: int = 3
    window_s: float = 1.0
    hold_s: float = 30.0

    def __post_init__(self) -> None:
        if self.nodes < 0 or self.window_s <= 0 or self.hold_s < 0:
            raise ValueError(f"invalid burst policy {self}")


@dataclass(frozen=True, slots=True)
class FlapPolicy:
    """More than ``max_flaps`` exits from online within ``window_s`` is flapping; a node
    back online is a rebalancing target after ``settle_s``."""

    max_flaps: int = 3
    window_s: float = 600.0
    settle_s: float = 30.0

    def __post_init__(self) -> None:
        if self.max_flaps < 1 or self.window_s <= 0 or self.settle_s < 0:
            raise ValueError(f"invalid flap policy {self}")


class BurstDetector:
    """Remembers the live offline transitions of the last ``window_s``.

    Invariant: ``_recent`` holds (time, node) pairs in time order, none older than the
    window measured from the newest one.
    """

    def __init__(self, policy: BurstPolicy) -> None:
        self.policy = policy
        self._recent: deque[tuple[float, str]] = deque()

    def went_offline(self, node: str, now: float) -> tuple[str, ...]:
        """Record ``node`` leaving online at ``now``; return the nodes of the burst it
        completes or extends (sorted), or ``()`` when it is a single failure so far."""
        if self.policy.nodes == 0:
            return ()
        while self._recent and self._recent[0][0] <= now - self.policy.window_s:
            self._recent.popleft()
        self._recent.append((now, node))
        nodes = sorted({n for _, n in self._recent})
        return tuple(nodes) if len(nodes) >= self.policy.nodes else ()


def recent_flaps(flaps: tuple[float, ...], now: float, window_s: float) -> tuple[float, ...]:
    """The flap times still inside the window."""
    return tuple(t for t in flaps if t > now - window_s)


class _Online(Protocol):
    @property
    def state(self) -> str: ...
    @property
    def online_since(self) -> float | None: ...
    @property
    def flapping(self) -> bool: ...
    @property
    def capabilities(self) -> object: ...


def settled_online(
    nodes: Mapping[str, _Online], now: float, settle_s: float
) -> tuple[frozenset[str], float | None]:
    """The online, not flapping, described nodes that have been online ``settle_s`` (the
    rebalancing targets), and when the next unsettled one settles (``None``: none waits).
    """
    settled: set[str] = set()
    next_at: float | None = None
    for name, record in nodes.items():
        if record.state != "online" or record.flapping or record.capabilities is None:
            continue
        since = record.online_since
        if since is None or now - since >= settle_s:
            settled.add(name)
            continue
        at = since + settle_s
        next_at = at if next_at is None else min(next_at, at)
    return frozenset(settled), next_at


__all__ = ["BurstDetector", "BurstPolicy", "FlapPolicy", "recent_flaps", "settled_online"]
