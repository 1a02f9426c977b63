"""The orchestrator's live in-memory state, shared by the command handlers and the passes.

Owned by the service's single event-loop task: nothing else reads or writes it, so no
handler and no pass ever sees it half-changed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol import AppStatus, Event
from edgefleet_protocol.commands import RECENT_EVENTS
from edgefleet_protocol.manifest import AppManifest
from edgefleet_protocol.policy import CompliancePolicy

from edgefleet_orchestrator.access.roles import OPEN, AccessPolicy
from edgefleet_orchestrator.fleet.registry import Registry
from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.fleet_pass import Control
from edgefleet_orchestrator.rollout.state import RolloutState


@dataclass
class ControlState:
    """The orchestrator's live state, owned by the service's single event-loop task.

    ``control`` is what the reconcile passes carry from one to the next (drains, moves in
    flight, autoscale memory); ``drains`` is the last pass's progress per draining node;
    ``rollouts`` each app's current or last rollout (stored on every change).
    """

    apps: dict[str, AppManifest]
    registry: Registry
    assignments: list[Assignment]
    statuses: dict[str, AppStatus] = field(default_factory=dict)
    control: Control = field(default_factory=Control)
    drains: dict[str, dict[str, Any]] = field(default_factory=dict)
    rollouts: dict[str, RolloutState] = field(default_factory=dict)
    clock: Callable[[], float] = time.time
    policy: CompliancePolicy | None = None
    sealing_key: X25519PrivateKey | None = None
    """The orchestrator's sealing key: secrets arrive sealed to it (``secret-set``)."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Secret name -> box sealed to ``sealing_key`` (as stored; never a value in clear)."""
    secrets_dirty: set[str] = field(default_factory=set)
    """Secrets set since the last pass: documents naming them are re-sealed and reissued."""
    issued: dict[str, int] = field(default_factory=dict)
    """The generation of the last desired document issued to each node (kept by the pass
    runner): a node observing more was given a document this orchestrator never issued."""
    """The compliance policy deploys are admitted against (``--policy``), if any."""
    access: AccessPolicy = OPEN
    """Operators' roles and scope (``--roles``): who may run which verb on what."""
    recent_events: deque[Event] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    """The newest events published on ``orchestrator/events`` (the ``events`` verb), in
    memory only: a restart begins empty."""
