"""``edgefleet deploy FILE [--wait | --dry-run]``: create or update an app, and optionally follow it
until every replica runs and, when the deploy changed the workload, until the new
revision's rollout succeeded (a progress bar on stderr, the result on stdout). Exit 1 when
the rollout fails or is reverted (with its reasons) or when no node qualifies (at once).
``--dry-run`` is ``edgefleet diff`` (:mod:`edgefleet_cli.commands.diff`): nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import typer
from edgefleet_protocol import AppStatus, ProtocolError, Topics, validate_id
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgefleet_cli import views
from edgefleet_cli.client import OperatorClient, converged, expected_replicas
from edgefleet_cli.commands.diff import ManifestArg, show_plan
from edgefleet_cli.commands.follow import verdict
from edgefleet_cli.config import (
    CommandRefused,
    Unreachable,
    WaitTimedOut,
    read_manifest,
    refusal_lines,
)
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


@operator_command
def deploy(
    file: ManifestArg,
    common: Common,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow the app until every replica runs.")
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Only show what would change and where replicas would go (as `edgefleet "
            "diff`); change nothing.",
        ),
    ] = False,
    timeout: Annotated[float | None, wait_timeout_option("for every replica to run")] = None,
) -> None:
    """Create or update an app from a manifest file (--dry-run: only show what would change)."""
    if dry_run:
        if wait:
            typer.echo(
                "error: --dry-run changes nothing, so there is nothing to --wait for", err=True
            )
            raise typer.Exit(2)
        show_plan(common, file)
        return

    async def work() -> None:
        started = time.monotonic()
        manifest = read_manifest(file)
        settings = common.settings()
        name = manifest.get("name")
        follow = []
        if wait and isinstance(name, str):
            try:
                validate_id(name, kind="app")
                topics = Topics(settings.root)
                follow += [topics.app_status(name), topics.app_rollout(name)]
            except ProtocolError:
                pass  # the orchestrator names the problem in its refusal
        async with OperatorClient(settings, follow=follow) as client:
            reply = await client.call("deploy", {"manifest": manifest})
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            result = reply.result
            if not wait:
                emit(common.output, result, lambda: views.done_line("deploy", result))
                return
            deadline = started + (timeout if timeout is not None else DEFAULT_WAIT_S)
            progress, show = _progress_bar(client)
            with progress:
                status, done, failure = await _follow(client, result, manifest, deadline, show)
        _report_wait(common.output, result, status, done, deadline - started, failure)

    execute(work)


async def _follow(
    client: OperatorClient,
    result: Mapping[str, Any],
    manifest: Mapping[str, Any],
    deadline: float,
    show: Callable[[AppStatus], None],
) -> tuple[AppStatus | None, bool, tuple[str, ...]]:
    """Until every replica runs *and* the new revision's rollout succeeded (docs/protocol.md,
    "Rollouts"); a failed or reverted rollout, or no node that qualifies, ends it early."""
    name = str(result.get("app"))
    seen = client.snapshot.app_updates.get(name, 0)
    replied = time.monotonic()
    while True:
        status = client.snapshot.apps.get(name)
        if status is not None:
            show(status)
        waited = time.monotonic() - replied
        fresh = client.snapshot.app_updates.get(name, 0) > seen
        # The retained status is current when it arrived after the reply, when the deploy
        # changed nothing, or when none came for a while (only changes are republished).
        current = fresh or result.get("action") == "unchanged" or waited > 2.0
        ready = converged(status, expected=expected_replicas(manifest),
                          action=str(result.get("action")), fresh=fresh,
                          since_reply_s=waited)  # fmt: skip
        now = verdict(result, status, client.snapshot.rollouts.get(name), fresh=current,
                      converged=ready)  # fmt: skip
        if now.done or now.failure:
            return status, now.done, now.failure
        if time.monotonic() >= deadline:
            return status, False, ()
        if client.orchestrator_offline():
            raise Unreachable(f"error: the orchestrator went offline while {name} was converging")
        await client.next_change(min(deadline - time.monotonic(), 0.25))


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
    failure: tuple[str, ...] = (),
) -> None:
    name = result.get("app")
    if output is Output.json:
        print_json(
            {
                "deploy": result,
                "converged": done,
                "failure": list(failure),
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
    if failure:
        raise CommandRefused(*failure)
    if status is None:
        raise WaitTimedOut(
            f"error: timed out after {waited_s:g} s: the orchestrator published no status for "
            f"{name}; check `edgefleet app {name}`"
        )
    raise WaitTimedOut(
        f"error: timed out after {waited_s:g} s: {status.running} of {status.desired} replicas "
        f"of {name} running ({status.state}); the reasons are above"
    )
