"""The markdown summary and PNG plots of one ``make bench`` run.

Who calls it: :mod:`bench.run`, after every scenario has run, with the report dict it also
writes as JSON. Pure formatting of that dict (the plots aside): every figure printed here
is one the JSON holds, every target sits beside its figure, and every missed target is
followed by what the run recorded about where the time went.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PROFILE_LINES = 45
FLEETS = {
    "simulator": "`edgefleet-agent simulate`: real agents, simulated runtime, one process",
    "lite": "bench/lite_fleet.py: protocol-level nodes that answer at once — the control"
    " plane's own time",
}


def busiest(cpu: dict[str, float] | None) -> str | None:
    """``"fleet 85 %"``: the process with the most CPU time in a convergence window."""
    if not cpu or not cpu.get("wall_s"):
        return None
    name, used = max(((k, v) for k, v in cpu.items() if k != "wall_s"), key=lambda kv: kv[1])
    return f"{name} {used / cpu['wall_s']:.0%}"


def _fmt(value: Any) -> str:
    if isinstance(value, bool):  # before int: a bool is an int to isinstance
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _met(row: dict[str, Any]) -> str:
    if row["met"] is None:
        return ""
    return "yes" if row["met"] else "**NO**"


def in_summary(row: dict[str, Any]) -> bool:
    """Targets and key figures go in the summary table; other context in each section."""
    return "target" in row or bool(row.get("key"))


def summary_rows(report: dict[str, Any]) -> list[str]:
    lines = ["| scenario | case | figure | value | target | met |", "|---|---|---|---|---|---|"]
    for name, result in report["scenarios"].items():
        if "error" in result:
            lines.append(f"| {name} | | **failed to run** | {result['error']} | | **NO** |")
            continue
        for row in filter(in_summary, result.get("rows", [])):
            target = f"{row['op']} {_fmt(row['target'])}" if "target" in row else ""
            lines.append(
                f"| {name} | {row['case']} | {row['figure']} | {_fmt(row['value'])} |"
                f" {target} | {_met(row)} |"
            )
    return lines


def excerpt(profile: str, lines: int = PROFILE_LINES) -> str:
    """A profile's call tree and self-time list without pyinstrument's banners, cut to
    ``lines`` lines each: enough to see where the time goes."""
    out: list[str] = []
    for part in profile.split("Self time, top functions:"):
        body = [
            line
            for line in part.splitlines()
            if line.strip()
            and not line.lstrip().startswith(("_ ", "/_", "/ ", "Recorded", "Profile at"))
            and "v5." not in line
            and "__/__" not in line
        ]
        if out:
            out.append("")
            out.append("Self time, top functions:")
        out.extend(body[:lines])
    return "\n".join(out)


def missed(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result.get("rows", []) if r["met"] is False]


def markdown(report: dict[str, Any], plots: dict[str, str]) -> str:
    m = report["machine"]
    lines = [
        f"# edgefleet benchmarks — {m['date']} on {m['host']}",
        "",
        f"{m['cores']} cores ({m['cpu_model']}), {m['memory_mb']:,} MB, Python {m['python']},"
        f" {m['mosquitto']}. Scale: **{report['scale']}**; total {report['wall_s']} s.",
        f"Load average (1/5/15 min) at start {m['load_start']}, at end {report['load_end']}"
        " — the machine is shared, so each scenario measures its baseline in the same run.",
        "",
        "## Figures and targets",
        "",
        *summary_rows(report),
        "",
        "`met` is empty for key figures shown for context (no target of their own); each"
        " section below has the rest.",
        "",
    ]
    for name, result in report["scenarios"].items():
        lines += [f"## {name}", ""]
        if "error" in result:
            lines += [f"**Failed to run**: {result['error']}", ""]
            continue
        lines += [f"Wall time {result['wall_s']} s; load average before {result['load']}.", ""]
        lines += _details(name, result)
        others = [r for r in result.get("rows", []) if not in_summary(r)]
        if others:
            lines += [
                "Other figures: "
                + "; ".join(f"{r['case']}: {r['figure']} = {_fmt(r['value'])}" for r in others)
                + ".",
                "",
            ]
        if name in plots:
            lines += [f"![{name}]({plots[name]})", ""]
        misses = missed(result)
        if misses:
            names = ", ".join(f"{r['case']} ({r['figure']})" for r in misses)
            lines += [f"**Target missed**: {names}.", ""]
            if result.get("where"):
                lines += [result["where"], ""]
            if result.get("profile"):
                lines += [
                    "Where the time goes (pyinstrument, a separate profiled run):",
                    "",
                    "```",
                    excerpt(result["profile"]),
                    "```",
                    "",
                ]
    lines += ["Raw figures: the JSON file beside this one.", ""]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[Any]], intro: str | None = None) -> list[str]:
    out = [intro, ""] if intro else []
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(v) if v is not None else "" for v in r) + " |" for r in rows]
    out.append("")
    return out


def _details(name: str, result: dict[str, Any]) -> list[str]:
    if name.startswith("convergence"):
        rows = [
            [s["nodes"], c["case"], c["replicas"], c.get("p50_s"), c.get("p99_s"),
             c.get("total_s"), c.get("status_s"), c.get("desired_out_p99_s"),
             c.get("answered_p99_s"), busiest(c.get("cpu_s"))]
            for s in result["sizes"] for c in s["cases"]
        ]  # fmt: skip
        return _table(
            ["nodes", "app", "replicas", "p50 s", "p99 s", "total s", "app status s",
             "desired out p99 s", "answered p99 s", "busiest process (CPU / wall)"],
            rows,
            f"Fleet: **{result['fleet']}** ({FLEETS.get(result['fleet'], '')}). *desired out*:"
            " deploy command to the replica's desired document on the wire (the"
            " orchestrator's part); *answered*: from there to reported running (broker and"
            " agent).",
        )  # fmt: skip
    if name.startswith("fleet_size"):
        rows = []
        for s in result["tried"]:
            case = s.get("cases", [{}])[0]
            rows.append([s["nodes"], case.get("p50_s"), case.get("p99_s"), case.get("total_s"),
                         case.get("desired_out_p99_s"), case.get("answered_p99_s"),
                         s.get("ready_s"), busiest(case.get("cpu_s")), s.get("error")])  # fmt: skip
        header = ["nodes", "p50 s", "p99 s", "total s", "desired out p99 s", "answered p99 s",
                  "fleet ready s", "busiest process", "error"]  # fmt: skip
        return _table(
            header,
            rows,
            f"Fleet: **{result['fleet']}**; largest with p99 <= 5 s: "
            f"**{result['largest_nodes']:,}** nodes.",
        )
    if name == "failover":
        rows = [
            [r["mode"], r["grace_s"], r["keepalive_s"], r["notice_s"], r["replaced_s"],
             r["over_grace_s"]]
            for r in result["runs"]
        ]  # fmt: skip
        return _table(
            ["mode", "grace s", "keepalive s", "notice s", "replaced s", "beyond grace s"], rows
        )
    if name == "ingest":
        rows = [
            [c["consumer"], c.get("protocol", "3.1.1"), c["rate"], c["offered_rate"],
             c["saturated"]]
            for c in result["consumers"].values()
        ]  # fmt: skip
        table = _table(
            ["consumer", "MQTT", "msgs/s handled", "msgs/s offered", "saturated"],
            rows,
            f"{result['nodes']:,} nodes' telemetry at QoS 0.",
        )
        rounds = [[i + 1, r["paho"], r["orchestrator"], r["ratio"]]
                  for i, r in enumerate(result.get("rounds", []))]  # fmt: skip
        if rounds:
            table += _table(
                ["round", "paho msgs/s", "orchestrator msgs/s", "orchestrator / paho"],
                rounds,
                "paho and the orchestrator in alternation (the ratio above is the median):",
            )
        return table
    if name == "outbound":
        rows = [
            [i + 1, r["broker"]["published_s"], r["broker"]["delivered_s"],
             r["session"]["published_s"], r["session"]["delivered_s"], r["ratio"]]
            for i, r in enumerate(result["rounds"])
        ]  # fmt: skip
        return _table(
            ["round", "broker: acked s", "broker: delivered s", "session: acked s",
             "session: delivered s", "session / broker"],
            rows,
            f"{result['documents']:,} QoS 1 retained documents of {result['bytes']:,} bytes to"
            " one QoS 1 subscriber; the phases alternate.",
        )  # fmt: skip
    if name == "placement_quality":
        rows = [
            [r["instance"], r["objective"], r["replicas"], r["pipeline"], r["optimum"],
             r["ratio"], r.get("ratio_within_spread_rule")]
            for r in result["instances"]
        ]  # fmt: skip
        return _table(
            ["instance", "objective", "replicas", "pipeline", "optimum", "ratio",
             "ratio within spread rule"], rows,
        )  # fmt: skip
    if name == "placement_throughput":
        rows = [
            [k, v["nodes"], v["replicas"], v["fleet"]["placements_per_s"],
             v["single_app"]["placements_per_s"], v["steady"]["seconds"],
             v.get("steady_memo", {}).get("seconds")]
            for k, v in result["runs"].items()
        ]  # fmt: skip
        return _table(
            ["run", "nodes", "replicas", "fleet pass /s", "single app /s",
             "steady pass s (afresh)", "steady pass s (memo)"], rows,
        )  # fmt: skip
    if name == "agent_footprint":
        rows = [
            [c["workloads"], c["rss_mb"], c["cpu_pct"], c["up_bytes_per_s"], c["down_bytes_per_s"],
             c["bytes_per_s"]]
            for c in result["cases"]
        ]  # fmt: skip
        return _table(["workloads", "RSS MB", "CPU %", "up B/s", "down B/s", "total B/s"], rows)
    return []


# -- plots ----------------------------------------------------------------------------------


def plot_all(report: dict[str, Any], stem: Path) -> dict[str, str]:
    """One PNG per scenario that has a curve; returns scenario -> file name."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made: dict[str, str] = {}
    scenarios = report["scenarios"]
    for name, draw in (
        ("convergence", _plot_convergence),
        ("convergence_lite", _plot_convergence),
        ("fleet_size", _plot_fleet_size),
        ("fleet_size_lite", _plot_fleet_size),
        ("ingest", _plot_ingest),
        ("placement_quality", _plot_quality),
        ("failover", _plot_failover),
    ):
        result = scenarios.get(name)
        if not result or "error" in result:
            continue
        fig = draw(plt, result)
        path = stem.parent / f"{stem.name}-{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        made[name] = path.name
    return made


