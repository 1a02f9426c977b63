"""Per-workload retry backoff: pure values and functions, owned by the agent loop.

One failing workload must never stop the others (STYLE.md §12): each failure becomes a
:class:`BackoffEntry` for that workload alone, and the planner skips the workload until
the entry says it is time again. An entry belongs to one spec hash, so a new spec for the
workload gets a fresh attempt at once. Permanent errors (no such image, command not found)
wait much longer than transient ones, but are still retried in case the gateway changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    base_s: float = 1.0
    cap_s: float = 60.0
    permanent_s: float = 300.0

    def delay(self, failures: int, *, permanent: bool) -> float:
        """Seconds to wait after the ``failures``-th consecutive failure (1-based)."""
        if permanent:
            return self.permanent_s
        return float(min(self.cap_s, self.base_s * 2.0 ** max(0, min(failures - 1, 30))))


@dataclass(frozen=True, slots=True)
class BackoffEntry:
    """The last failure (or health restart) of one workload with one spec hash."""

    spec_hash: str
    failures: int
    next_attempt_at: float
    action: str
    """What happened, as a phrase: ``"start failed"``, ``"restarted: health check failing"``."""
    message: str
    permanent: bool = False
    delay_s: float = 0.0

    def blocks(self, spec_hash: str, now: float) -> bool:
        """Whether an action on ``spec_hash`` must still wait."""
        return self.spec_hash == spec_hash and now < self.next_attempt_at

    def describe(self) -> str:
        """Stable text for ``reported`` (no countdown, so the report does not churn)."""
        times = "" if self.failures == 1 else f" ({self.failures} times in a row)"
        kind = " (permanent error)" if self.permanent else ""
        return f"{self.action}{kind}{times}: {self.message}; next attempt after {self.delay_s:g} s"


def after_failure(
    previous: BackoffEntry | None,
    *,
    spec_hash: str,
    action: str,
    message: str,
    permanent: bool,
    now: float,
    policy: BackoffPolicy,
) -> BackoffEntry:
    """The entry after one more failure: the count only carries over for the same hash."""
    failures = previous.failures + 1 if previous and previous.spec_hash == spec_hash else 1
    delay = policy.delay(failures, permanent=permanent)
    return BackoffEntry(
        spec_hash=spec_hash,
        failures=failures,
        next_attempt_at=now + delay,
        action=action,
        message=message,
        permanent=permanent,
        delay_s=delay,
    )


def next_due(book: Mapping[str, BackoffEntry], now: float) -> float | None:
    """The earliest future retry time in ``book``, or ``None`` when nothing waits."""
    future = [e.next_attempt_at for e in book.values() if e.next_attempt_at > now]
    return min(future) if future else None
