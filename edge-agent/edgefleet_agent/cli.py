"""``edgefleet-agent``: the gateway agent's command line (argparse, to stay small; its help
and completion look and work like ``edgefleet``'s: :mod:`.helptext`, :mod:`.completion`).

``edgefleet-agent run`` resolves the settings (flags > ``EDGEFLEET_*`` environment >
``--config`` file > defaults), fails fast with exit code 2 and a message naming the
setting when anything is invalid, then runs the agent until SIGTERM/SIGINT. A clean stop
publishes ``offline`` and leaves the workloads running. ``edgefleet-agent config`` prints
the resolved settings (password redacted) without starting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from edgefleet_agent import __version__
from edgefleet_agent.helptext import PanelParser
from edgefleet_agent.service.assembly import Prepared, prepare
from edgefleet_agent.settings import (
    AgentSettings,
    SettingsError,
    env_name,
    read_config_file,
    resolve_settings,
)
from edgefleet_agent.simulate.command import add_arguments as add_simulate_arguments

EXIT_BAD_SETTINGS = 2

# Flags that may repeat map onto one plural setting.
REPEATABLE = {
    "label": ("labels", "KEY=VALUE", "a node label (repeatable)"),
    "probe": ("probes", "NAME=HOST:PORT", "a TCP latency probe target (repeatable)"),
    "sensor": ("sensors", "NAME", "a sensor this gateway has (repeatable)"),
    "address": ("addresses", "ADDR", "an address to advertise instead of detected ones"),
    "deadband": ("deadbands", "KIND=VALUE", "a telemetry deadband, e.g. cpu=5 (repeatable)"),
}
SINGLE = {
    "node": "this gateway's node id",
    "site": "the site the node belongs to",
    "profile": "device profile id (resolved in --profiles-dir) or a path to a profile YAML",
    "profiles_dir": "where profile ids are looked up",
    "broker": "broker URL: mqtt[s]://user:pass@host:port?ca=...&cert=...&key=...",
    "state_dir": "where the local store, process records and metrics files live",
    "runtime": "auto, docker, process or simulated",
    "region": "region label for data-sovereignty placement",
    "root": "topic root (default edgefleet/v1)",
    "heartbeat_s": "full telemetry at least this often (default 60)",
    "keepalive_s": "MQTT keepalive (default 60; a keepalive= in the URL wins)",
    "sample_interval_s": "telemetry sampling period (default 10)",
    "probe_interval_s": "latency probe period (default 60)",
    "reconcile_interval_s": "converge pass period when nothing happens (default 10)",
    "capabilities_interval_s": "capabilities re-check period (default 60)",
    "max_payload_bytes": "largest desired document accepted (default 262144)",
    "metrics_addr": "serve Prometheus metrics on http://HOST:PORT/metrics, loopback only",
    "policy_file": "this gateway's compliance policy (YAML/JSON): refuse desired documents"
    " that break it, whoever signed them",
    "trust_anchor": "trust-anchor.json from `edgefleet broker config`: refuse unsigned or"
    " untrusted desired documents (default: none, unsigned mode)",
    "sim_seed": "simulated runtime: RNG seed",
    "sim_start_delay_s": "simulated runtime: seconds a workload spends starting",
    "sim_failure_rate": "simulated runtime: probability a start fails (0-1)",
    "log_level": "debug, info, warning or error",
    "proxy_ports": "ports the local service proxies may take, LOW-HIGH (default 17000-17999)",
    "proxy_docker_host": "address containers reach the local proxies at (default: docker0's)",
    "workload_user": "user process workloads run as when the agent is root and they name "
    "none (default nobody; '-': as the agent)",
    "event_loop": "auto (default: uvloop when installed), uvloop or asyncio",
}


# The value each setting flag takes, as the help shows it (argparse would say the setting's
# name in capitals, e.g. CAPABILITIES_INTERVAL_S, which says nothing the flag does not).
METAVARS = {
    "broker": "URL",
    "profile": "ID|PATH",
    "profiles_dir": "DIR",
    "state_dir": "DIR",
    "runtime": "NAME",
    "max_payload_bytes": "BYTES",
    "metrics_addr": "HOST:PORT",
    "policy_file": "PATH",
    "trust_anchor": "PATH",
    "sim_seed": "N",
    "sim_failure_rate": "P",
    "log_level": "LEVEL",
    "proxy_ports": "LOW-HIGH",
    "proxy_docker_host": "ADDR",
    "workload_user": "USER",
}


def _metavar(setting: str) -> str:
    if setting in METAVARS:
        return METAVARS[setting]
    return "SECONDS" if setting.endswith("_s") else "ID" if setting != "root" else "ROOT"


def build_parser() -> argparse.ArgumentParser:
    parser = PanelParser(
        prog="edgefleet-agent",
        description="edgefleet-agent: run an edgefleet gateway agent (or a simulated fleet of "
        "them) that takes its desired state from the orchestrator over MQTT.",
    )
    parser.add_argument(
        "--version", action="version", version=f"edgefleet-agent {__version__}",
        help="Print the version and exit.",
    )  # fmt: skip
    parser.add_argument(
        "--install-completion",
        metavar="SHELL",
        nargs="?",
        help="Install completion for bash or zsh (default: the current shell).",
    )
    parser.add_argument(
        "--show-completion",
        metavar="SHELL",
        nargs="?",
        help="Show completion for bash or zsh (default: the current shell), to copy it or "
        'customize the installation: eval "$(edgefleet-agent --show-completion bash)".',
    )
    parser._actions[0].help = "Show this message and exit."
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run the agent until SIGTERM/SIGINT"),
        ("config", "print the resolved settings and exit"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub._actions[0].help = "Show this message and exit."
        sub.add_argument("--config", metavar="PATH", help="YAML or TOML settings file")
        for setting, help_text in SINGLE.items():
            sub.add_argument(
                "--" + setting.replace("_", "-"),
                dest=setting,
                metavar=_metavar(setting),
                help=f"{help_text} (env {env_name(setting)})",
            )
        for flag, (setting, metavar, help_text) in REPEATABLE.items():
            sub.add_argument(
                f"--{flag}",
                dest=setting,
                action="append",
                metavar=metavar,
                help=f"{help_text} (env {env_name(setting)})",
            )
    simulate = commands.add_parser(
        "simulate",
        help="run a simulated fleet of real agents in this process",
        description="Run N real agents (simulated runtime, device profiles, own MQTT "
        "sessions) in one process, with fault injection. See edgefleet_agent/simulate/command.py.",
    )
    simulate._actions[0].help = "Show this message and exit."
    add_simulate_arguments(simulate)
    return parser


def load_settings(args: argparse.Namespace, environ: dict[str, str]) -> AgentSettings:
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    config = args.config or environ.get("EDGEFLEET_CONFIG")
    file_values: dict[str, Any] = {}
    if config:
        file_values = read_config_file(Path(config))
    return resolve_settings(flags, environ, file_values, file_name=str(config or "config file"))


def describe(settings: AgentSettings) -> dict[str, Any]:
    data = asdict(settings)
    data["broker"] = settings.broker.redacted()
    return json.loads(json.dumps(data, default=str))  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] in (["--show-completion"], ["--install-completion"]):
        return _completion(words)
    args = build_parser().parse_args(argv)
    if args.command == "simulate":
        from edgefleet_agent.simulate.command import main_simulate

        return main_simulate(args)
    try:
        settings = load_settings(args, dict(os.environ))
        if args.command == "config":
            print(json.dumps(describe(settings), indent=2, sort_keys=True))
            return 0
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        loop = new_event_loop(settings.event_loop)
        prepared = prepare(settings)
    except SettingsError as exc:
        print(f"edgefleet-agent: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    return run_until_signalled(prepared, loop)


def _completion(words: list[str]) -> int:
    """``--show-completion [SHELL]`` prints the script; ``--install-completion [SHELL]``
    installs it (as ``edgefleet``'s do; the shell defaults to the one in ``$SHELL``)."""
    from edgefleet_agent.completion import (
        SHELLS,
        completion_script,
        current_shell,
        install_completion,
    )

    flag = words[0]
    shell = words[1] if len(words) > 1 else current_shell(os.environ.get("SHELL", ""))
    if shell not in SHELLS:
        print(f"edgefleet-agent: {flag}: one of {', '.join(SHELLS)}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    script = completion_script(build_parser(), shell)
    if flag == "--show-completion":
        print(script, end="")
        return 0
    try:
        path, rc = install_completion(script, shell, Path.home())
    except OSError as exc:
        print(f"edgefleet-agent: {flag}: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTINGS
    print(f"{shell} completion installed in {path} (sourced from {rc})")
    print("Completion will take effect once you restart the terminal")
    return 0


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """The agent's event loop: uvloop when installed (``auto``) or asked for, else asyncio.

    Why uvloop: the local service proxy's cost is per connection (accept, connect, two
    transports), and uvloop's are cheaper: 1.3-1.5x the relayed requests per CPU second in
    bench/service_proxy.py (1.01x direct against asyncio's 0.66x). ``asyncio`` is the way
    out should a platform's uvloop misbehave.
    """
    if kind in ("auto", "uvloop"):
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise SettingsError("event_loop", "uvloop is not installed") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_until_signalled(prepared: Prepared, loop: asyncio.AbstractEventLoop) -> int:
    """Run the agent on ``loop`` (fresh); SIGTERM/SIGINT stop it cleanly.

    The loop is closed without waiting for the default thread pool: a Docker pull stuck in
    a worker thread must not hold the process past the shutdown deadline.
    """
    asyncio.set_event_loop(loop)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    async def serve() -> int:
        agent = prepared.build()  # built inside the loop that runs it
        address = prepared.settings.metrics_addr
        if address is None:
            await agent.run(stop)
            return 0
        from edgefleet_agent.exporters.metrics import metrics_server  # only when asked for

        server = metrics_server(agent, address)
        try:
            await server.start()
        except OSError as exc:
            print(f"edgefleet-agent: --metrics-addr {address}: {exc.strerror}", file=sys.stderr)
            prepared.store.close()
            return EXIT_BAD_SETTINGS
        try:
            await agent.run(stop)
        finally:
            await server.close()
        return 0

    try:
        return loop.run_until_complete(serve())
    finally:
        with contextlib.suppress(Exception):
            loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
