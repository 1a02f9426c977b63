"""The application manifest itself, and how its replicas are counted and named."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from edgefleet_protocol.base import StrictSpec
from edgefleet_protocol.codec import validate
from edgefleet_protocol.commands import MAX_REPLICAS
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.manifest.blocks import (
    Autoscale,
    Disconnect,
    Disruption,
    Placement,
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

    @field_validator("labels")
    @classmethod
    def _labels_shape(cls, labels: dict[str, str]) -> dict[str, str]:
        return check_labels(labels)

    @model_validator(mode="before")
    @classmethod
    def _autoscale_starts_at_min(cls, data: Any) -> Any:
        # An autoscaled app may leave its count out: it starts at the autoscaler's minimum.
        if isinstance(data, dict) and data.get("replicas") is None:
            auto = data.get("autoscale")
            if isinstance(auto, dict) and data.get("mode", "replicated") == "replicated":
                low = auto.get("min", 1)
                if isinstance(low, int) and not isinstance(low, bool):
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

    @property
    def is_daemon(self) -> bool:
        return self.mode == "daemon"


def with_replicas(app: AppManifest, replicas: int) -> AppManifest:
    """``app`` scaled to ``replicas``, validated again (``model_copy`` would skip the checks
    that a daemon has no count and that the new replica names still fit 63 characters).
    Raises :class:`ProtocolError` naming ``replicas`` or ``name``."""
    return validate(AppManifest, {**app.model_dump(), "replicas": replicas})
