"""The base every wire model shares: frozen, ``"v": 1``, unknown fields ignored.

Unknown fields are ignored rather than refused so a newer peer can add fields without
breaking an older one (forward compatibility); missing or ill-typed required fields reject
the message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

PROTOCOL_VERSION: Literal[1] = 1


class WireModel(BaseModel):
    """A frozen payload model that ignores unknown fields."""

    # allow_inf_nan=False: a JSON number too large for a float (1e400) becomes inf, which
    # would encode back as null; refuse it like any other out-of-range value.
    model_config = ConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, allow_inf_nan=False
    )


class Envelope(WireModel):
    """A top-level payload: carries the protocol version."""

    v: Literal[1] = PROTOCOL_VERSION


FORBID_UNKNOWN = "forbid_unknown"
"""Validation-context flag: refuse unknown fields (used for hand-written manifests)."""


class StrictSpec(BaseModel):
    """Specs authored by people (workload specs, manifests).

    On the wire they ignore unknown fields like every payload (a newer orchestrator may add
    one), but when validated with ``context={FORBID_UNKNOWN: True}`` — as the orchestrator
    does for manifests — an unknown key is an error, so a typo such as ``memroy_mb`` is
    refused instead of silently becoming a default.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _refuse_unknown_when_asked(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get(FORBID_UNKNOWN):
            known = set(cls.model_fields)
            known.update(f.alias for f in cls.model_fields.values() if f.alias)
            unknown = sorted(str(k) for k in data if k not in known)
            if unknown:
                raise ValueError(
                    f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}"
                )
        return data
