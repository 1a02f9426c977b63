"""Between the reconcile pass's
:class:`~edgefleet_orchestrator.reconcile.fleet_pass.Control` and the store's records: what
of it is durable, and in which shape.

Who calls it: the service shell, at start (:func:`control_from_snapshot`) and after each
pass (:func:`documents`, :func:`retiring_records`, then it writes what changed). Pure.

Durable: drains (their own table, written by the ``drain``/``uncordon`` commands),
retiring copies (their own table), the autoscaler's last change per app (key
``autoscale/<app>``) and resize times (key ``resized_at``). Not durable: how long a lull
has lasted and the last verdict — after a restart a lull must be seen again in full before
anything shrinks. A control document that cannot be read is skipped (and named), never
fatal: the worst outcome is a cooldown that starts again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from edgefleet_orchestrator.placement.model import Assignment
from edgefleet_orchestrator.reconcile.fleet_pass import Control
from edgefleet_orchestrator.scaling.autoscale import ScaleMemory
from edgefleet_orchestrator.scaling.drain import DrainRequest
from edgefleet_orchestrator.scaling.moves import Cause, Retiring
from edgefleet_orchestrator.store.base import Drain, RetiringCopy, StoreSnapshot

AUTOSCALE_PREFIX = "autoscale/"
RESIZED_AT = "resized_at"


def control_from_snapshot(snapshot: StoreSnapshot) -> tuple[Control, list[str]]:
    """The control state a restarted orchestrator resumes with, and one line per stored
    document it had to skip."""
    skipped: list[str] = []
    autoscale: dict[str, ScaleMemory] = {}
    resized_at: dict[str, float] = {}
    for key, text in sorted(snapshot.control.items()):
        try:
            value = json.loads(text)
            if key.startswith(AUTOSCALE_PREFIX):
                autoscale[key.removeprefix(AUTOSCALE_PREFIX)] = _memory(value)
            elif key == RESIZED_AT:
                resized_at = _times(value)
            elif key.startswith("secret/"):
                continue  # sealed secrets: read by the service (service/secrets.py)
            else:
                skipped.append(f"{key}: unknown control key")
        except (ValueError, TypeError) as exc:
            skipped.append(f"{key}: {exc}")
    drains = {
        node: DrainRequest(node=d.node, started_at=d.started_at, max_unavailable=d.max_unavailable)
        for node, d in snapshot.drains.items()
    }
    retiring = tuple(
        Retiring(
            copy=Assignment(c.replica, c.app, c.node, c.site, c.cpu, c.memory_mb),
            to_node=c.to_node,
            cause=_cause(c.cause),
            since=c.since,
        )
        for c in snapshot.retiring
    )
    return Control(autoscale, resized_at, drains, retiring), skipped


def _cause(text: str) -> Cause:
    if text == "rollout":
        return "rollout"
    return "rebalance" if text == "rebalance" else "drain"


def documents(control: Control) -> dict[str, str]:
    """The durable control documents, by key, as JSON text (compare to write only the
    ones that changed)."""
    docs = {
        AUTOSCALE_PREFIX + app: json.dumps(
            {"last_scaled_at": m.last_scaled_at, "last_direction": m.last_direction},
            sort_keys=True,
        )
        for app, m in control.autoscale.items()
        if m.last_scaled_at is not None
    }
    if control.resized_at:
        docs[RESIZED_AT] = json.dumps(dict(sorted(control.resized_at.items())))
    return docs


def retiring_records(control: Control) -> list[RetiringCopy]:
    return [
        RetiringCopy(
            replica=r.replica,
            app=r.app,
            node=r.node,
            site=r.copy.site,
            cpu=r.copy.cpu,
            memory_mb=r.copy.memory_mb,
            to_node=r.to_node,
            cause=r.cause,
            since=r.since,
        )
        for r in control.retiring
    ]


def drain_record(request: DrainRequest) -> Drain:
    return Drain(
        node=request.node,
        started_at=request.started_at,
        max_unavailable=request.max_unavailable,
    )


def _memory(value: Any) -> ScaleMemory:
    if not isinstance(value, Mapping):
        raise TypeError("not a JSON object")
    at = value.get("last_scaled_at")
    direction = value.get("last_direction")
    if at is not None and (not isinstance(at, int | float) or not math.isfinite(at)):
        raise TypeError(f"last_scaled_at is not a time: {at!r}")
    if direction not in (None, "up", "down"):
        raise TypeError(f"last_direction is not up/down: {direction!r}")
    return ScaleMemory(
        last_scaled_at=None if at is None else float(at),
        last_direction=direction,
    )


def _times(value: Any) -> dict[str, float]:
    if not isinstance(value, Mapping):
        raise TypeError("not a JSON object")
    return {
        str(k): float(v)
        for k, v in value.items()
        if isinstance(v, int | float) and math.isfinite(v)
    }
