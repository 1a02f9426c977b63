"""The application manifest itself, and how its replicas are counted and named."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError, field_validator, model_validator

from edgefleet_protocol.base import StrictSpec
from edgefleet_protocol.codec import validate
from edgefleet_protocol.commands import MAX_REPLICAS
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.manifest.blocks import (
    Autoscale,
    Disconnect,
    Disruption,
    Placement,
    Service,
    Update,
)
from edgefleet_protocol.manifest.names import (
    longest_replica_name,
)
from edgefleet_protocol.manifest.rules import (
    MAX_ID_LENGTH,
    Mode,
    check_labels,
    field_error,
)
from edgefleet_protocol.workload import WorkloadSpec

MAX_USES = 64
"""Services one app may use (the workload spec's own bound, so a longer list is refused at
``uses``, where the author wrote it, not at ``workload.uses`` where it is copied)."""


class AppManifest(StrictSpec):
    """One application: a workload run as ``replicas`` copies or once per matching node.

    With ``autoscale`` the replica count is the autoscaler's to change (it rewrites
    ``replicas`` within ``min``..``max``); leaving ``replicas`` out starts at ``min``.
    """

    name: Identifier
    workload: WorkloadSpec
    mode: Mode = "replicated"
    replicas: int | None = Field(default=None, ge=0, le=MAX_REPLICAS)
    placement: Placement = Field(default_factory=Placement)
    disconnect: Disconnect = Field(default_factory=Disconnect)
    autoscale: Autoscale | None = None
    disruption: Disruption = Field(default_factory=Disruption)
    labels: dict[str, str] = Field(default_factory=dict)
    service: Service | None = None
    uses: list[Identifier] = Field(default_factory=list, max_length=MAX_USES)
    update: Update | None = None

    @field_validator("labels")
    @classmethod
    def _labels_shape(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)

    @field_validator("uses")
    @classmethod
    def _uses_unique(cls, uses: list[str]) -> list[str]:
        if len(set(uses)) != len(uses):
            raise ValueError("lists a service more than once")
        return uses

    @model_validator(mode="before")
    @classmethod
    def _service_into_workload(cls, data: Any) -> Any:
        # The agent sees only the workload spec, so the app-level ``service`` and ``uses``
        # travel in it (see WorkloadSpec). Copying here, once, keeps every spec and hash
        # the orchestrator derives from ``app.workload`` consistent with the manifest.
        if not isinstance(data, dict) or not isinstance(data.get("workload"), dict):
            return data
        workload = dict(data["workload"])
        wanted = _binding_of(data)
        for key, value in (("service", wanted[0]), ("uses", wanted[1])):
            given = workload.get(key)
            if isinstance(given, dict):  # a dumped binding spells out its defaults
                given = {k: v for k, v in given.items() if v is not None}
            if given not in (None, [], value):
                raise field_error(
                    "AppManifest",
                    ("workload", key),
                    f"is filled from the app-level {key!r}; set {key} beside workload, not "
                    "inside it",
                    workload[key],
                )
            if value in (None, []):
                workload.pop(key, None)
            else:
                workload[key] = value
        return {**data, "workload": workload}

    @model_validator(mode="before")
    @classmethod
    def _autoscale_starts_at_min(cls, data: Any) -> Any:
        # An autoscaled app may leave its count out: it starts at the autoscaler's minimum.
        if isinstance(data, dict) and data.get("replicas") is None:
            auto = data.get("autoscale")
            if isinstance(auto, dict) and data.get("mode", "replicated") == "replicated":
                try:  # read as autoscale.min itself reads it ("2" and 2.0 are 2)
                    low = _COUNT.validate_python(auto.get("min", 1))
                except ValidationError:
                    return data  # autoscale.min reports it, where it was written
                return {**data, "replicas": low}
        return data

    @model_validator(mode="after")
    def _mode_and_names(self) -> AppManifest:
        if self.mode == "daemon" and self.replicas is not None:
            raise field_error(
                "AppManifest",
                ("replicas",),
                "must be left out with mode: daemon (one replica runs on each matching node)",
                self.replicas,
            )
        if self.mode == "daemon" and self.autoscale is not None:
            raise field_error(
                "AppManifest",
                ("autoscale",),
                "cannot be used with mode: daemon (its count follows the matching nodes)",
                None,
            )
        if self.mode == "replicated" and self.replicas is None:
            raise field_error(
                "AppManifest",
                ("replicas",),
                "is required with mode: replicated (use 0 to keep the app but run nothing)",
                None,
            )
        auto = self.autoscale
        if auto is not None and not auto.min <= (self.replicas or 0) <= auto.max:
            raise field_error(
                "AppManifest",
                ("replicas",),
                f"{self.replicas} is outside autoscale bounds {auto.min}..{auto.max} (leave "
                "it out to start at min)",
                self.replicas,
            )
        self._check_service()
        most = max(self.replicas or 0, auto.max if auto is not None else 0)
        longest = longest_replica_name(self.name, self.mode, most)
        if len(longest) > MAX_ID_LENGTH:
            raise field_error(
                "AppManifest",
                ("name",),
                f"is too long for its replica names: {longest!r} would be {len(longest)} "
                f"characters; at most {MAX_ID_LENGTH} allowed",
                self.name,
            )
        return self

    def _check_service(self) -> None:
        service = self.service
        if service is not None and self.service_name in self.uses:
            raise field_error(
                "AppManifest", ("uses",), "an app cannot use its own service", self.uses
            )
        if service is None or self.workload.runtime != "docker":
            return
        published = {p.host for p in self.workload.ports if p.host is not None}
        for index, port in enumerate(service.ports):
            if port.port not in published:
                raise field_error(
                    "AppManifest",
                    ("service", "ports", str(index), "port"),
                    f"{port.port} is not published: a docker workload serves on a host "
                    "port, so add it to workload.ports as host",
                    port.port,
                )

    @property
    def is_daemon(self) -> bool:
        return self.mode == "daemon"

    @property
    def service_name(self) -> str | None:
        """The name other apps ``use`` this app by (the app's own name by default)."""
        if self.service is None:
            return None
        return self.service.name or self.name

    @property
    def update_strategy(self) -> Update:
        """The ``update`` block in force: the manifest's, else the fast defaults."""
        return self.update if self.update is not None else Update()


_COUNT = TypeAdapter(int)
_USES = TypeAdapter(Annotated[list[Identifier], Field(max_length=MAX_USES)])


def _binding_of(data: dict[str, Any]) -> tuple[dict[str, Any] | None, list[Any]]:
    """The (service binding, uses) the workload spec carries for raw manifest ``data``.
    A malformed block is not copied: the block's own field then reports the error, at the
    path the author wrote."""
    try:
        uses = _USES.validate_python(data.get("uses") or [])
    except ValidationError:
        uses = []
    raw = data.get("service")
    try:
        service = Service.model_validate(raw)
    except ValidationError:
        return None, uses
    binding: dict[str, Any] = {
        "name": service.name or data.get("name"),
        "ports": {p.name: p.port for p in service.ports},
    }
    if service.mqtt_group is not None:
        binding["mqtt_group"] = service.mqtt_group
    return binding, uses


def with_replicas(app: AppManifest, replicas: int) -> AppManifest:
    """``app`` scaled to ``replicas``, validated again (``model_copy`` would skip the checks
    that a daemon has no count and that the new replica names still fit 63 characters).
    Raises :class:`ProtocolError` naming ``replicas`` or ``name``."""
    return validate(AppManifest, {**app.model_dump(), "replicas": replicas})
