"""``edgefleet rollout status|history|promote|pause|resume|undo APP``: staged rollouts.

A client of the ``rollout-*`` command verbs and the retained ``apps/{app}/rollout`` status
(docs/protocol.md, "Rollouts"). ``status --watch`` follows the retained status and prints
every change until the rollout ends (exit 0 on ``succeeded``, 1 on ``failed`` or
``reverted``). ``promote``, ``resume`` and ``undo`` take ``--watch`` too: they send the
command, then follow the rollout it changed (or, for an undo to an earlier revision, the
new revision's) the same way; for ``undo``, ``reverted`` is the outcome asked for (exit
0). ``pause`` has none: a paused rollout does not end by itself. Exit codes as elsewhere:
1 refused, 3 timed out, 4 unreachable.
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
    Common,
    Output,
    execute,
    operator_command,
    print_json,
    simple,
)

app = typer.Typer(help="Staged rollouts: status, history, promote, pause, resume, undo.",
                  no_args_is_help=True)  # fmt: skip
AppArg = Annotated[str, typer.Argument(metavar="APP", help="The app's name.")]
FINISHED = {"succeeded": 0, "failed": 1, "reverted": 1}
WatchOpt = Annotated[bool, typer.Option("--watch", help="Follow it until it ends.")]


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
@operator_command
def status(
    name: AppArg,
    common: Common,
    watch: WatchOpt = False,
) -> None:
    """The app's current (or last) rollout."""
    if not watch:
        simple(common, "rollout-status", {"app": name}, _status_text)
        return
    _watch(common, name, "rollout-status", {"app": name})


def _watch(
    common: Common, name: str, verb: str, args: Mapping[str, Any], *, reverted_ok: bool = False
) -> None:
    """Send ``verb``, then print every change of the app's rollout until it ends. The
    rollout followed is the one the reply names (its revision), so a retained status of an
    older, finished rollout is not taken for the end of this one."""

    async def work() -> None:
        settings = common.settings()
        topic = f"{settings.root}/apps/{name}/rollout"
        waited = common.timeout if common.timeout is not None else DEFAULT_WAIT_S
        deadline = time.monotonic() + waited
        async with OperatorClient(settings, follow=[topic]) as client:
            reply = await client.call(verb, dict(args))
            if not reply.ok:
                raise CommandRefused(*refusal_lines(reply))
            result = reply.result or {}
            first = result.get("rollout")
            if verb != "rollout-status":
                if common.output is Output.json:
                    print_json(result)
                if not isinstance(first, Mapping) and "revision" not in result:
                    typer.echo(_changed_text(result))
                    return
            revision = first.get("revision") if isinstance(first, Mapping) else None
            revision = int(result.get("revision", revision) or 0) or None
            last: Mapping[str, Any] | None = first if isinstance(first, Mapping) else None
            shown = None
            while True:
                current = _newer(client.snapshot.rollouts.get(name), last, revision)
                if current is not None and current != shown:
                    shown = current
                    if common.output is Output.json:
                        print_json(current)
                    else:
                        typer.echo(rollout_line(current))  # one unwrapped line per change
                phase = (current or {}).get("phase")
                if phase in FINISHED or (current is None and verb == "rollout-status"):
                    break  # (status: no rollout at all)
                if time.monotonic() >= deadline:
                    raise WaitTimedOut(f"error: timed out; the rollout of {name} is {phase}")
                await client.next_change(min(deadline - time.monotonic(), 0.5))
        phase = str((current or {}).get("phase"))
        wanted = reverted_ok and phase == "reverted"
        if current is not None and FINISHED.get(phase, 0) and not wanted:
            raise CommandRefused(*failure_lines(current))

    execute(work)


def _newer(
    retained: Mapping[str, Any] | None, replied: Mapping[str, Any] | None, revision: int | None
) -> Mapping[str, Any] | None:
    """The newer of the retained status and the command's reply: the retained one may
    still be an older rollout's, or this one's from before the command."""
    if (
        retained is not None
        and revision is not None
        and int(retained.get("revision", 0)) < revision
    ):
        retained = None
    if replied is None:
        return retained
    if retained is None or float(retained.get("updated_at", 0)) < float(
        replied.get("updated_at", 0)
    ):
        return replied
    return retained


def _verb(verb: str, show: Any = _changed_text, *, watchable: bool = False) -> Any:
    @operator_command
    def command(name: AppArg, common: Common) -> None:
        simple(common, f"rollout-{verb}", {"app": name}, show)

    @operator_command
    def watched(name: AppArg, common: Common, watch: WatchOpt = False) -> None:
        if watch:
            _watch(common, name, f"rollout-{verb}", {"app": name})
        else:
            simple(common, f"rollout-{verb}", {"app": name}, show)

    return watched if watchable else command


app.command("history", help="The app's kept revisions (the last 10).")(
    _verb("history", _history_text)
)
app.command("promote", help="Go on after a healthy canary.")(_verb("promote", watchable=True))
app.command("pause", help="Release no more replicas.")(_verb("pause"))
app.command("resume", help="Go on after a pause.")(_verb("resume", watchable=True))


@app.command("undo")
@operator_command
def undo(
    name: AppArg,
    common: Common,
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
    watch: WatchOpt = False,
) -> None:
    """Revert the rollout in progress, or roll the app back to an earlier revision."""
    args: dict[str, Any] = {"app": name}
    if to_revision is not None:
        args["to_revision"] = to_revision
    if watch:
        _watch(common, name, "rollout-undo", args, reverted_ok=True)
    else:
        simple(common, "rollout-undo", args, _changed_text)
