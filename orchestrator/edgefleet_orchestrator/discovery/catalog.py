"""The endpoint catalog: from apps, assignments and node records to one
:class:`ServiceEndpoints` per service, and the publications that differ from the last ones.

Pure; called by the service shell after every pass, report and telemetry tick. Rules
(docs/protocol.md, "Services"):

* an endpoint is a replica assigned to an online node whose agent reports it ``running``
  (with health ``healthy`` or ``none`` if the app has a health check) and an ``address``
  — the agent's word, not the plan;
* its weight is ``1000 x (1 - load)`` rounded down to a multiple of 100, at least 100,
  with ``load = load1 / cpu_cores`` capped at 0.9 (0 while unknown). Coarse steps keep a
  jittery load average from republishing the catalog on every telemetry message;
* a catalog entry is published only when its content (everything but ``updated_at`` and
  ``revision``) changes; the revision is the clock in milliseconds, or the last one + 1,
  so it rises across orchestrator restarts;
* a service that disappears (app deleted, or its service block removed or renamed) gets
  a last empty entry and then the clear of its retained message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from edgefleet_protocol import Endpoint, ServiceEndpoints
from edgefleet_protocol.manifest import AppManifest

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.placement.model import Assignment

MAX_WEIGHT = 1000
MIN_WEIGHT = 100
WEIGHT_STEP = 100
MAX_LOAD = 0.9
SERVING_HEALTH = frozenset({"healthy", "none"})


def weight_for(record: NodeRecord) -> int:
    """The weight of an endpoint on ``record``'s node, from its load per core."""
    load1 = record.telemetry.load1
    caps = record.capabilities
    if load1 is None or caps is None:
        return MAX_WEIGHT
    load = min(MAX_LOAD, max(0.0, load1 / caps.cpu_cores))
    raw = MAX_WEIGHT * (1.0 - load)
    return max(MIN_WEIGHT, math.floor(raw / WEIGHT_STEP + 1e-9) * WEIGHT_STEP)


def endpoint_of(
    a: Assignment, nodes: Mapping[str, NodeRecord], *, checked: bool = True
) -> Endpoint | None:
    """``a`` as an endpoint, or ``None`` while its node's agent does not report it serving.
    ``checked``: the app has a health check (without one, running is serving, whatever
    the runtime says of health)."""
    record = nodes.get(a.node)
    if record is None or record.state != "online" or record.reported is None:
        return None
    report = record.reported.workloads.get(a.replica)
    if report is None or report.state != "running":
        return None
    if checked and report.health not in SERVING_HEALTH:
        return None
    if report.address is None or not report.ports:
        return None
    caps = record.capabilities
    return Endpoint(
        node=a.node,
        address=report.address,
        port=next(iter(report.ports.values())),
        weight=weight_for(record),
        replica=a.replica,
        site=record.site,
        region=caps.region if caps is not None else None,
        ports=dict(report.ports),
    )


def catalog(
    apps: Mapping[str, AppManifest],
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
) -> dict[str, ServiceEndpoints]:
    """Every declared service with its endpoints now (``updated_at`` and ``revision`` 0:
    :func:`changes` stamps the ones it publishes).

    Only the assignments of apps that declare a service are looked at, and none when no
    app does: the shell asks after every node report, and grouping every assignment of the
    fleet each time made a deploy quadratic (2,000 nodes: a third of the orchestrator's
    CPU until the fleet converged, for a catalog that was empty)."""
    served = {
        name: app
        for name, app in sorted(apps.items())
        if app.service_name is not None and app.service is not None
    }
    if not served:
        return {}
    by_app: dict[str, list[Assignment]] = {}
    for a in assignments:
        if a.app in served:
            by_app.setdefault(a.app, []).append(a)
    entries: dict[str, ServiceEndpoints] = {}
    for name, app in served.items():
        service, block = app.service_name, app.service
        if service is None or block is None:
            continue
        # A replica moving make-before-break runs on two nodes for a moment: both copies
        # serve, so both are endpoints until the old one stops.
        mine = sorted(by_app.get(name, []), key=lambda a: (a.node, a.replica))
        checked = app.workload.health is not None
        endpoints = [e for a in mine if (e := endpoint_of(a, nodes, checked=checked)) is not None]
        entries[service] = ServiceEndpoints(
            service=service,
            app=name,
            endpoints=endpoints,
            updated_at=0.0,
            revision=0,
            topology=block.topology,
            mqtt_group=block.mqtt_group,
            ports={p.name: p.port for p in block.ports},
        )
    return entries


@dataclass(frozen=True, slots=True)
class Publish:
    entry: ServiceEndpoints


@dataclass(frozen=True, slots=True)
class Clear:
    service: str
    last: ServiceEndpoints


Change = Publish | Clear


def same_content(a: ServiceEndpoints, b: ServiceEndpoints) -> bool:
    """Equal but for when it was made."""
    stamp = {"updated_at": 0.0, "revision": 0}
    return a.model_copy(update=stamp) == b.model_copy(update=stamp)


def changes(
    published: Mapping[str, ServiceEndpoints],
    current: Mapping[str, ServiceEndpoints],
    *,
    now: float,
) -> list[Change]:
    """What to publish so the broker holds ``current``: changed or new entries, stamped
    with a new revision, then a :class:`Clear` (with its last, empty entry) per gone one."""
    out: list[Change] = []
    for service, entry in sorted(current.items()):
        old = published.get(service)
        if old is not None and same_content(old, entry):
            continue
        revision = max(int(now * 1000), (old.revision + 1) if old is not None else 0)
        out.append(Publish(entry.model_copy(update={"updated_at": now, "revision": revision})))
    for service, old in sorted(published.items()):
        if service not in current:
            last = old.model_copy(
                update={"endpoints": [], "updated_at": now, "revision": old.revision + 1}
            )
            out.append(Clear(service, last))
    return out
