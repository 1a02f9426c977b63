"""Payloads the orchestrator writes (desired state, app status, fleet summary, its own
status) and the command request/reply pair operators use.

App status and fleet summary are deliberately flat JSON so a Node-RED MQTT-in node with
JSON parsing on can use them as they are.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgefleet_protocol.base import Envelope, WireModel
from edgefleet_protocol.bounds import Counter, Timestamp
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.rollout import RolloutGuard
from edgefleet_protocol.signing import KeyIdText
from edgefleet_protocol.workload import WorkloadSpec

RequestId = str


class DesiredWorkload(WireModel):
    name: Identifier
    app: Identifier
    spec: WorkloadSpec
    spec_hash: str = Field(min_length=1, max_length=80)
    # Only while the workload is under a rollout with auto_revert (see rollout.py).
    rollout: RolloutGuard | None = None


class KeyEndorsement(WireModel):
    """``signer`` vouches for the Ed25519 key ``key_id`` (``public_key``, base64 of the raw
    32 bytes): the signature covers :func:`edgefleet_protocol.signing.endorsement_bytes`.
    A chain of these in a desired document is how agents learn a rotated orchestrator key.
    """

    key_id: KeyIdText
    public_key: str = Field(min_length=1, max_length=64)
    signer: KeyIdText
    signature: str = Field(min_length=1, max_length=128)


MAX_KEY_CHAIN = 8


class Desired(Envelope):
    """The whole truth for one node: the agent converges to exactly these workloads.

    ``generation`` rises by one each time the document changes; an agent applies a higher
    generation, treats an equal one as a no-op and ignores a lower one.

    Signed documents carry ``key_id`` (the orchestrator key that signed), ``signature``
    (base64 Ed25519 over :func:`edgefleet_protocol.signing.document_bytes`) and, after a key
    rotation, ``key_chain`` (endorsements from a key the agent trusts to ``key_id``).
    """

    node: Identifier
    site: Identifier | None = None
    generation: Counter
    issued_at: Timestamp
    workloads: list[DesiredWorkload] = Field(default_factory=list)
    key_id: KeyIdText | None = None
    key_chain: list[KeyEndorsement] | None = Field(default=None, max_length=MAX_KEY_CHAIN)
    signature: str | None = Field(default=None, max_length=128)

    # A field validator (not a model validator) so the error names "workloads".
    @field_validator("workloads")
    @classmethod
    def _unique_names(cls, workloads: list[DesiredWorkload]) -> list[DesiredWorkload]:
        names = [w.name for w in workloads]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate workload name(s): {', '.join(dupes)}")
        return workloads


class ReplicaStatus(WireModel):
    """One replica's state. ``cpu``/``memory_mb`` (its current limits) are given for apps
    whose limits the orchestrator sizes (``resources.auto``), where they differ per replica."""

    name: Identifier
    node: Identifier | None = None
    site: Identifier | None = None
    state: str = Field(max_length=32)
    message: str = Field(default="", max_length=2048)
    cpu: float | None = Field(default=None, gt=0)
    memory_mb: int | None = Field(default=None, gt=0)


class Unplaced(WireModel):
    count: int = Field(ge=1)
    reasons: list[str] = Field(default_factory=list)


class AutoscaleStatus(WireModel):
    """Where an autoscaled app stands: what its metric says and why its count is what it is.

    ``observed`` is the metric averaged over the ``samples`` running replicas that report it
    (``None`` when none does: ``reason`` says so). ``wanted`` is the count the metric asks
    for, within ``min``..``max``; ``limited_by`` holds the placement reasons when fewer could
    be placed. ``state`` is the last verdict: ``steady`` (inside the tolerance band),
    ``scaled-up``/``scaled-down`` (this evaluation changed the count), ``cooldown`` (a change
    is due but its cooldown runs), ``limited`` (capacity stops a scale-up), ``no-data``.
    """

    metric: str = Field(max_length=128)
    target: float
    observed: float | None = None
    samples: int = Field(default=0, ge=0)
    tolerance: float = Field(default=0.1, ge=0)
    min: int = Field(ge=0)
    max: int = Field(ge=0)
    wanted: int = Field(ge=0)
    replicas: int = Field(ge=0)
    state: Literal["steady", "scaled-up", "scaled-down", "cooldown", "limited", "no-data"]
    reason: str = Field(default="", max_length=2048)
    limited_by: list[str] = Field(default_factory=list)
    last_scaled_at: float | None = None


class AppStatus(Envelope):
    app: Identifier
    state: Literal["healthy", "progressing", "degraded", "deleted"]
    mode: Literal["replicated", "daemon"] = "replicated"
    desired: int = Field(ge=0)
    placed: int = Field(ge=0)
    running: int = Field(ge=0)
    replicas: list[ReplicaStatus] = Field(default_factory=list)
    replicas_omitted: int = Field(default=0, ge=0)
    """Rows left out of ``replicas`` to keep the message far below the broker's packet
    limit (docs/protocol.md, App status)."""
    unplaced: list[Unplaced] = Field(default_factory=list)
    autoscale: AutoscaleStatus | None = None
    updated_at: float


class FleetSummary(Envelope):
    ts: float
    nodes_total: int = Field(ge=0)
    nodes_online: int = Field(ge=0)
    nodes_offline: int = Field(ge=0)
    nodes_stale: int = Field(default=0, ge=0)
    nodes_cordoned: int = Field(default=0, ge=0)
    nodes_flapping: int = Field(default=0, ge=0)
    apps_total: int = Field(ge=0)
    apps_healthy: int = Field(ge=0)
    apps_degraded: int = Field(ge=0)
    replicas_desired: int = Field(default=0, ge=0)
    replicas_running: int = Field(default=0, ge=0)
    nodes_noncompliant: int = Field(default=0, ge=0)
    noncompliant: dict[str, list[str]] = Field(default_factory=dict)
    """Up to 100 non-compliant nodes and why (the agent's report and the orchestrator's
    own checks)."""


class OrchestratorStatus(Envelope):
    state: Literal["online", "offline"]
    since: float
    version: str = Field(default="", max_length=64)
    instance: str | None = Field(default=None, min_length=1, max_length=64)
    """A random id per orchestrator process: how two orchestrators on one broker find out
    (docs/protocol.md, Orchestrator status)."""
    sealing_key: str | None = Field(default=None, max_length=64)
    """X25519 public key (base64) clients seal secrets to (``edgefleet secret set``)."""


class Endpoint(WireModel):
    """One healthy replica a client may connect to. ``port`` is the service's first port;
    ``ports`` names every port. ``weight`` (0-1000) is the share of new connections this
    endpoint should get relative to the others; 0 means "only if nothing else is left"."""

    node: Identifier
    address: str = Field(max_length=255)
    port: int = Field(ge=1, le=65535)
    weight: int = Field(default=100, ge=0, le=1000)
    replica: Identifier | None = None
    site: Identifier | None = None
    region: str | None = Field(default=None, max_length=64)
    ports: dict[Identifier, int] = Field(default_factory=dict)


Topology = Literal["prefer-site", "prefer-region", "any"]


class ServiceEndpoints(Envelope):
    """The retained catalog entry of one service. ``revision`` rises by one each time the
    endpoint set or a weight changes (and only then), so a client can ignore a replay."""

    service: Identifier
    app: Identifier
    endpoints: list[Endpoint] = Field(default_factory=list)
    updated_at: float
    revision: int = Field(default=0, ge=0)
    protocol: Literal["tcp"] = "tcp"
    topology: Topology = "any"
    mqtt_group: Identifier | None = None
    ports: dict[Identifier, int] = Field(default_factory=dict)


class CommandRequest(Envelope):
    """A command envelope. Verb arguments sit beside these fields in the same object and
    are read by the verb's own args model (see :mod:`edgefleet_protocol.commands`)."""

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    reply_to: str | None = Field(default=None, min_length=1, max_length=512)

    # A field validator (not a model validator) so the error names "reply_to".
    @field_validator("reply_to")
    @classmethod
    def _reply_to_is_a_topic(cls, reply_to: str | None) -> str | None:
        if reply_to is not None and any(c in reply_to for c in "+#\0"):
            raise ValueError("must be a plain topic: no '+', '#' or NUL")
        return reply_to


class CommandError(WireModel):
    code: str = Field(min_length=1, max_length=64)
    message: str = Field(max_length=4096)
    details: dict[str, Any] = Field(default_factory=dict)


class CommandReply(Envelope):
    request_id: str = Field(min_length=1, max_length=128)
    verb: str | None = None
    ok: bool
    result: Any = None
    error: CommandError | None = None

    @model_validator(mode="after")
    def _result_or_error(self) -> CommandReply:
        if self.ok and self.error is not None:
            raise ValueError("an ok reply carries no error")
        if not self.ok and self.error is None:
            raise ValueError("a failed reply must carry an error")
        return self
