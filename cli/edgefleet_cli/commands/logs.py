"""``edgefleet logs APP``: a workload's log lines, read from the agent that runs it.

Finds the app's replicas with the ``app`` command (where each runs: node and site), then
asks each chosen replica's agent directly with a ``LogsRequest`` on
``nodes/{site}/{node}/logs`` and prints the chunks it answers on this operator's reply
topic (docs/protocol.md, "Logs on demand"). ``--follow`` keeps streaming until Ctrl-C or
SIGTERM: when an agent ends a follow after its ``follow_s`` the command asks again from
the last cursor, so no line is lost or repeated. With several replicas each line is
prefixed with its replica's name.

Exit codes as every command: 1 when an agent refuses (no such workload, a runtime without
logs), 4 when an agent does not answer within ``--timeout`` (its node is offline).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from edgefleet_protocol import LogsChunk, LogsRequest, ProtocolError, decode
from edgefleet_protocol.logs import MAX_FOLLOW_S, MAX_TAIL_LINES, logs_reply_to
from edgefleet_protocol.session import Publication

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, Unreachable, refusal_lines
from edgefleet_cli.options import (
    Common,
    Output,
    execute,
    operator_command,
    stop_on_signals,
)


@dataclass(frozen=True, slots=True)
class Target:
    replica: str
    node: str
    site: str


def pick_targets(
    app: str, status: dict[str, Any] | None, *, node: str | None, replica: str | None
) -> list[Target]:
    """The replicas to read, from the ``app`` reply's status; refusals say what exists."""
    replicas = [
        r
        for r in (status or {}).get("replicas", [])
        if r.get("node") and r.get("site")  # unplaced replicas have no log anywhere
    ]
    if not replicas:
        raise CommandRefused(f"error: app {app} has no placed replica: no log to read yet")
    chosen = [
        Target(r["name"], r["node"], r["site"])
        for r in replicas
        if (node is None or r["node"] == node) and (replica is None or r["name"] == replica)
    ]
    if not chosen:
        where = ", ".join(f"{r['name']} on {r['node']}" for r in replicas)
        wanted = [f"--node {node}" if node else "", f"--replica {replica}" if replica else ""]
        raise CommandRefused(
            f"error: app {app} has no replica matching {' and '.join(w for w in wanted if w)} "
            f"(replicas: {where})"
        )
    return chosen


class Streams:
    """The requests in flight, one per target; prints what their chunks carry."""

    def __init__(
        self, client: OperatorClient, *, tail: int, follow: bool, output: Output, prefix: bool
    ) -> None:
        self._client = client
        self._tail, self._follow = tail, follow
        self._output = output
        self._prefix = prefix
        self.failed = False

    async def read(self, target: Target, stop: asyncio.Event) -> None:
        cursor: str | None = None
        while True:
            end, cursor = await self._one(target, cursor)
            if end != "expired" or stop.is_set():
                return

    async def _one(self, target: Target, cursor: str | None) -> tuple[str | None, str | None]:
        settings = self._client.settings
        rid = f"{settings.user}-{uuid.uuid4().hex[:16]}"
        reply_to = logs_reply_to(settings.root, settings.user, target.site, target.node, rid)
        request = LogsRequest(
            request_id=rid,
            reply_to=reply_to,
            workload=target.replica,
            tail=self._tail,
            follow=self._follow,
            follow_s=MAX_FOLLOW_S,
            cursor=cursor,
        )
        queue = self._client.streams.setdefault(reply_to, asyncio.Queue())
        try:
            sent = await self._client.session.publish(
                Publication(
                    topic=self._client.topics.node_logs(target.site, target.node),
                    payload=request.model_dump_json(exclude_none=True).encode(),
                )
            )
            if not sent:
                raise Unreachable("error: lost the broker while asking for logs: retry")
            return await self._receive(target, queue, cursor)
        finally:
            self._client.streams.pop(reply_to, None)

    async def _receive(
        self, target: Target, queue: asyncio.Queue[Any], cursor: str | None
    ) -> tuple[str | None, str | None]:
        timeout = self._client.settings.timeout_s
        first = True
        while True:
            try:
                # The first chunk must come within the timeout; a follow may then be quiet.
                async with asyncio.timeout(timeout if first else None):
                    message = await queue.get()
            except TimeoutError:
                raise Unreachable(
                    f"error: node {target.node} did not answer within {timeout:g} s: is its "
                    "agent online? (edgefleet nodes)"
                ) from None
            first = False
            try:
                chunk = decode(LogsChunk, message.payload)
            except ProtocolError as exc:
                raise CommandRefused(
                    f"error: unreadable logs chunk from {target.node}: {exc}"
                ) from None
            self._print(target, chunk)
            cursor = chunk.cursor or cursor
            if chunk.done:
                if chunk.error is not None:
                    self.failed = True
                    typer.echo(
                        f"error: {target.replica} on {target.node}: {chunk.error.code}: "
                        f"{chunk.error.message}",
                        err=True,
                    )
                elif chunk.end == "stopped":
                    typer.echo(f"{target.replica} on {target.node} stopped", err=True)
                return chunk.end, cursor

    def _print(self, target: Target, chunk: LogsChunk) -> None:
        for line in chunk.lines:
            if self._output is Output.json:
                row = {"replica": target.replica, "node": target.node, "line": line}
                typer.echo(json.dumps(row))
            else:
                typer.echo(f"[{target.replica}] {line}" if self._prefix else line)


@operator_command
def logs(
    app: Annotated[str, typer.Argument(help="The app whose replicas' logs to read.")],
    common: Common,
    node: Annotated[
        str | None, typer.Option("--node", help="Only the replica(s) on this node.")
    ] = None,
    replica: Annotated[
        str | None, typer.Option("--replica", help="Only this replica (see edgefleet app APP).")
    ] = None,
    tail: Annotated[
        int,
        typer.Option("--tail", min=0, max=MAX_TAIL_LINES, help="How many of the newest lines."),
    ] = 100,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
) -> None:
    """Print a workload's log lines, straight from the agent that runs it."""

    async def work() -> None:
        stop = stop_on_signals()
        async with OperatorClient(common.settings()) as client:
            reply = await client.call("app", {"app": app})
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            targets = pick_targets(app, reply.result.get("status"), node=node, replica=replica)
            streams = Streams(
                client, tail=tail, follow=follow, output=common.output, prefix=len(targets) > 1
            )
            readers = [asyncio.create_task(streams.read(t, stop)) for t in targets]
            stopper = asyncio.create_task(stop.wait())
            tasks: list[asyncio.Task[Any]] = [*readers, stopper]
            try:
                pending: set[asyncio.Task[Any]] = set(readers)
                while pending and not stop.is_set():
                    done, _ = await asyncio.wait(
                        [*pending, stopper], return_when=asyncio.FIRST_COMPLETED
                    )
                    for task in done - {stopper}:
                        pending.discard(task)
                        task.result()  # an Unreachable or refusal of any stream ends all
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if streams.failed:
            raise CommandRefused()

    execute(work, interrupted=0)
