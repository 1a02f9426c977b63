"""The per-node compliance report: what a gateway enforces and whether what it runs is
what it was told to run.

Written by each agent, retained, on ``nodes/{site}/{node}/compliance`` (on every connect and
whenever it changes), read by the orchestrator (which adds what only it can see: an
observed generation above any it issued) and by ``edgefleet compliance``.
"""

from __future__ import annotations

from pydantic import Field

from edgefleet_protocol.base import Envelope, WireModel
from edgefleet_protocol.bounds import Counter, Timestamp
from edgefleet_protocol.ids import Identifier
from edgefleet_protocol.signing import KeyIdText

MAX_LISTED = 256


class Refusal(WireModel):
    """The last desired document the gateway refused, and why."""

    ts: Timestamp
    field: str = Field(max_length=128)
    reason: str = Field(max_length=4096)


class ComplianceReport(Envelope):
    """``compliant`` is true when the held document breaks no rule of the local policy and
    nothing runs that is not desired (``violations`` and ``drift`` empty)."""

    node: Identifier
    site: Identifier
    ts: Timestamp
    agent_version: str = Field(max_length=64)
    policy_hash: str | None = Field(default=None, max_length=80)
    signed: bool = False
    key_id: KeyIdText | None = None
    generation: Counter | None = None
    violations: list[str] = Field(default_factory=list, max_length=MAX_LISTED)
    drift: list[str] = Field(default_factory=list, max_length=MAX_LISTED)
    last_refusal: Refusal | None = None
    compliant: bool
