"""The one error type of the wire contract.

Everything that crosses the boundary — identifiers, topics, payload bytes — is validated by
the protocol package, and every rejection is a :class:`ProtocolError` that names the field
and the reason. Callers catch exactly this type; anything else escaping a decode is a bug
(a hypothesis property test holds us to that).
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """A message, topic or identifier that does not meet the wire contract.

    ``field`` is a dotted path to the offending part (``"workloads.0.spec.image"``,
    ``"topic"``, ``"payload"``) and ``reason`` says what is wrong with it in words an
    operator can act on.
    """

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        """The error as a JSON-ready object, for events and command replies."""
        return {"field": self.field, "reason": self.reason}
