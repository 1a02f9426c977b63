"""``edgefleet audit``: the orchestrator's audit trail — who ran which verb on what, with
what result and when — read with the ``audit`` command over MQTT like every other verb.

Operators who are not admins see only their own entries (the orchestrator narrows them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import typer
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from edgefleet_cli.client import when
from edgefleet_cli.options import Common, operator_command, simple


def audit_view(result: Mapping[str, Any]) -> RenderableType:
    """One row per command, oldest first: time, operator, verb, target, result."""
    rows = result.get("entries") or []
    if not rows:
        return Text("no audit entries")
    table = Table(title=None)
    for name in ("time", "operator", "verb", "target", "result", "request"):
        table.add_column(name, overflow="fold")
    for r in rows:
        target = f"{r.get('target_kind')} {r.get('target')}" if r.get("target") else "-"
        ts = r.get("ts")
        table.add_row(
            when(ts) if isinstance(ts, int | float) else "-",
            str(r.get("operator", "-")),
            str(r.get("verb", "-")),
            target,
            str(r.get("result", "-")),
            str(r.get("request_id", "-")),
        )
    return table


@operator_command
def audit(
    common: Common,
    operator: Annotated[
        str | None, typer.Option("--operator", help="Only this operator's commands.")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, max=1000, help="How many, newest.")
    ] = 50,
) -> None:
    """The audit trail: who ran which command on what, its result and when (newest last)."""
    args: dict[str, Any] = {"limit": limit}
    if operator is not None:
        args["operator"] = operator
    simple(common, "audit", args, audit_view)