def _plot_convergence(plt: Any, result: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4))
    for size in result["sizes"]:
        for case in size["cases"]:
            points = case.get("cdf_s") or []
            if not points:
                continue
            fractions = [(i + 1) / len(points) for i in range(len(points))]
            ax.plot(points, fractions, label=f"{size['nodes']} nodes, {case['case']}")
    ax.axvline(3.0, color="grey", linestyle="--", label="target at 1,000 nodes (3 s)")
    ax.set_xlabel("seconds from deploy command to replica reported running")
    ax.set_ylabel("fraction of replicas")
    ax.set_title(f"Convergence CDF ({result['fleet']} fleet)")
    ax.legend(fontsize=7)
    return fig


def _plot_fleet_size(plt: Any, result: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4))
    for size in result["tried"]:
        points = (size.get("cases") or [{}])[0].get("cdf_s") or []
        if points:
            fractions = [(i + 1) / len(points) for i in range(len(points))]
            ax.plot(points, fractions, label=f"{size['nodes']:,} nodes, daemon")
    ax.axvline(5.0, color="grey", linestyle="--", label="p99 limit (5 s)")
    ax.axhline(0.99, color="lightgrey", linestyle=":")
    ax.set_xlabel("seconds from deploy command to replica reported running")
    ax.set_ylabel("fraction of replicas")
    ax.set_title(f"Fleet size: daemon convergence CDF ({result['fleet']} fleet)")
    ax.legend(fontsize=7)
    return fig


