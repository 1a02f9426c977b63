"""``edgefleet deploy FILE [--wait]``: create or update an app, and optionally follow it
until every replica runs (a progress bar on stderr, the result on stdout).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from edgefleet_protocol import AppStatus, ProtocolError, Topics, validate_id
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgefleet_cli import views
from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, WaitTimedOut, read_manifest, refusal_lines
from edgefleet_cli.options import (
    DEFAULT_WAIT_S,
    BrokerOpt,
    Common,
    ConfigOpt,
    Output,
    OutputOpt,
    RootOpt,
    UserOpt,
    err,
    execute,
    out,
    print_json,
)


def deploy(
    file: Annotated[
        Path, typer.Argument(metavar="FILE", help="Manifest, YAML or JSON ('-': stdin).")
    ],
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the app until every replica runs.")
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            help="Seconds to wait: for the reply, and with --wait for every replica to run "
            f"(default: the configured reply timeout; {DEFAULT_WAIT_S:g} s with --wait).",
            show_default=False,
        ),
    ] = None,
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Create or update an app from a manifest file."""
    common = Common(broker, root, user, timeout, config, output)

    async def work() -> None:
        started = time.monotonic()
        manifest = read_manifest(file)
        settings = common.settings()
        name = manifest.get("name")
        follow = []
        if wait and isinstance(name, str):
            try:
                validate_id(name, kind="app")
                follow.append(Topics(settings.root).app_status(name))
            except ProtocolError:
                pass  # the orchestrator names the problem in its refusal
        async with OperatorClient(settings, follow=follow) as client:
            reply = await client.call("deploy", {"manifest": manifest})
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            result = reply.result
            if not wait:
                if common.output is Output.json:
                    print_json(result)
                else:
                    out().print(views.done_line("deploy", result))
                return
            deadline = started + (timeout if timeout is not None else DEFAULT_WAIT_S)
            progress, show = _progress_bar(client)
            with progress:
                status, done = await client.follow_app(
                    result, manifest, deadline=deadline, on_status=show
                )
        _report_wait(common.output, result, status, done, deadline - started)

    execute(work)


def _progress_bar(client: OperatorClient) -> tuple[Progress, Callable[[AppStatus], None]]:
    """A running/desired progress bar on stderr (stdout stays for the result)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("running"),
        TimeElapsedColumn(),
    )
    progress = Progress(*columns, console=err(), transient=False)
    task = progress.add_task("waiting for the app's status", total=None)

    def show(status: AppStatus) -> None:
        progress.update(
            task,
            description=f"{status.app}: {status.state}",
            total=max(status.desired, 1),
            completed=status.running,
        )

    return progress, show


def _report_wait(
    output: Output,
    result: Mapping[str, Any],
    status: AppStatus | None,
    done: bool,
    waited_s: float,
) -> None:
    name = result.get("app")
    if output is Output.json:
        print_json(
            {
                "deploy": result,
                "converged": done,
                "status": status.model_dump(mode="json", exclude_none=True) if status else None,
            }
        )
    else:
        console = out()
        console.print(views.done_line("deploy", result))
        if status is not None:
            console.print(views.status_view(status))
    if done:
        return
    if status is None:
        raise WaitTimedOut(
            f"error: timed out after {waited_s:g} s: the orchestrator published no status for "
            f"{name}; check `edgefleet app {name}`"
        )
    raise WaitTimedOut(
        f"error: timed out after {waited_s:g} s: {status.running} of {status.desired} replicas "
        f"of {name} running ({status.state}); the reasons are above"
    )
