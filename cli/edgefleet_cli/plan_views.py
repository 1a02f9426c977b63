"""How ``edgefleet deploy --dry-run`` and ``edgefleet diff`` print a ``plan`` result
(docs/protocol.md, "Plans"): the verdict line, the field-level changes (``+`` added,
``-`` removed, ``~`` changed, values as JSON so a string and a number never look alike),
and where the replicas would go. No network I/O: values in, renderables out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.text import Text

from edgefleet_cli.views import cell, name_table, state

MAX_VALUE_CHARS = 120
"""A value longer than this is cut (an ``env`` blob must not flood the terminal); ``-o
json`` has it whole."""


def value(v: Any) -> str:
    text = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return text if len(text) <= MAX_VALUE_CHARS else f"{text[: MAX_VALUE_CHARS - 3]}..."


def change_line(change: Mapping[str, Any]) -> str:
    """One changed field: ``+ path: to``, ``- path: from`` or ``~ path: from -> to``."""
    path = str(change.get("path"))
    if "from" not in change:
        return f"+ {path}: {value(change.get('to'))}"
    if "to" not in change:
        return f"- {path}: {value(change.get('from'))}"
    return f"~ {path}: {value(change['from'])} -> {value(change['to'])}"


def verdict_line(plan: Mapping[str, Any]) -> str:
    """What the deploy would do, in one line."""
    app, action = plan.get("app"), plan.get("action")
    if action == "unchanged":
        return f"app {app} is unchanged: a deploy would change nothing"
    verb = "create" if action == "create" else "update"
    parts = [f"a deploy would {verb} app {app}"]
    revision = plan.get("revision")
    if revision is not None:
        parts.append(f"as revision {revision}")
    rollout = plan.get("rollout")
    if rollout is not None:
        came = plan.get("from_revision")
        parts.append(f"and start a rollout from revision {came} ({rollout})")
    elif action == "update":
        parts.append("(no rollout: the workload is unchanged, so it applies at once)")
    return " ".join(parts)


def plan_view(plan: Mapping[str, Any]) -> RenderableType:
    """The whole plan, ending with the reminder that nothing was changed."""
    parts: list[RenderableType] = [Text(verdict_line(plan), style="bold")]
    changes = plan.get("changes") or []
    if changes:
        parts.append(Text(f"{len(changes)} field{'' if len(changes) == 1 else 's'} would change:"))
        parts.extend(_styled(change_line(c)) for c in changes)
    replicas = plan.get("replicas") or []
    desired = plan.get("desired")
    if replicas:
        parts.append(Text(f"replicas ({cell(desired)} desired) would be:"))
        table = name_table(None, ("replica", "node", "site", "change"))
        for r in replicas:
            moved = f" (from {r['from']})" if r.get("from") else ""
            table.add_row(cell(r.get("replica")), cell(r.get("node")), cell(r.get("site")),
                          f"{state(r.get('change'))}{escape(moved)}")  # fmt: skip
        parts.append(table)
    elif not plan.get("unplaced"):
        parts.append(Text(f"no replicas ({cell(desired)} desired)"))
    for group in plan.get("unplaced") or []:
        count = group.get("count")
        parts.append(Text(f"{count} replica{'' if count == 1 else 's'} would not be placed:"))
        parts.extend(Text(f"  - {reason}") for reason in group.get("reasons") or ["(no reason)"])
    parts.append(Text("dry run: nothing was changed", style="dim"))
    return Group(*parts)


def _styled(line: str) -> Text:
    style = {"+": "green", "-": "red", "~": "yellow"}.get(line[:1], "")
    return Text(line, style=style)
