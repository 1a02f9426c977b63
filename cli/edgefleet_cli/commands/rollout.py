"""``edgefleet rollout status|history|promote|pause|resume|undo APP``: staged rollouts.

A client of the ``rollout-*`` command verbs and the retained ``apps/{app}/rollout`` status
(docs/protocol.md, "Rollouts"). ``status --watch`` follows the retained status and prints
every change until the rollout ends (exit 0 on ``succeeded``, 1 on ``failed`` or
``reverted``). Exit codes as elsewhere: 1 refused, 3 timed out, 4 unreachable.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Annotated, Any

import typer

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, WaitTimedOut, refusal_lines
from edgefleet_cli.options import (
    DEFAULT_WAIT_S,
    BrokerOpt,
    Common,
    ConfigOpt,
    Output,
    OutputOpt,
    RootOpt,
    TimeoutOpt,
    UserOpt,
    execute,
    print_json,
    simple,
)

app = typer.Typer(help="Staged rollouts: status, history, promote, pause, resume, undo.",
                  no_args_is_help=True)  # fmt: skip
AppArg = Annotated[str, typer.Argument(metavar="APP", help="The app's name.")]
FINISHED = {"succeeded": 0, "failed": 1, "reverted": 1}


def rollout_line(status: Mapping[str, Any]) -> str:
    """One line for people: revision, phase, counts, wave, and the newest reason."""
    c = status.get("counts", {})
    waves = status.get("waves") or []
    wave = f", wave {status.get('wave', 0) + 1}/{len(waves)} {waves[status.get('wave', 0)]}" if len(
        waves) > 1 else ""  # fmt: skip
    reasons = status.get("reasons") or []
    why = f" — {reasons[-1]}" if reasons else ""
    surged = f" ({c['surged']} make-before-break)" if c.get("surged") else ""
    return (
        f"{status.get('app')} revision {status.get('from_revision')} → {status.get('revision')}: "
        f"{status.get('phase')}; {c.get('updated', 0)}/{c.get('total', 0)} updated{surged}, "
        f"{c.get('healthy', 0)} healthy, {c.get('failed', 0)} failed{wave}{why}"
    )


def failure_lines(status: Mapping[str, Any]) -> list[str]:
    lines = [f"error: {rollout_line(status)}"]
    lines += [
        f"  {replica}: {why}" for replica, why in sorted((status.get("failed") or {}).items())
    ]
    lines += [f"  reason: {r}" for r in status.get("reasons") or []]
    return lines


def _status_text(result: Mapping[str, Any]) -> str:
    rollout = result.get("rollout")
    if not rollout:
        return (
            f"{result.get('app')}: no rollout (current revision {result.get('current_revision')})"
        )
    return rollout_line(rollout)


def _history_text(result: Mapping[str, Any]) -> str:
    lines = [f"{result.get('app')}: revisions (current {result.get('current_revision')})"]
    for r in result.get("revisions", []):
        what = r.get("image") or " ".join(r.get("command") or [])
        mark = "*" if r.get("current") else " "
        note = f"  ({r['note']})" if r.get("note") else ""
        at = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["created_at"]))
        lines.append(f"{mark} {r['revision']:>4}  {at}  {what}{note}")
    return "\n".join(lines)


def _changed_text(result: Mapping[str, Any]) -> str:
    rollout = result.get("rollout")
    if isinstance(rollout, Mapping):
        return rollout_line(rollout)
    return f"{result.get('app')}: revision {result.get('revision')} deploying ({rollout})"


@app.command("status")
def status(
    name: AppArg,
    watch: Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")] = False,
    timeout: TimeoutOpt = None,
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """The app's current (or last) rollout."""
    common = Common(broker, root, user, timeout, config, output)
    if not watch:
        simple(common, "rollout-status", {"app": name}, _status_text)
        return

    async def work() -> None:
        settings = common.settings()
        topic = f"{settings.root}/apps/{name}/rollout"
        deadline = time.monotonic() + (timeout if timeout is not None else DEFAULT_WAIT_S)
        async with OperatorClient(settings, follow=[topic]) as client:
            reply = await client.call("rollout-status", {"app": name})
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            last = (reply.result or {}).get("rollout")
            shown = None
            while True:
                current = client.snapshot.rollouts.get(name) or last
                if current is not None and current != shown:
                    shown = current
                    if common.output is Output.json:
                        print_json(current)
                    else:
                        typer.echo(rollout_line(current))  # one unwrapped line per change
                phase = (current or {}).get("phase")
                if current is None or phase in FINISHED:
                    break
                if time.monotonic() >= deadline:
                    raise WaitTimedOut(f"error: timed out; the rollout of {name} is {phase}")
                await client.next_change(min(deadline - time.monotonic(), 0.5))
        if current is not None and FINISHED.get(str(current.get("phase")), 0):
            raise CommandRefused(*failure_lines(current))

    execute(work)


def _verb(verb: str, show: Any = _changed_text) -> Any:
    def command(
        name: AppArg,
        timeout: TimeoutOpt = None,
        broker: BrokerOpt = None,
        root: RootOpt = None,
        user: UserOpt = None,
        config: ConfigOpt = None,
        output: OutputOpt = Output.table,
    ) -> None:
        simple(Common(broker, root, user, timeout, config, output), f"rollout-{verb}",
               {"app": name}, show)  # fmt: skip

    return command


app.command("history", help="The app's kept revisions (the last 10).")(
    _verb("history", _history_text)
)
app.command("promote", help="Go on after a healthy canary.")(_verb("promote"))
app.command("pause", help="Release no more replicas.")(_verb("pause"))
app.command("resume", help="Go on after a pause.")(_verb("resume"))


@app.command("undo")
def undo(
    name: AppArg,
    to_revision: Annotated[
        int | None,
        typer.Option(
            "--to-revision",
            min=1,
            help="Roll back to this revision (default: the "
            "previous one; during a rollout: revert it).",
            show_default=False,
        ),
    ] = None,
    timeout: TimeoutOpt = None,
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Revert the rollout in progress, or roll the app back to an earlier revision."""
    args: dict[str, Any] = {"app": name}
    if to_revision is not None:
        args["to_revision"] = to_revision
    simple(Common(broker, root, user, timeout, config, output), "rollout-undo", args, _changed_text)
