"""``edgefleet drain NODE [--wait]``: cordon a node and move its replicas away, following
the drain's progress to the end.

Mounted by :mod:`edgefleet_cli.main`, with the same flags,
output and exit codes as the other operator commands (:mod:`edgefleet_cli.options`): 0 drained (or,
without ``--wait``, the drain started), 1 refused — or a drain that cannot finish, its
stuck and waiting replicas listed with their reasons —, 3 timed out, 4 unreachable. It
talks only MQTT: the ``drain`` command, then the ``node`` command for progress.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgefleet_cli import views
from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, WaitTimedOut, refusal_lines
from edgefleet_cli.options import (
    DEFAULT_WAIT_S,
    Common,
    Output,
    emit,
    err,
    execute,
    operator_command,
    out,
    print_json,
    wait_timeout_option,
)

DRAIN_POLL_S = 0.5
STUCK_FOR_S = 2.0
"""A drain must say ``stuck`` this long before ``drain --wait`` gives up on it: between two
passes a drain can look stuck for a moment (a replacement reported, the next move not yet
started)."""


@operator_command
def drain(
    name: Annotated[str, typer.Argument(metavar="NODE", help="The node's name.")],
    common: Common,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the drain until the node is empty.")
    ] = False,
    max_unavailable: Annotated[
        int | None,
        typer.Option(
            "--max-unavailable",
            min=1,
            help="Move at most this many replicas of an app at a time (default: each app's "
            "disruption.max_unavailable, 1 unless the manifest says otherwise).",
            show_default=False,
        ),
    ] = None,
    timeout: Annotated[float | None, wait_timeout_option("for the drain to finish")] = None,
) -> None:
    """Cordon a node and move its replicas away, make-before-break (uncordon ends it)."""

    async def work() -> None:
        started = time.monotonic()
        args: dict[str, Any] = {"node": name}
        if max_unavailable is not None:
            args["max_unavailable"] = max_unavailable
        async with OperatorClient(common.settings()) as client:
            reply = await client.call("drain", args)
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            result = reply.result
            if not wait:
                emit(common.output, result, lambda: views.done_line("drain", result))
                return
            deadline = started + (timeout if timeout is not None else DEFAULT_WAIT_S)
            progress = await _follow_drain(client, name, result, deadline, common.output)
        _report_drain(common.output, name, progress, deadline - started)

    execute(work)


async def _follow_drain(
    client: OperatorClient, node: str, first: Mapping[str, Any], deadline: float, output: Output
) -> Mapping[str, Any]:
    """Poll the node's drain progress until drained, stuck for STUCK_FOR_S, or the deadline;
    a bar on stderr shows replicas moved of those there were."""
    progress: Mapping[str, Any] = first
    total = max(int(first.get("remaining") or 0), 1)
    bar = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("moved"), TimeElapsedColumn(), console=err(),
    )  # fmt: skip
    task = bar.add_task(f"draining {node}", total=total)
    stuck_since: float | None = None
    with bar:
        while True:
            left = int(progress.get("remaining") or 0)
            total = max(total, left)
            bar.update(
                task,
                total=total,
                completed=total - left,
                description=f"{node}: {progress.get('state')}",
            )
            now = time.monotonic()
            if progress.get("state") == "drained" or now >= deadline:
                return progress
            if progress.get("state") == "stuck":
                stuck_since = now if stuck_since is None else stuck_since
                if now - stuck_since >= STUCK_FOR_S:
                    return progress
            else:
                stuck_since = None
            await asyncio.sleep(min(DRAIN_POLL_S, max(deadline - now, 0.0)))
            reply = await client.call("node", {"node": node})
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            progress = (reply.result or {}).get("drain") or {**progress, "state": "cancelled"}
            if progress.get("state") == "cancelled":
                raise CommandRefused(f"error: the drain of {node} was cancelled (uncordoned)")


def _report_drain(output: Output, node: str, progress: Mapping[str, Any], waited_s: float) -> None:
    if output is Output.json:
        print_json(dict(progress))
    else:
        out().print(views.drain_view(progress))
    state = progress.get("state")
    if state == "drained":
        return
    if state == "stuck":
        raise CommandRefused(
            f"error: the drain of {node} cannot finish: {progress.get('remaining')} replica(s) "
            "have nowhere to go or wait for their app (they keep running; the drain goes on "
            "by itself when room appears):",
            *views.drain_lines(progress),
        )
    raise WaitTimedOut(
        f"error: timed out after {waited_s:g} s: {progress.get('remaining')} replica(s) still "
        f"on {node} ({state}); follow it with `edgefleet node {node}`"
    )
