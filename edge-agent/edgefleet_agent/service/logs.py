"""Logs on demand: the agent's answer to a ``LogsRequest`` on its own ``logs`` topic.

Called by the agent's inbound loop for every message on ``nodes/{site}/{node}/logs``
(docs/protocol.md, "Logs on demand"). Each accepted request gets a task of its own that
sends :class:`~edgefleet_protocol.logs.LogsChunk` messages to the request's reply topic:
the newest ``tail`` lines, then (``follow``) new lines every ``poll_s`` until ``follow_s``
has passed, the workload is gone, or the agent stops.

Order of checks, each refusal answered where it can be: retained (dropped: a stale request
must not stream again), the payload (dropped if its ``reply_to`` cannot be read; else a
``bad_request`` chunk), the reply topic (dropped unless it is this node's logs reply
shape: there is nowhere we may answer), the workload (``not_found``), its runtime
(``unsupported`` when it keeps no log), the number of follows running (``busy``).
A refusal is always one ``done`` chunk at once, so a client never waits for nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from edgefleet_protocol import LogsChunk, LogsRequest, ProtocolError, decode
from edgefleet_protocol.logs import (
    MAX_CHUNK_LINES,
    LogsEnd,
    LogsError,
    LogsErrorCode,
    check_logs_reply_to,
)
from edgefleet_protocol.session import Publication, Session
from edgefleet_protocol.topics import REPLY_RULE
from edgefleet_protocol.wire import InboundMessage

from edgefleet_agent.core.runtime import LogRead, LogReader, Runtime, RuntimeError_
from edgefleet_agent.settings import AgentSettings

log = logging.getLogger("edgefleet.agent")

MAX_FOLLOWS = 4
"""Follows served at once; each polls a log every ``poll_s``, so this bounds the cost."""


class LogsServer:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        session: Session,
        runtimes: Mapping[str, Runtime],
        workloads: Callable[[], dict[str, str]],
        poll_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        """``workloads()`` maps each workload of the desired state in force to the name of
        its runtime."""
        self._root, self._site, self._node = settings.root, settings.site, settings.node
        self._session = session
        self._runtimes = runtimes
        self._workloads = workloads
        self._poll_s = poll_s
        self._monotonic = monotonic
        self._tasks: set[asyncio.Task[None]] = set()
        self._follows = 0

    def request(self, message: InboundMessage) -> None:
        """Take one request from the inbound loop; never raises, never blocks it."""
        if message.retain:
            log.info("ignored a retained logs request: requests are never retained")
            return
        try:
            req = decode(LogsRequest, message.payload)
        except ProtocolError as exc:
            self._refuse_unreadable(message.payload, exc)
            return
        try:
            check_logs_reply_to(self._root, req.reply_to, site=self._site, node=self._node)
        except ProtocolError as exc:
            log.info("dropped logs request %s: %s", req.request_id, exc)
            return
        self._spawn(self._serve(req), req.request_id)

    def _refuse_unreadable(self, payload: bytes, exc: ProtocolError) -> None:
        """A broken request whose id and reply topic are still readable gets an answer."""
        try:
            raw = json.loads(payload)
            rid, reply_to = str(raw["request_id"])[:128], str(raw["reply_to"])
            check_logs_reply_to(self._root, reply_to, site=self._site, node=self._node)
            workload = str(raw.get("workload", "unknown"))
            req = LogsRequest.model_construct(request_id=rid, reply_to=reply_to, workload=workload)
        except (ValueError, KeyError, TypeError, ProtocolError):
            log.info("dropped an unreadable logs request: %s", exc)
            return
        self._spawn(self._error(req, 0, "bad_request", str(exc)), rid)

    def _spawn(self, work: Coroutine[Any, Any, None], rid: str) -> None:
        task = asyncio.create_task(work, name=f"agent-logs-{rid[:32]}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """End every stream (the agent stops); their clients see no more chunks."""
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # -- one request ----------------------------------------------------------------------

    async def _serve(self, req: LogsRequest) -> None:
        try:
            await self._stream(req)
        except asyncio.CancelledError:
            raise
        except Exception:  # one request must never take the agent down
            log.exception("logs request %s failed", req.request_id)

    async def _stream(self, req: LogsRequest) -> None:
        reader = self._reader(req)
        if isinstance(reader, tuple):
            code, text = reader
            await self._error(req, 0, code, text)
            return
        if req.follow and self._follows >= MAX_FOLLOWS:
            await self._error(req, 0, "busy", f"{MAX_FOLLOWS} follows already run on this node")
            return
        try:
            first = await reader.read_log(req.workload, tail=req.tail, cursor=req.cursor)
        except RuntimeError_ as exc:
            await self._error(req, 0, "not_found", exc.message)
            return
        if not req.follow or first.gone:
            await self._send(req, 0, first, end="stopped" if first.gone else "complete")
            return
        self._follows += 1
        try:
            await self._follow(req, reader, first)
        finally:
            self._follows -= 1

    async def _follow(self, req: LogsRequest, reader: LogReader, first: LogRead) -> None:
        seq = await self._send(req, 0, first, end=None)
        cursor = first.cursor
        deadline = self._monotonic() + req.follow_s
        while True:
            await asyncio.sleep(max(0.0, min(self._poll_s, deadline - self._monotonic())))
            try:
                read = await reader.read_log(req.workload, tail=0, cursor=cursor)
            except RuntimeError_ as exc:
                log.info("logs of %s: %s", req.workload, exc.message)
                read = LogRead([], cursor, gone=True)
            cursor = read.cursor
            if read.gone:
                await self._send(req, seq, read, end="stopped")
                return
            if self._monotonic() >= deadline:
                await self._send(req, seq, read, end="expired")
                return
            if read.lines:
                seq = await self._send(req, seq, read, end=None)

    def _reader(self, req: LogsRequest) -> LogReader | tuple[LogsErrorCode, str]:
        workloads = self._workloads()
        runtime_name = workloads.get(req.workload)
        if runtime_name is None:
            here = ", ".join(sorted(workloads)[:20]) or "none"
            return (
                "not_found",
                f"no workload {req.workload!r} on node {self._node} (workloads here: {here})",
            )
        runtime = self._runtimes.get(runtime_name)
        if not isinstance(runtime, LogReader):
            return "unsupported", f"the {runtime_name} runtime keeps no log of {req.workload}"
        return runtime

    # -- publishing -----------------------------------------------------------------------

    async def _send(self, req: LogsRequest, seq: int, read: LogRead, *, end: LogsEnd | None) -> int:
        """Publish ``read``'s lines in chunks from ``seq`` on; the last carries ``end`` (and
        ``done``) when given. Returns the next ``seq``."""
        batches = [
            read.lines[i : i + MAX_CHUNK_LINES] for i in range(0, len(read.lines), MAX_CHUNK_LINES)
        ] or [[]]
        for i, lines in enumerate(batches):
            last = i == len(batches) - 1
            if not lines and not (last and end is not None):
                continue
            chunk = LogsChunk(
                request_id=req.request_id,
                node=self._node,
                workload=req.workload,
                seq=seq,
                lines=lines,
                cursor=read.cursor,
                done=last and end is not None,
                end=end if last else None,
            )
            await self._publish(req.reply_to, chunk)
            seq += 1
        return seq

    async def _error(self, req: LogsRequest, seq: int, code: LogsErrorCode, text: str) -> None:
        chunk = LogsChunk(
            request_id=req.request_id,
            node=self._node,
            workload=req.workload,
            seq=seq,
            done=True,
            end="error",
            error=LogsError(code=code, message=text[:2048]),
        )
        await self._publish(req.reply_to, chunk)

    async def _publish(self, topic: str, chunk: LogsChunk) -> None:
        payload = chunk.model_dump_json().encode()
        await self._session.publish(
            Publication(topic=topic, payload=payload, qos=REPLY_RULE.qos, retain=REPLY_RULE.retain)
        )
