"""The optional blocks of a manifest: placement, disconnect, autoscale, disruption, service,
update.

Each block is a frozen, strict model with its own defaults, so an app that leaves a block
out keeps today's behaviour. A new block (an update strategy, a service) gets its own
class here and one field on :class:`~edgefleet_protocol.manifest.app.AppManifest`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from edgefleet_protocol.base import StrictSpec
from edgefleet_protocol.commands import MAX_REPLICAS
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.manifest.rules import (
    Spread,
    Strategy,
    check_labels,
    check_tokens,
    field_error,
)


class LatencyLimit(StrictSpec):
    """Round-trip latency to ``target`` must stay under ``ms``, as measured by the node's own
    probe (telemetry ``latency_ms.<target>``); a node without that probe is not eligible."""

    target: str = Field(min_length=1, max_length=63)
    ms: float = Field(gt=0, le=600_000)

    @field_validator("target")
    @classmethod
    def _target_shape(cls, target: str) -> str:
        check_tokens([target], "probe target")
        return target


class Placement(StrictSpec):
    """Where replicas may run (filters) and how they are spread (scorers).

    Every constraint left empty allows everything. ``spread`` unset means "node" for the
    ``spread`` strategy and no spreading for ``binpack`` (which wants the fewest nodes).
    """

    sites: list[Identifier] = Field(default_factory=list, max_length=1024)
    selector: dict[str, str] = Field(default_factory=dict)
    selector_not: dict[str, str] = Field(default_factory=dict)
    regions: list[str] = Field(default_factory=list, max_length=256)
    max_latency_ms: LatencyLimit | None = None
    min_bandwidth_mbps: float | None = Field(default=None, ge=0, le=1_000_000)
    sensors: list[str] = Field(default_factory=list, max_length=64)
    accelerators: list[str] = Field(default_factory=list, max_length=32)
    arch: list[str] = Field(default_factory=list, max_length=16)
    max_per_node: int | None = Field(default=None, le=MAX_REPLICAS)
    spread: Spread | None = None
    strategy: Strategy = "spread"

    @field_validator("sites")
    @classmethod
    def _sites_unique(cls, sites: list[str]) -> list[str]:
        if len(set(sites)) != len(sites):
            raise ValueError("lists a site more than once")
        return sites

    @field_validator("selector", "selector_not")
    @classmethod
    def _labels_shape(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)

    @field_validator("regions")
    @classmethod
    def _regions_shape(cls, regions: list[str]) -> list[str]:
        return check_tokens(regions, "region")

    @field_validator("sensors")
    @classmethod
    def _sensors_shape(cls, sensors: list[str]) -> list[str]:
        return check_tokens(sensors, "sensor")

    @field_validator("accelerators")
    @classmethod
    def _accelerators_shape(cls, accelerators: list[str]) -> list[str]:
        return check_tokens(accelerators, "accelerator")

    @field_validator("arch")
    @classmethod
    def _arch_shape(cls, arch: list[str]) -> list[str]:
        return check_tokens(arch, "arch")

    @field_validator("max_per_node")
    @classmethod
    def _max_per_node_possible(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(
                f"must be at least 1 ({value} would allow no replica anywhere); "
                "leave it out for no limit"
            )
        return value

    @model_validator(mode="after")
    def _selectors_agree(self) -> Placement:
        clash = sorted(k for k, v in self.selector.items() if self.selector_not.get(k) == v)
        if clash:
            key = clash[0]
            raise field_error(
                "Placement",
                ("selector_not", key),
                f"label {key}={self.selector[key]} is both required and forbidden",
                self.selector_not[key],
            )
        return self

    @property
    def effective_spread(self) -> Spread | None:
        """The spreading dimension in force: explicit, else "node" for the spread strategy."""
        if self.spread is not None:
            return self.spread
        return "node" if self.strategy == "spread" else None


class Disconnect(StrictSpec):
    """What happens when a node hosting a replica goes offline or stale.

    The replica stays assigned for ``grace_s`` (a reboot or a short uplink loss restarts
    nothing). After that the node is lost: with ``replace`` the replica is placed elsewhere;
    without it the replica stays pinned to the node until it returns (hardware-bound apps).
    """

    grace_s: float = Field(default=30.0, ge=0, le=30 * 24 * 3600)
    replace: bool = True


BUILTIN_METRICS = ("cpu_pct", "memory_pct")
"""Per-workload telemetry values an autoscaler may follow besides custom ``metrics``."""


class Autoscale(StrictSpec):
    """Horizontal autoscaling on one per-workload metric, averaged over running replicas.

    ``metric`` is ``cpu_pct`` (percent of one core), ``memory_pct`` (percent of the
    replica's memory limit) or the name of a custom workload metric in telemetry. The count
    moves to ``ceil(replicas x observed / target)`` when the ratio leaves the
    ``1 ± tolerance`` band, within ``min``..``max``; a scale-up waits
    ``scale_up_cooldown_s`` and a scale-down ``scale_down_cooldown_s`` after the last
    change (so a burst is followed quickly and a lull slowly, without flapping).
    """

    metric: str = Field(min_length=1, max_length=63)
    target: float = Field(gt=0, le=1e12)
    min: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    max: int = Field(ge=1, le=MAX_REPLICAS)
    tolerance: float = Field(default=0.1, ge=0, lt=1)
    scale_up_cooldown_s: float = Field(default=30.0, ge=0, le=24 * 3600)
    scale_down_cooldown_s: float = Field(default=300.0, ge=0, le=24 * 3600)

    @field_validator("metric")
    @classmethod
    def _metric_shape(cls, metric: str) -> str:
        check_tokens([metric], "metric")
        return metric

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Autoscale:
        if self.min > self.max:
            raise field_error(
                "Autoscale", ("min",), f"{self.min} is above max {self.max}", self.min
            )
        return self


class Disruption(StrictSpec):
    """How much voluntary disruption the app tolerates: ``drain`` and rebalancing move at
    most ``max_unavailable`` of its replicas at a time (make-before-break), and
    ``rebalance: false`` keeps its replicas where they run when nodes join."""

    max_unavailable: int = Field(default=1, ge=1, le=MAX_REPLICAS)
    rebalance: bool = True


Topology = Literal["prefer-site", "prefer-region", "any"]


class ServicePort(StrictSpec):
    """One named TCP port the replicas serve on, on their node's advertised address.

    For ``runtime: process`` it is the port the process listens on; for ``runtime: docker``
    it must be published as a host port in ``workload.ports`` (the container's own port is
    not reachable from other gateways)."""

    name: Identifier = "main"
    port: int = Field(ge=1, le=65535)


class Service(StrictSpec):
    """An app offered to other apps: its replicas become endpoints in the retained
    ``services/{name}`` message, and consumers that list ``name`` in ``uses`` reach them
    through their gateway's local proxy.

    ``topology`` is where a consumer's proxy sends connections first: ``prefer-site``
    (endpoints in its own site while any is healthy, then its region, then any),
    ``prefer-region`` (its region, then any) or ``any``. ``mqtt_group`` names an MQTT
    shared-subscription group the replicas join (they get it as ``EDGEFLEET_MQTT_GROUP``),
    for apps that balance messages rather than connections; such an app may have no ports.
    """

    name: Identifier | None = None
    ports: list[ServicePort] = Field(default_factory=list, max_length=16)
    protocol: Literal["tcp"] = "tcp"
    topology: Topology = "prefer-site"
    mqtt_group: Identifier | None = None

    @field_validator("ports")
    @classmethod
    def _ports_unique(cls, ports: list[ServicePort]) -> list[ServicePort]:
        names = [p.name for p in ports]
        if len(set(names)) != len(names):
            raise ValueError("names a port more than once")
        numbers = [p.port for p in ports]
        if len(set(numbers)) != len(numbers):
            raise ValueError("lists a port number more than once")
        return ports

    @model_validator(mode="after")
    def _something_to_offer(self) -> Service:
        if not self.ports and self.mqtt_group is None:
            raise field_error(
                "Service",
                ("ports",),
                "needs at least one port (or an mqtt_group for message balancing)",
                [],
            )
        return self


Share = int | str
"""A count (``3``) or a percentage of the app's replicas (``"25%"``)."""

_PERCENT_RULE = "a count (e.g. 2) or a percentage of the replicas (e.g. '25%')"


def _check_share(value: object, *, least: int, what: str) -> Share:
    # A "before" validator: it sees the raw YAML/JSON value, so any type can arrive here.
    if isinstance(value, bool):
        raise ValueError(f"must be {_PERCENT_RULE}, not a boolean")
    if not isinstance(value, int | str):
        raise ValueError(f"must be {_PERCENT_RULE}, not {type(value).__name__}")
    if isinstance(value, int):
        if value < least or value > MAX_REPLICAS:
            raise ValueError(f"{value} is out of range {least}..{MAX_REPLICAS} ({what})")
        return value
    text = value.strip()
    if not text.endswith("%") or not text[:-1].isdigit():
        raise ValueError(f"{value!r} is not {_PERCENT_RULE}")
    pct = int(text[:-1])
    if pct < least or pct > 100:
        raise ValueError(f"{value!r} is out of range {least}%..100% ({what})")
    return text


def share_of(value: Share, total: int, *, least: int) -> int:
    """``value`` as a count of ``total`` replicas: a percentage rounds up (25% of 10 is 3,
    so a small fleet still moves), never below ``least`` while there are replicas."""
    count = value if isinstance(value, int) else -(-int(value[:-1]) * total // 100)
    return max(min(count, total), min(least, total))


Waves = Literal["none", "site", "region"]


class Update(StrictSpec):
    """How a changed workload spec reaches the app's replicas (a staged rollout).

    Leaving the block out keeps the old, fast behaviour: every replica gets the new spec at
    once (``max_parallel: 100%``) and nothing reverts; the rollout only judges the result
    (healthy for ``min_healthy_s``, 5 s by default, so ``deploy --wait`` does not call a
    crash-looping version a success after one glimpse of it running). The rollout state
    machine (``edgefleet_orchestrator.rollout``) reads these values; agents get
    ``healthy_deadline_s`` and ``min_healthy_s`` in each desired entry under rollout when
    ``auto_revert`` is on, so they can revert on their own.
    """

    max_parallel: Share = "100%"
    canary: Share = 0
    auto_promote: bool = True
    min_healthy_s: float = Field(default=5.0, ge=0, le=24 * 3600)
    healthy_deadline_s: float = Field(default=120.0, gt=0, le=24 * 3600)
    progress_deadline_s: float = Field(default=600.0, gt=0, le=7 * 24 * 3600)
    auto_revert: bool = False
    waves: Waves = "none"
    wave_pause_s: float = Field(default=0.0, ge=0, le=7 * 24 * 3600)
    max_failed: Share = 0

    @field_validator("max_parallel", mode="before")
    @classmethod
    def _max_parallel_shape(cls, value: object) -> Share:
        return _check_share(value, least=1, what="at least one replica must be able to move")

    @field_validator("canary", "max_failed", mode="before")
    @classmethod
    def _zero_or_more(cls, value: object) -> Share:
        return _check_share(value, least=0, what="0 turns it off")

    @model_validator(mode="after")
    def _values_agree(self) -> Update:
        if self.healthy_deadline_s <= self.min_healthy_s:
            raise field_error(
                "Update",
                ("healthy_deadline_s",),
                f"{self.healthy_deadline_s:g} must be above min_healthy_s {self.min_healthy_s:g}"
                " (a replica could never be healthy for long enough in time)",
                self.healthy_deadline_s,
            )
        if self.progress_deadline_s < self.healthy_deadline_s:
            raise field_error(
                "Update",
                ("progress_deadline_s",),
                f"{self.progress_deadline_s:g} must be at least healthy_deadline_s "
                f"{self.healthy_deadline_s:g} (no replica may take longer than the whole)",
                self.progress_deadline_s,
            )
        if not self.auto_promote and self.canary in (0, "0%"):
            raise field_error(
                "Update",
                ("auto_promote",),
                "false needs a canary (there is nothing to promote without one)",
                self.auto_promote,
            )
        if self.wave_pause_s and self.waves == "none":
            raise field_error(
                "Update",
                ("wave_pause_s",),
                "needs waves: site or waves: region (there are no waves to pause between)",
                self.wave_pause_s,
            )
        return self
