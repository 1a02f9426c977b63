"""Logs on demand: the request an operator sends a node's agent, the chunks it answers
with, and where those chunks may go.

Who uses it: ``edgefleet logs`` (the CLI) publishes a :class:`LogsRequest` on
``<root>/nodes/{site}/{node}/logs``; the agent on that node answers with
:class:`LogsChunk` messages on the request's ``reply_to``, which must be
``<root>/replies/<user>/logs/{site}/{node}/<id>`` (:func:`check_logs_reply_to`). That shape
is what lets the broker ACL say "lines go only to an operator's reply topic": an agent may
write only ``replies/+/logs/<its site>/<its node>/#``, and each operator reads only its own
``replies/<user>/#``. Pure: values in, values out (docs/protocol.md, "Logs on demand").
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from edgefleet_protocol.base import Envelope, WireModel
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import Identifier, validate_id
from edgefleet_protocol.topics import validate_root

MAX_TAIL_LINES = 10_000
MAX_FOLLOW_S = 600.0
MAX_LINE_CHARS = 8192
"""Longer lines are cut (and end with ``…``): one chunk stays well under the payload limit."""
MAX_CHUNK_LINES = 200

LogsEnd = Literal["complete", "expired", "stopped", "error"]
"""Why a stream ended: every line asked for was sent (``complete``), a follow ran for its
``follow_s`` (``expired``: ask again with the chunk's ``cursor`` to go on), the workload
or the agent stopped (``stopped``), or the request was refused (``error``)."""

LogsErrorCode = Literal["not_found", "bad_request", "unsupported", "busy"]


class LogsRequest(Envelope):
    """What an operator asks a node's agent for."""

    request_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    reply_to: str = Field(min_length=1, max_length=512)
    workload: Identifier
    tail: int = Field(default=100, ge=0, le=MAX_TAIL_LINES)
    follow: bool = False
    follow_s: float = Field(default=60.0, gt=0, le=MAX_FOLLOW_S)
    cursor: str | None = Field(default=None, max_length=64)
    """Go on from where an earlier stream's last chunk said (``tail`` is then ignored)."""


class LogsError(WireModel):
    code: LogsErrorCode
    message: str = Field(max_length=2048)


class LogsChunk(Envelope):
    """One batch of lines, in order (``seq`` counts from 0 per request). The last chunk of
    a stream has ``done: true`` and an ``end``; a refused request is one such chunk with
    ``error``. ``cursor`` is opaque: hand it back in a new request to continue."""

    request_id: str = Field(min_length=1, max_length=128)
    node: Identifier
    workload: Identifier
    seq: int = Field(ge=0)
    lines: list[str] = Field(default_factory=list, max_length=MAX_CHUNK_LINES)
    cursor: str | None = Field(default=None, max_length=64)
    done: bool = False
    end: LogsEnd | None = None
    error: LogsError | None = None


def logs_reply_to(root: str, user: str, site: str, node: str, request_id: str) -> str:
    """The reply topic an operator names for a logs request to ``site``/``node``."""
    root = validate_root(root)
    for value, kind in ((site, "site"), (node, "node")):
        validate_id(value, kind=kind)
    if not user or any(c in user for c in "/+#\0"):
        raise ProtocolError("user", f"{user!r} cannot be one topic level")
    return f"{root}/replies/{user}/logs/{site}/{node}/{request_id}"


def check_logs_reply_to(root: str, reply_to: str, *, site: str, node: str) -> str:
    """``reply_to`` if it is ``<root>/replies/<user>/logs/<site>/<node>/<id>`` for this
    node, else :class:`ProtocolError` (the agent answers nothing it may not send)."""
    prefix = f"{validate_root(root)}/replies/"
    if not reply_to.startswith(prefix) or any(c in reply_to for c in "+#\0"):
        raise ProtocolError("reply_to", f"must be a plain topic under {prefix!r}")
    levels = reply_to[len(prefix) :].split("/")
    if len(levels) < 5 or not all(levels) or levels[1:4] != ["logs", site, node]:
        raise ProtocolError(
            "reply_to", f"must be {prefix}<user>/logs/{site}/{node}/<id> for this node"
        )
    return reply_to


def clip_line(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 1] + "…"
