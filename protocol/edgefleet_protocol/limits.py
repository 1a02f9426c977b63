"""Rate limits both sides apply to what arrives: a flood is counted, never echoed.

Pure (the caller passes ``now``). Who uses it: the orchestrator's command intake (per
client), its rejection events and log lines (per node), and the agent's events and log
lines (per kind). Why it exists: 20,000 commands in a second stalled the orchestrator for
45 s, and a flood of bad desired documents made an agent write 16,000 log lines (issue
#12). Each limiter lets the first ``limit`` things per key through in a window of
``window_s`` seconds and counts the rest; when a window with refusals has ended,
:meth:`WindowLimiter.summaries` hands out one ``(key, refused)`` line for it, which the
caller publishes as one event and logs as one line.

The number of keys is bounded too (a hostile peer can invent keys): beyond ``max_keys``
they share the key :data:`OTHERS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

OTHERS: Final = "*others*"
"""The key every key beyond ``max_keys`` shares."""


@dataclass(slots=True)
class _Window:
    started: float
    used: int = 0
    refused: int = 0


class WindowLimiter:
    """At most ``limit`` per key per fixed window of ``window_s`` seconds.

    Invariant: ``_windows`` holds at most ``max_keys + 1`` running windows and ``_ended``
    at most ``max_keys + 1`` unreported counts, whatever keys a peer invents.
    """

    def __init__(self, limit: int, window_s: float, *, max_keys: int = 1000) -> None:
        if limit < 1 or window_s <= 0 or max_keys < 1:
            raise ValueError("limit and max_keys must be >= 1 and window_s > 0")
        self.limit = limit
        self.window_s = window_s
        self.max_keys = max_keys
        self._windows: dict[str, _Window] = {}
        self._ended: dict[str, int] = {}
        self.refused_total = 0

    def allow(self, key: str, now: float) -> bool:
        """Whether one more thing for ``key`` may pass now (else it is counted)."""
        window = self._windows.get(key)
        if window is not None and now - window.started >= self.window_s:
            self._end(key)
            window = None
        if window is None:
            if len(self._windows) >= self.max_keys and key != OTHERS:
                self._expire(now)
                if len(self._windows) >= self.max_keys:
                    key = OTHERS
                    window = self._windows.get(OTHERS)
            if window is None:
                window = self._windows[key] = _Window(now)
        if window.used < self.limit:
            window.used += 1
            return True
        window.refused += 1
        self.refused_total += 1
        return False

    def summaries(self, now: float) -> list[tuple[str, int]]:
        """One ``(key, refused)`` for every key whose window with refusals has ended (each
        reported once), in key order."""
        self._expire(now)
        out, self._ended = self._ended, {}
        return sorted(out.items())

    def _expire(self, now: float) -> None:
        for key in [k for k, w in self._windows.items() if now - w.started >= self.window_s]:
            self._end(key)

    def _end(self, key: str) -> None:
        window = self._windows.pop(key)
        if window.refused:
            if key not in self._ended and len(self._ended) >= self.max_keys:
                key = OTHERS
            self._ended[key] = self._ended.get(key, 0) + window.refused


__all__ = ["OTHERS", "WindowLimiter"]
