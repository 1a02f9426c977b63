"""The operator commands of ``edgefleet``: deploy, apps, app, nodes, node, scale, delete,
cordon, uncordon, drain and watch, mounted at the top level by cli.py.

They talk only MQTT to the orchestrator (operator_client.py), exactly as a Node-RED flow or
``mosquitto_pub`` would, and print with operator_views.py. Exit codes, the same for every
command: 0 success, 1 the orchestrator refused the command (or a ``drain --wait`` cannot
finish: replicas with nowhere to go, listed with their reasons), 2 usage error, 3 ``deploy
--wait`` or ``drain --wait`` timed out, 4 broker or orchestrator unreachable. Expected
failures print one ``error: ...`` line (plus details) on stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from edgefleet_protocol import AppStatus, ProtocolError, Topics, validate_id
from rich.console import Console, RenderableType
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edgefleet_orchestrator import operator_views as views
from edgefleet_orchestrator.operator_client import OperatorClient, fleet_filters
from edgefleet_orchestrator.operator_config import (
    ENV,
    ENV_CONFIG,
    ClientSettings,
    CliError,
    CommandRefused,
    WaitTimedOut,
    load_settings,
    read_manifest,
    refusal_lines,
)

DEFAULT_WAIT_S = 120.0


class Output(StrEnum):
    table = "table"
    json = "json"


# Help texts use parentheses: typer renders help as rich markup, where [..] is a tag.
BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        help="Broker URL: mqtt://host:port, mqtt://user:pass@host:port or mqtts://... "
        f"(env {ENV['broker']}; default mqtt://127.0.0.1:1883)",
        show_default=False,
    ),
]
RootOpt = Annotated[
    str | None,
    typer.Option(
        "--root", help=f"Topic root (env {ENV['root']}; default edgefleet/v1)", show_default=False
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        help=f"Your topic level under <root>/replies/ (env {ENV['user']}; default: the broker "
        "user, else $USER, else cli)",
        show_default=False,
    ),
]
TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        help=f"Seconds to wait for the orchestrator's reply (env {ENV['timeout']}; default 10)",
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=f"Config file with keys broker, root, user, timeout (env {ENV_CONFIG}; default "
        "~/.config/edgefleet/cli.toml)",
        show_default=False,
        dir_okay=False,
    ),
]
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table for people, json for scripts.")
]


@dataclass(frozen=True, slots=True)
class Common:
    """The connection flags every command takes, before config and environment fill in."""

    broker: str | None
    root: str | None
    user: str | None
    timeout: float | None
    config: Path | None
    output: Output

    def settings(self) -> ClientSettings:
        flags = {"broker": self.broker, "root": self.root, "user": self.user}
        return load_settings({**flags, "timeout": self.timeout}, self.config)


def _out() -> Console:
    return Console(soft_wrap=False, highlight=False)


def _err() -> Console:
    return Console(stderr=True, highlight=False)


def _execute(work: Callable[[], Coroutine[Any, Any, None]], *, interrupted: int = 130) -> None:
    """Run one command's coroutine; turn every expected failure into its line and code."""
    try:
        asyncio.run(work())
    except CliError as exc:
        for line in exc.lines:
            typer.echo(line, err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(interrupted) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


async def _call(common: Common, verb: str, args: Mapping[str, Any]) -> Any:
    """One command round trip; a refusal becomes :class:`CommandRefused` (exit 1)."""
    async with OperatorClient(common.settings()) as client:
        reply = await client.call(verb, args)
    if not reply.ok:
        raise CommandRefused(*refusal_lines(reply))
    return reply.result


def _simple(
    common: Common, verb: str, args: Mapping[str, Any], show: Callable[[Any], RenderableType | str]
) -> None:
    async def work() -> None:
        result = await _call(common, verb, args)
        if common.output is Output.json:
            _print_json(result)
        else:
            _out().print(show(result))

    _execute(work)


# -- read commands -----------------------------------------------------------------------------


def apps(
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """List the deployed apps with their state."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "apps", {}, views.apps_view)


def app(
    name: Annotated[str, typer.Argument(help="The app's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """One app: its manifest, every replica's state, and why any is not placed."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "app", {"app": name}, views.app_view)


def nodes(
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """List the nodes the orchestrator knows."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "nodes", {}, views.nodes_view)


def node(
    name: Annotated[str, typer.Argument(help="The node's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """One node: capabilities, usage, and the workloads it reports."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "node", {"node": name}, views.node_view)


# -- commands that change things ---------------------------------------------------------------


def scale(
    name: Annotated[str, typer.Argument(metavar="APP", help="The app's name.")],
    replicas: Annotated[
        int, typer.Argument(metavar="N", min=0, help="Replica count (0 keeps the app).")
    ],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Set an app's replica count."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(
        common, "scale", {"app": name, "replicas": replicas}, lambda r: views.done_line("scale", r)
    )


def delete(
    name: Annotated[str, typer.Argument(metavar="APP", help="The app's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Remove an app and all its replicas."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "delete", {"app": name}, lambda r: views.done_line("delete", r))


def cordon(
    name: Annotated[str, typer.Argument(metavar="NODE", help="The node's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Place no new replicas on a node; what runs there stays."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "cordon", {"node": name}, lambda r: views.done_line("cordon", r))


def uncordon(
    name: Annotated[str, typer.Argument(metavar="NODE", help="The node's name.")],
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """Undo cordon: the node takes new replicas again."""
    common = Common(broker, root, user, timeout, config, output)
    _simple(common, "uncordon", {"node": name}, lambda r: views.done_line("uncordon", r))


# -- deploy ------------------------------------------------------------------------------------


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
                    _print_json(result)
                else:
                    _out().print(views.done_line("deploy", result))
                return
            deadline = started + (timeout if timeout is not None else DEFAULT_WAIT_S)
            progress, show = _progress_bar(client)
            with progress:
                status, done = await client.follow_app(
                    result, manifest, deadline=deadline, on_status=show
                )
        _report_wait(common.output, result, status, done, deadline - started)

    _execute(work)


def _progress_bar(client: OperatorClient) -> tuple[Progress, Callable[[AppStatus], None]]:
    """A running/desired progress bar on stderr (stdout stays for the result)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("running"),
        TimeElapsedColumn(),
    )
    progress = Progress(*columns, console=_err(), transient=False)
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
        _print_json(
            {
                "deploy": result,
                "converged": done,
                "status": status.model_dump(mode="json", exclude_none=True) if status else None,
            }
        )
    else:
        out = _out()
        out.print(views.done_line("deploy", result))
        if status is not None:
            out.print(views.status_view(status))
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


# -- watch -------------------------------------------------------------------------------------


def watch(
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit.")] = False,
    broker: BrokerOpt = None,
    root: RootOpt = None,
    user: UserOpt = None,
    timeout: TimeoutOpt = None,
    config: ConfigOpt = None,
    output: OutputOpt = Output.table,
) -> None:
    """A live fleet view from the retained status topics (summary, apps, nodes).

    Works without a running orchestrator (it shows it as offline or absent). With
    --output json it prints one JSON snapshot per change, one per line. Ctrl-C ends it.
    """
    common = Common(broker, root, user, timeout, config, output)

    async def work() -> None:
        settings = common.settings()
        async with OperatorClient(settings, follow=_filters(settings)) as client:
            await client.settle(max_s=min(settings.timeout_s, 3.0))
            if once:
                if output is Output.json:
                    _print_json(client.snapshot.as_json())
                else:
                    _out().print(views.fleet_view(client.snapshot, settings.root))
                return
            if output is Output.json:
                while True:
                    typer.echo(json.dumps(client.snapshot.as_json()))
                    while not await client.next_change(3600):
                        pass

            def render() -> RenderableType:
                return views.fleet_view(client.snapshot, settings.root)

            with Live(render(), console=_out(), refresh_per_second=4) as live:
                while True:
                    await client.next_change(1.0)
                    live.update(render())

    _execute(work, interrupted=0)


def _filters(settings: ClientSettings) -> list[str]:
    return fleet_filters(Topics(settings.root))


def register(cli: typer.Typer) -> None:
    """Mount the operator commands at the top level of ``edgefleet``."""
    from edgefleet_orchestrator.cli_drain import drain

    verbs = (deploy, apps, app, nodes, node, scale, delete, cordon, uncordon, drain, watch)
    for command in verbs:
        cli.command(command.__name__)(command)
