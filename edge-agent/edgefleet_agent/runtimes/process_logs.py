"""Reading a process workload's capped log file for logs on demand.

Called by :meth:`ProcessRuntime.read_log` (in a worker thread: these are blocking file
reads). The cursor is ``p:<byte offset>`` of the first byte not yet sent; only complete
lines are returned, so a line being written is sent once it ends. When the log was cut to
its newest half (``cap_log``) the file is shorter than the cursor: reading goes on from
the cut's end, and lines written in between are skipped (docs/protocol.md says so).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgefleet_protocol.logs import MAX_CHUNK_LINES, clip_line

from edgefleet_agent.core.runtime import LogRead, PermanentRuntimeError

BLOCK = 64 * 1024
MAX_BATCH_BYTES = 256 * 1024
"""At most this much is read per follow call: a runaway writer is sent in bounded steps."""
MAX_BATCH_LINES = MAX_CHUNK_LINES * 10


def cursor_of(offset: int) -> str:
    return f"p:{offset}"


def offset_of(cursor: str) -> int:
    if not cursor.startswith("p:") or not cursor[2:].isdigit():
        raise PermanentRuntimeError(f"cursor {cursor!r} is not a process log position")
    return int(cursor[2:])


def _lines(data: bytes) -> list[str]:
    return [clip_line(line.decode("utf-8", "replace")) for line in data.split(b"\n")]


def read_tail(path: Path, tail: int) -> LogRead:
    """The newest ``tail`` complete lines, and a cursor after the last of them."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            data = f.read(0)
            end = size
            start = size
            # Read backwards block by block until tail + 1 newlines are in hand (one more
            # than the lines wanted, to know where the first wanted line starts).
            while start > 0 and data.count(b"\n") <= tail:
                start = max(0, start - BLOCK)
                f.seek(start)
                data = f.read(end - start)
    except FileNotFoundError:
        raise PermanentRuntimeError(f"no log file {path}") from None
    complete = data[: data.rfind(b"\n") + 1] if b"\n" in data else b""
    cursor = cursor_of(start + len(complete))
    if tail == 0 or not complete:
        return LogRead([], cursor)
    lines = _lines(complete[:-1])
    if start > 0:
        lines = lines[1:]  # the first piece started mid-line
    return LogRead(lines[-tail:], cursor)


def read_after(path: Path, cursor: str) -> LogRead:
    """The complete lines written after ``cursor`` (at most a bounded batch)."""
    offset = offset_of(cursor)
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < offset:  # cut by cap_log: go on from the end of what was kept
                return LogRead([], cursor_of(size))
            f.seek(offset)
            data = f.read(min(size - offset, MAX_BATCH_BYTES))
    except FileNotFoundError:
        return LogRead([], cursor, gone=True)
    cut = data.rfind(b"\n")
    if cut < 0:
        if len(data) >= MAX_BATCH_BYTES:  # one line longer than a batch: send it cut
            return LogRead(_lines(data), cursor_of(offset + len(data)))
        return LogRead([], cursor)
    lines = _lines(data[:cut])
    return LogRead(lines[:MAX_BATCH_LINES], cursor_of(offset + cut + 1))
