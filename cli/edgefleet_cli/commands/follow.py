"""What ``deploy --wait`` decides beyond "every replica runs": follow the new revision's
rollout to its end, and give up early when no node qualifies.

Pure (no I/O): :func:`verdict` looks at the latest retained app status and rollout status
and says whether to go on waiting, stop (done), or fail with lines for stderr.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgefleet_protocol import AppStatus

STATIC_REASONS = (
    "runtime ", "arch ", "site ", "region ", "no region", "label ", "no sensor ",
    "no accelerator ",
)  # fmt: skip
"""Placement reasons about what a node *is* (placement/filters.py): they do not go away
while the fleet stays as it is, unlike offline, cordoned, resources or ports."""


@dataclass(frozen=True, slots=True)
class Verdict:
    done: bool = False
    failure: tuple[str, ...] = ()


def never_placed(status: AppStatus | None) -> list[str]:
    """The reasons, when none of the app's replicas is placed and every node was turned down
    for what it is (no node qualifies); else ``[]``."""
    if status is None or status.desired == 0 or status.placed > 0 or not status.unplaced:
        return []
    reasons = [r for u in status.unplaced for r in u.reasons]
    texts = [r.split(": ", 1)[1] if ": " in r else r for r in reasons]
    if not texts or not all(t.startswith(STATIC_REASONS) for t in texts):
        return []
    return reasons


def verdict(
    result: Mapping[str, Any],
    status: AppStatus | None,
    rollout: Mapping[str, Any] | None,
    *,
    fresh: bool,
    converged: bool,
) -> Verdict:
    """After the deploy reply ``result``: wait on, stop, or fail (with stderr lines)."""
    name = result.get("app")
    if fresh and (reasons := never_placed(status)):
        lines = [f"error: no node qualifies for {name}; nothing can be placed:"]
        return Verdict(failure=(*lines, *(f"  - {r}" for r in reasons)))
    revision = result.get("revision")
    if "rollout" not in result or not isinstance(revision, int):
        return Verdict(done=converged)
    if rollout is None or int(rollout.get("revision", 0)) < revision:
        return Verdict()
    if int(rollout["revision"]) > revision:
        return Verdict(failure=(f"error: revision {revision} of {name} was superseded by "
                                f"revision {rollout['revision']} before it finished",))  # fmt: skip
    phase = rollout.get("phase")
    if phase in ("failed", "reverting", "reverted"):
        lines = [f"error: revision {revision} of {name} {phase}: "
                 f"{(rollout.get('reasons') or ['no reason given'])[-1]}"]  # fmt: skip
        lines += [f"  {r}: {why}" for r, why in sorted((rollout.get("failed") or {}).items())]
        return Verdict(failure=tuple(lines))
    return Verdict(done=phase == "succeeded" and converged)
