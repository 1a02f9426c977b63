"""`edgefleet profiles ...`: list and validate the device profiles of a directory.

The directory defaults to ``$EDGEFLEET_PROFILES_DIR``, else ``./device-profiles``, else the
``device-profiles`` folder of the source checkout this module lives in. All validation is
the protocol package's (:mod:`edgefleet_protocol.profiles`); this module only prints.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from edgefleet_protocol.profiles import Profile, ProfileCheck, ProfileError, check_profiles
from rich.console import Console
from rich.markup import escape
from rich.table import Table

ENV_DIR = "EDGEFLEET_PROFILES_DIR"

app = typer.Typer(
    help="Device profiles: list and validate device-profiles/*.yaml.", no_args_is_help=True
)

DirArgument = Annotated[
    Path | None,
    typer.Argument(
        help=f"Profiles directory (default: ${ENV_DIR}, else ./device-profiles).",
        show_default=False,
    ),
]


def default_profiles_dir() -> Path:
    """Where profiles are looked for when no directory is given."""
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    here = Path.cwd() / "device-profiles"
    if here.is_dir():
        return here
    checkout = Path(__file__).resolve().parents[3] / "device-profiles"
    return checkout if checkout.is_dir() else here


def _checks(directory: Path | None) -> list[ProfileCheck]:
    try:
        return check_profiles(directory or default_profiles_dir())
    except ProfileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from None


@app.command("list")
def list_profiles(
    directory: DirArgument = None,
    output: Annotated[
        str, typer.Option("--output", "-o", help="table or json.", show_default=True)
    ] = "table",
) -> None:
    """Show every valid profile; invalid files are reported on stderr (exit 1)."""
    if output not in ("table", "json"):
        typer.echo(f"--output: {output!r} is not one of: table, json", err=True)
        raise typer.Exit(2)
    checks = _checks(directory)
    profiles = [c.profile for c in checks if c.profile is not None]
    if output == "json":
        typer.echo(json.dumps([p.model_dump(mode="json") for p in profiles], indent=2))
    else:
        Console(soft_wrap=True).print(_table(profiles))
    errors = [c.error for c in checks if c.error is not None]
    for error in errors:
        typer.echo(str(error), err=True)
    if errors:
        raise typer.Exit(1)


@app.command("validate")
def validate_profiles(directory: DirArgument = None) -> None:
    """Check every profile file: one OK line per good file, `file: field: reason` per bad one."""
    checks = _checks(directory)
    if not checks:
        typer.echo(f"{directory or default_profiles_dir()}: no *.yaml or *.yml profiles found")
        raise typer.Exit(1)
    for check in checks:
        if check.profile is not None:
            typer.echo(f"OK {check.path} ({check.profile.id})")
        else:
            typer.echo(str(check.error))
    bad = sum(1 for c in checks if c.error is not None)
    if bad:
        typer.echo(f"{bad} of {len(checks)} profile(s) invalid", err=True)
        raise typer.Exit(1)


def _table(profiles: list[Profile]) -> Table:
    table = Table(title="Device profiles")
    # The id is what people copy into manifests and agent configs: never wrap or cut it.
    table.add_column("id", no_wrap=True, min_width=8)
    for column in ("vendor / model", "arch", "cpu", "memory", "storage", "link", "runtimes"):
        table.add_column(column)
    for p in profiles:
        threads = f"/{p.cpu.threads}t" if p.cpu.threads else ""
        table.add_row(
            escape(p.id),
            escape(f"{p.vendor} {p.model}"),
            p.arch,
            escape(f"{p.cpu.cores}c{threads} @ {p.cpu.max_mhz / 1000:g} GHz"),
            _size(p.memory_mb),
            _size(p.storage_mb),
            escape(f"{p.link.type} {p.link.bandwidth_mbps:g} Mbit/s"),
            escape(", ".join(p.runtimes)),
        )
    return table


def _size(mb: int) -> str:
    return f"{mb / 1024:g} GB" if mb >= 1024 else f"{mb} MB"
