"""What every operator command shares: the connection flags, the output switch, and how
an expected failure becomes one ``error: ...`` line and an exit code.

Exit codes, the same for every command: 0 success, 1 the orchestrator refused the command
(or a ``drain --wait`` cannot finish: replicas with nowhere to go, listed with their
reasons), 2 usage error, 3 ``deploy --wait`` or ``drain --wait`` timed out, 4 broker or
orchestrator unreachable. Expected failures print one ``error: ...`` line (plus details) on
stderr, never a traceback.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import signal
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, get_type_hints

import typer
from rich.console import Console, RenderableType

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import (
    ENV,
    ENV_CONFIG,
    ClientSettings,
    CliError,
    CommandRefused,
    load_settings,
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


def wait_timeout_option(until: str) -> Any:
    """The ``--timeout`` of a command that takes ``--wait`` (``deploy``, ``drain``): the
    reply's timeout, and with ``--wait`` how long to wait ``until`` it is done."""
    return typer.Option(
        "--timeout",
        help=f"Seconds to wait: for the reply, and with --wait {until} (default: the "
        f"configured reply timeout; {DEFAULT_WAIT_S:g} s with --wait).",
        show_default=False,
    )


_SHARED: tuple[tuple[str, Any, Any], ...] = (
    ("broker", BrokerOpt, None),
    ("root", RootOpt, None),
    ("user", UserOpt, None),
    ("timeout", TimeoutOpt, None),
    ("config", ConfigOpt, None),
    ("output", OutputOpt, Output.table),
)


def operator_command(func: Callable[..., None]) -> Callable[..., None]:
    """Give a command the flags every operator command shares, so it states only its own.

    ``func`` takes its own arguments and ``common: Common``; the command typer sees takes
    them plus ``--broker``, ``--root``, ``--user``, ``--timeout``, ``--config`` and
    ``--output``, and hands ``func`` those as one :class:`Common`. A command that declares
    its own ``timeout`` (other help) or ``output`` (other choices: ``-o wide``) keeps it,
    and gets it both as itself and in ``common`` (where an output that is not an
    :class:`Output` counts as ``table``).
    """
    hints = get_type_hints(func, include_extras=True)
    own = [
        p.replace(annotation=hints.get(p.name, p.annotation))
        for p in inspect.signature(func).parameters.values()
        if p.name != "common"
    ]
    declared = {p.name for p in own}
    keyword = inspect.Parameter.POSITIONAL_OR_KEYWORD
    added = [
        inspect.Parameter(name, keyword, default=default, annotation=annotation)
        for name, annotation, default in _SHARED
        if name not in declared
    ]
    params = [*own, *added]

    def command(**values: Any) -> None:
        output = values["output"]
        common = Common(
            values["broker"],
            values["root"],
            values["user"],
            values["timeout"],
            values["config"],
            output if isinstance(output, Output) else Output.table,
        )
        func(**{k: v for k, v in values.items() if k in declared}, common=common)

    command.__name__, command.__qualname__ = func.__name__, func.__qualname__
    command.__doc__, command.__module__ = func.__doc__, func.__module__
    command.__annotations__ = {p.name: p.annotation for p in params}
    setattr(command, "__signature__", inspect.Signature(params))  # what typer reads  # noqa: B010
    return command


NOT_A_TERMINAL_WIDTH = 1000
"""Width tables may take when stdout is a file or a pipe: wide enough that no name or
reason is ever wrapped mid-word for a script (tables still take only what they need)."""


def out() -> Console:
    """The console for results. On a terminal it wraps to the window; piped or redirected
    it never wraps a table cell (``COLUMNS`` still wins when set)."""
    console = Console(soft_wrap=False, highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=False, highlight=False, width=NOT_A_TERMINAL_WIDTH)
    return console


def err() -> Console:
    return Console(stderr=True, highlight=False)


def execute(work: Callable[[], Coroutine[Any, Any, None]], *, interrupted: int = 130) -> None:
    """Run one command's coroutine; turn every expected failure into its line and code."""
    try:
        asyncio.run(work())
    except CliError as exc:
        for line in exc.lines:
            typer.echo(line, err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        raise typer.Exit(interrupted) from None


def stop_on_signals() -> asyncio.Event:
    """An event SIGINT and SIGTERM set, for a command that follows until interrupted; our
    own handlers, so it stops whatever disposition the process inherited (a shell's ``&``
    starts it with SIGINT ignored). Call from inside the running loop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=False))


def emit(
    output: Output, data: Any, view: RenderableType | str | Callable[[], RenderableType | str]
) -> None:
    """A result: ``data`` as JSON for scripts, else ``view`` for people (a callable view is
    built only then)."""
    if output is Output.json:
        print_json(data)
    else:
        out().print(view() if callable(view) else view)


async def call(common: Common, verb: str, args: Mapping[str, Any]) -> Any:
    """One command round trip; a refusal becomes :class:`CommandRefused` (exit 1)."""
    async with OperatorClient(common.settings()) as client:
        reply = await client.call(verb, args)
    if not reply.ok:
        raise CommandRefused(*refusal_lines(reply))
    return reply.result


def simple(
    common: Common, verb: str, args: Mapping[str, Any], show: Callable[[Any], RenderableType | str]
) -> None:
    async def work() -> None:
        result = await call(common, verb, args)
        emit(common.output, result, lambda: show(result))

    execute(work)
