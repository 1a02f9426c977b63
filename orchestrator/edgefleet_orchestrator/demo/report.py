"""What the demo prints: where replicas run, the timed steps, and how to explore a kept fleet.

Who calls it: :mod:`edgefleet_orchestrator.demo.main`. Rich tables, which degrade to plain text
when the output is not a terminal (``make demo | tee``, the e2e test).
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from edgefleet_orchestrator.demo.fleet import DEMO_FLEET
from edgefleet_orchestrator.demo.view import FleetView, app_healthy, online

# A terminal gets its own width; a pipe or a log gets one wide enough for the tables.
_console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 110)


@dataclass(frozen=True, slots=True)
class Step:
    label: str
    seconds: float
    note: str = ""


def print_placement(view: FleetView, apps: Sequence[str]) -> None:
    """One row per gateway: site, profile, state, and the replicas it runs."""
    table = Table(title="where the replicas run", title_justify="left")
    for column in ("node", "site", "profile", "state", "replicas"):
        table.add_column(column)
    placed: dict[str, list[str]] = {}
    for app in apps:
        status = view.apps.get(app)
        for replica in status.replicas if status is not None else []:
            if replica.node is not None:
                placed.setdefault(replica.node, []).append(replica.name)
    for node in DEMO_FLEET:
        presence = view.nodes.get(node.node)
        state = presence.state if presence is not None else "-"
        replicas = ", ".join(sorted(placed.get(node.node, []))) or "-"
        table.add_row(node.node, node.site, node.profile, state, replicas)
    _console.print(table)


def print_summary(steps: Sequence[Step], view: FleetView, elapsed_s: float) -> None:
    table = Table(title="what happened", title_justify="left")
    table.add_column("step")
    table.add_column("took", justify="right")
    table.add_column("note")
    for step in steps:
        took = f"{step.seconds * 1000:.0f} ms" if step.seconds < 1 else f"{step.seconds:.1f} s"
        table.add_row(step.label, took, step.note)
    _console.print(table)
    statuses = list(view.apps.values())
    _console.print(
        f"fleet: {len(online(view))}/{len(DEMO_FLEET)} gateways online, "
        f"{sum(app_healthy(view, s.app) for s in statuses)}/{len(statuses)} apps healthy, "
        f"{sum(s.running for s in statuses)}/{sum(s.desired for s in statuses)} replicas "
        f"running; the story took {elapsed_s:.1f} s"
    )


def cli_path() -> str:
    """The ``edgefleet`` command of this interpreter's environment, as the user can type it."""
    beside = Path(sys.executable).parent / "edgefleet"
    if beside.exists():
        try:
            return str(beside.relative_to(Path.cwd()))
        except ValueError:
            return str(beside)
    return shutil.which("edgefleet") or "edgefleet"


def print_keep_help(broker_url: str, pid: int, workdir: Path) -> None:
    cli = cli_path()
    flag = f"--broker {broker_url}"
    lines = [
        "",
        "The fleet keeps running (DEMO_KEEP=1). Explore it from another terminal:",
        f"  {cli} nodes {flag}",
        f"  {cli} apps {flag}",
        f"  {cli} app video-analytics {flag}",
        f"  {cli} watch {flag}",
        f"  {cli} scale video-analytics 3 {flag}",
        f"  {cli} delete batch-job {flag}",
        f"  {cli} deploy examples/batch-job.yaml --wait {flag}",
        f"  mosquitto_sub -h 127.0.0.1 -p {broker_url.rsplit(':', 1)[1]} -t 'edgefleet/v1/#' -v",
        f"or set EDGEFLEET_BROKER={broker_url} once and drop the --broker flag.",
        f"Logs: {workdir}/logs/",
        f"Stop it (cleans everything up): kill {pid}   (or Ctrl-C here)",
        "",
    ]
    print("\n".join(lines), flush=True)
