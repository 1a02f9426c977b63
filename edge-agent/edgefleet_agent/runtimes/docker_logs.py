"""Reading a container's log (stdout and stderr, as ``docker logs``) for logs on demand.

Called by :meth:`DockerRuntime.read_log` with the container object, in a worker thread
(the SDK blocks). Docker keeps the log; we ask for it with timestamps and keep, as the
cursor, ``d:<nanoseconds>`` of the last line sent: a follow asks for lines since that
second and drops those not newer, so nothing is sent twice.
"""

from __future__ import annotations

import calendar
import time
from typing import Any

from edgefleet_protocol.logs import clip_line

from edgefleet_agent.core.runtime import LogRead, PermanentRuntimeError


def stamp_ns(stamp: str) -> int:
    """RFC 3339 with nanoseconds (``2026-12-05T22:20:01.123456789Z``) to Unix nanoseconds."""
    whole, _, fraction = stamp.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S"))
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def split(raw: bytes) -> list[tuple[int, str]]:
    """``(nanoseconds, text)`` of each complete, timestamped line."""
    out = []
    for line in raw.decode("utf-8", "replace").split("\n"):
        stamp, sep, text = line.partition(" ")
        if not sep:
            continue
        try:
            out.append((stamp_ns(stamp), clip_line(text.rstrip("\r"))))
        except ValueError:
            continue
    return out


def cursor_ns(cursor: str) -> int:
    if not cursor.startswith("d:") or not cursor[2:].isdigit():
        raise PermanentRuntimeError(f"cursor {cursor!r} is not a container log position")
    return int(cursor[2:])


def read(container: Any, *, tail: int, cursor: str | None) -> LogRead:
    """The newest ``tail`` lines, or the lines after ``cursor``."""
    if cursor is None:
        # One line more than wanted when none is: the cursor must stand after the newest.
        lines = split(container.logs(stdout=True, stderr=True, timestamps=True, tail=max(tail, 1)))
        last = lines[-1][0] if lines else 0
        return LogRead([text for _, text in lines[-tail:]] if tail else [], f"d:{last}")
    after = cursor_ns(cursor)
    raw = container.logs(stdout=True, stderr=True, timestamps=True, since=after / 1e9)
    fresh = [(ns, text) for ns, text in split(raw) if ns > after]
    last = fresh[-1][0] if fresh else after
    return LogRead([text for _, text in fresh], f"d:{last}")
