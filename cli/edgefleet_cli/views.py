"""How the operator commands show things to a person: command results and status
documents in, rich renderables out.

Pure (no I/O): the commands in :mod:`edgefleet_cli.commands` print what these return.
Results are the plain JSON the orchestrator's command handlers produce (docs/protocol.md,
"Results"), so a field an older orchestrator does not send shows as "-" rather than failing.
Every string that came off the wire is escaped before it meets rich markup.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from edgefleet_protocol import AppStatus
from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from edgefleet_cli.client import FleetSnapshot, when

_STYLE = {
    "healthy": "green",
    "running": "green",
    "online": "green",
    "progressing": "yellow",
    "pending": "yellow",
    "starting": "yellow",
    "pulling": "yellow",
    "updating": "yellow",
    "stale": "yellow",
    "node-stale": "yellow",
    "degraded": "red",
    "failed": "red",
    "unhealthy": "red",
    "offline": "red",
    "node-offline": "red",
    "unknown": "dim",
    "kept": "dim",
    "placed": "green",
    "moved": "yellow",
    "stopped": "dim",
}


def state(value: Any) -> str:
    """A state word, coloured by what it means for the operator."""
    text = escape(str(value)) if value is not None else "-"
    style = _STYLE.get(str(value))
    return f"[{style}]{text}[/]" if style else text


def cell(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else escape(fmt.format(value))


def name_table(title: str | None, columns: Iterable[str]) -> Table:
    """A table whose name columns (app, node, replica) never wrap."""
    table = Table(title=title, title_justify="left")
    for name in columns:
        # Names are what people copy into the next command: never cut them.
        table.add_column(name, no_wrap=name in ("app", "node", "replica"), overflow="fold")
    return table


# -- command results ---------------------------------------------------------------------------


def labels_cell(labels: Mapping[str, str] | None) -> str:
    return escape(",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())))


def apps_view(result: Mapping[str, Any], wide: bool = False) -> RenderableType:
    rows = result.get("apps") or []
    if not rows:
        return Text("no apps deployed (edgefleet deploy FILE), or none matches --selector")
    columns = ("app", "mode", "state", "running", "placed", "runtime")
    table = name_table(None, (*columns, "labels") if wide else columns)
    for r in rows:
        values = [
            cell(r.get("app")),
            cell(r.get("mode")),
            state(r.get("state")),
            f"{cell(r.get('running'))}/{cell(r.get('desired'))}",
            cell(r.get("placed")),
            cell(r.get("runtime")),
        ]
        table.add_row(*values, *([labels_cell(r.get("labels"))] if wide else []))
    return table


def app_view(result: Mapping[str, Any]) -> RenderableType:
    manifest = result.get("manifest") or {}
    workload = manifest.get("workload") or {}
    what = workload.get("image") or " ".join(workload.get("command") or [])
    head = Text.from_markup(
        f"[bold]{cell(result.get('app'))}[/]  mode {cell(manifest.get('mode', 'replicated'))}"
        f"  runtime {cell(workload.get('runtime'))}  {escape(what)}".rstrip()
    )
    raw = result.get("status")
    if not raw:
        return Group(head, Text("no status yet: the orchestrator has not placed it"))
    return Group(head, status_view(AppStatus.model_validate(raw)))


def status_view(status: AppStatus) -> RenderableType:
    """One app's status: the counts, each replica's state, and why any is not placed."""
    parts: list[RenderableType] = [
        Text.from_markup(
            f"state {state(status.state)}  running {status.running}/{status.desired}"
            f"  placed {status.placed}"
        )
    ]
    auto = status.autoscale
    if auto is not None:
        observed = "-" if auto.observed is None else f"{auto.observed:.4g}"
        parts.append(
            Text.from_markup(
                f"autoscale {escape(auto.metric)} {observed}/{auto.target:g} "
                f"({auto.min}..{auto.max}, wants {auto.wanted})  {state(auto.state)}  "
                f"{escape(auto.reason)}"
            )
        )
        parts.extend(Text(f"  - {reason}") for reason in auto.limited_by)
    if status.replicas:
        sized = any(r.cpu is not None for r in status.replicas)
        columns = ("replica", "node", "site", "state", *(("limits",) if sized else ()), "message")
        table = name_table(None, columns)
        for r in status.replicas:
            limits = (f"{r.cpu:g} cpu, {r.memory_mb} MB" if r.cpu is not None else "-",)
            table.add_row(
                cell(r.name),
                cell(r.node),
                cell(r.site),
                state(r.state),
                *(limits if sized else ()),
                cell(r.message or None),
            )
        parts.append(table)
    if status.replicas_omitted:
        parts.append(Text(f"  ... and {status.replicas_omitted} more replicas not listed"))
    parts.extend(Text(line) for line in unplaced_lines(status))
    return Group(*parts)


def unplaced_lines(status: AppStatus) -> list[str]:
    lines = []
    for group in status.unplaced:
        plural = "replica" if group.count == 1 else "replicas"
        lines.append(f"{group.count} {plural} not placed:")
        lines.extend(f"  - {reason}" for reason in group.reasons or ["(no reason given)"])
    return lines


def nodes_view(result: Mapping[str, Any], wide: bool = False) -> RenderableType:
    rows = result.get("nodes") or []
    if not rows:
        return Text(
            "no nodes known (is an agent connected to this broker and root?) or none "
            "matches --selector"
        )
    columns = ("node", "site", "state", "cordoned", "profile", "arch", "cpu", "memory", "replicas")
    table = name_table(None, (*columns, "region", "session", "labels") if wide else columns)
    for r in rows:
        values = [
            cell(r.get("node")),
            cell(r.get("site")),
            _state_cell(r),
            _cordon_cell(r),
            cell(r.get("profile")),
            cell(r.get("arch")),
            cell(r.get("cpu_pct"), "{:.0f}%"),
            cell(r.get("memory_pct"), "{:.0f}%"),
            cell(r.get("replicas")),
        ]
        if wide:
            values += [cell(r.get("region")), cell(r.get("session")), labels_cell(r.get("labels"))]
        table.add_row(*values)
    return table


def _state_cell(row: Mapping[str, Any]) -> str:
    """The node's state, marked when the orchestrator holds it as flapping."""
    shown = state(row.get("state"))
    return f"{shown} [yellow](flapping)[/]" if row.get("flapping") else shown


