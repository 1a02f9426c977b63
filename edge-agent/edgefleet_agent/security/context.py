"""What the gateway enforces, bundled: its trust state (signed documents), its own
compliance policy and its sealing key (sealed secrets). Each part is optional: none of them
is the development setup (unsigned mode, no policy, no secrets)."""

from __future__ import annotations

from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol.policy import CompliancePolicy
from edgefleet_protocol.sealing import public_text

from edgefleet_agent.security.trust import TrustState


@dataclass(frozen=True)
class Security:
    trust: TrustState | None = None
    policy: CompliancePolicy | None = None
    sealing_key: X25519PrivateKey | None = None

    @property
    def sealing_public(self) -> str | None:
        """The public half, published in capabilities for the orchestrator to seal to."""
        return public_text(self.sealing_key) if self.sealing_key is not None else None