def _plot_ingest(plt: Any, result: dict[str, Any]) -> Any:
    fig, (bars, curves) = plt.subplots(1, 2, figsize=(11, 4))
    consumers = list(result["consumers"].values())
    names = [c["consumer"] for c in consumers]
    bars.bar(names, [c["rate"] for c in consumers], color="steelblue")
    bars.set_yscale("log")
    bars.set_ylabel("messages handled per second (log)")
    bars.set_title("Sustained telemetry rate")
    bars.tick_params(axis="x", labelrotation=30)
    for c in consumers:
        curve = c.get("curve") or []
        if len(curve) < 2:
            continue
        t = [p[0] for p in curve]
        n = [p[1] - curve[0][1] for p in curve]
        curves.plot(t, n, label=c["consumer"])
    curves.set_xlabel("seconds from the paced load's start")
    curves.set_ylabel("messages handled")
    curves.set_yscale("symlog")
    curves.set_title("Cumulative count")
    curves.legend(fontsize=7)
    return fig


def _plot_quality(plt: Any, result: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(9, 4))
    instances = result["instances"]
    ax.bar([r["instance"] for r in instances], [r["ratio"] or 0 for r in instances])
    ax.axhline(1.05, color="red", linestyle="--", label="target (1.05)")
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("pipeline / exact optimum")
    ax.set_title("Placement quality (bin-pack: nodes used; spread: max node load)")
    ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    ax.legend()
    return fig


def _plot_failover(plt: Any, result: dict[str, Any]) -> Any:
    fig, ax = plt.subplots(figsize=(7, 4))
    runs = result["runs"]
    labels = [f"{r['mode']}\ngrace {r['grace_s']:g}" for r in runs]
    notice = [r["notice_s"] for r in runs]
    grace = [r["grace_s"] for r in runs]
    over = [max(r["over_grace_s"], 0) for r in runs]
    ax.bar(labels, notice, label="until the broker noticed")
    ax.bar(labels, grace, bottom=notice, label="grace")
    ax.bar(labels, over, bottom=[a + b for a, b in zip(notice, grace, strict=True)],
           label="beyond grace (target <= 1 s)")  # fmt: skip
    ax.set_ylabel("seconds from losing the agent to the replacement running")
    ax.set_title("Failover")
    ax.legend(fontsize=7)
    return fig


def main(argv: list[str] | None = None) -> int:
    """Re-render the markdown and plots of a results JSON (same figures, current layout)."""
    import json
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].endswith(".json"):
        print("usage: python -m bench.report bench/results/<date>-<host>.json")
        return 2
    path = Path(args[0])
    facts = json.loads(path.read_text())
    stem = path.with_suffix("")
    plots = plot_all(facts, stem)
    stem.with_suffix(".md").write_text(markdown(facts, plots))
    print(f"bench: re-rendered {stem}.md and {len(plots)} plots")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