def _cordon_cell(row: Mapping[str, Any]) -> str:
    if not row.get("cordoned"):
        return ""
    drain = row.get("drain")
    return f"yes ({state(drain)})" if drain else "yes"


def node_view(result: Mapping[str, Any]) -> RenderableType:
    caps = result.get("capabilities") or {}
    tele = result.get("telemetry") or {}
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    cordon = "  [yellow]cordoned[/]" if result.get("cordoned") else ""
    cordon += "  [yellow]flapping[/]" if result.get("flapping") else ""
    facts.add_row("node", f"{cell(result.get('node'))} (site {cell(result.get('site'))})")
    facts.add_row("state", f"{state(result.get('state'))}{cordon}")
    facts.add_row("profile", f"{cell(caps.get('profile'))}  arch {cell(caps.get('arch'))}")
    facts.add_row(
        "capacity",
        f"{cell(caps.get('cpu_cores'))} cores, {cell(caps.get('memory_mb'))} MB, "
        f"runtimes {cell(', '.join(caps.get('runtimes') or []) or None)}",
    )
    labels = caps.get("labels") or {}
    facts.add_row("labels", escape(", ".join(f"{k}={v}" for k, v in labels.items())) or "-")
    cpu, memory = cell(tele.get("cpu_pct"), "{:.0f}%"), cell(tele.get("memory_pct"), "{:.0f}%")
    facts.add_row("usage", f"cpu {cpu}  memory {memory}")
    facts.add_row("assigned", escape(", ".join(result.get("assigned") or [])) or "-")
    drain = result.get("drain")
    drained: list[RenderableType] = [drain_view(drain)] if drain else []
    workloads = result.get("workloads") or {}
    if not workloads:
        return Group(facts, *drained, Text("no workloads reported"))
    table = name_table(None, ("replica", "app", "state", "health", "restarts", "message"))
    for name, w in sorted(workloads.items()):
        table.add_row(
            cell(name),
            cell(w.get("app")),
            state(w.get("state")),
            cell(w.get("health")),
            cell(w.get("restarts")),
            cell(w.get("message") or None),
        )
    return Group(facts, *drained, table)


def drain_view(progress: Mapping[str, Any]) -> RenderableType:
    """A drain's progress: where it stands, what moves, what waits and what is stuck."""
    left = progress.get("remaining")
    head = Text.from_markup(
        f"drain of node {cell(progress.get('node'))}: {state(progress.get('state'))}, "
        f"{cell(left)} replica{'' if left == 1 else 's'} left"
    )
    parts: list[RenderableType] = [head]
    moving = progress.get("moving") or []
    if moving:
        table = name_table(None, ("replica", "app", "to", "state"))
        for m in moving:
            table.add_row(cell(m.get("replica")), cell(m.get("app")), cell(m.get("to")),
                          state(m.get("state")))  # fmt: skip
        parts.append(table)
    parts.extend(Text(line) for line in drain_lines(progress))
    daemons = progress.get("daemons") or []
    if daemons:
        parts.append(Text(f"daemon replicas stay on the node: {', '.join(daemons)}"))
    return Group(*parts)


def drain_lines(progress: Mapping[str, Any]) -> list[str]:
    """One line per replica that waits or is stuck, with why (also the error lines of a
    ``drain --wait`` that cannot finish)."""
    lines = [
        f"  waiting: {w.get('replica')} ({w.get('app')}): {w.get('reason')}"
        for w in progress.get("waiting") or []
    ]
    for stuck in progress.get("stuck") or []:
        lines.append(f"  stuck: {stuck.get('replica')} ({stuck.get('app')}) stays running:")
        lines.extend(f"    - {reason}" for reason in stuck.get("reasons") or [])
    return lines


def done_line(verb: str, result: Mapping[str, Any]) -> str:
    """One line for a command that changed something."""
    match verb:
        case "deploy":
            action, version = result.get("action", "sent"), result.get("version")
            return f"{action} app {result.get('app')} (version {version})"
        case "delete":
            return f"deleted app {result.get('app')}"
        case "scale":
            return (
                f"scaled app {result.get('app')}: {result.get('previous')} -> "
                f"{result.get('replicas')} replicas"
            )
        case "drain":
            node, what = result.get("node"), result.get("action", "sent")
            return (
                f"drain of node {node} {what}: {result.get('state')}, "
                f"{result.get('remaining')} replica(s) left"
            )
        case "cordon" | "uncordon":
            node = result.get("node")
            if not result.get("changed", True):
                return f"node {node} was already {'cordoned' if verb == 'cordon' else 'uncordoned'}"
            cancelled = " (its drain is cancelled)" if result.get("drain_cancelled") else ""
            return f"{verb}ed node {node}{cancelled}"
    return f"{verb}: ok"


# -- the fleet view (watch) --------------------------------------------------------------------


def fleet_view(snapshot: FleetSnapshot, root: str, now: float | None = None) -> RenderableType:
    """Summary, apps and nodes from the retained status topics, as ``watch`` shows them."""
    now = time.time() if now is None else now
    orch = snapshot.orchestrator
    if orch is None:
        presence = "[red]absent[/] (no orchestrator/status retained: never started on this root?)"
    else:
        presence = f"{state(orch.state)} since {when(orch.since)}"
    lines = [f"[bold]edgefleet[/] {escape(root)}   orchestrator {presence}"]
    s = snapshot.summary
    if s is not None:
        lines.append(
            f"nodes {s.nodes_online}/{s.nodes_total} online, {s.nodes_offline} offline, "
            f"{s.nodes_stale} stale, {s.nodes_cordoned} cordoned"
            f"{f', {s.nodes_flapping} flapping' if s.nodes_flapping else ''}   "
            f"apps {s.apps_healthy}/{s.apps_total} healthy, {s.apps_degraded} degraded   "
            f"replicas {s.replicas_running}/{s.replicas_desired} running   "
            f"(as of {max(0.0, now - s.ts):.0f} s ago)"
        )
    else:
        lines.append("no fleet summary published yet")
    apps = name_table("apps", ("app", "mode", "state", "running", "placed", "not placed"))
    for name in sorted(snapshot.apps):
        a = snapshot.apps[name]
        apps.add_row(
            cell(name),
            a.mode,
            state(a.state),
            f"{a.running}/{a.desired}",
            str(a.placed),
            str(sum(u.count for u in a.unplaced)) if a.unplaced else "",
        )
    nodes = name_table("nodes", ("node", "site", "state", "session", "since"))
    for (site, node), n in sorted(snapshot.nodes.items()):
        nodes.add_row(cell(node), cell(site), state(n.state), str(n.session), when(n.since))
    return Group(*(Text.from_markup(line) for line in lines), apps, nodes)
