"""``edgefleet orchestrator run``: the long-running control-plane service."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.topics import DEFAULT_ROOT, validate_root

from edgefleet_orchestrator.fleet.registry import DEFAULT_STALE_AFTER_S
from edgefleet_orchestrator.store.base import StoreError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from edgefleet_protocol.policy import CompliancePolicy

    from edgefleet_orchestrator.access.roles import AccessPolicy
    from edgefleet_orchestrator.security.signer import Signer

app = typer.Typer(help="Run the orchestrator service.", no_args_is_help=True)


@app.command("run")
def run(
    broker: str = typer.Option(
        "mqtt://127.0.0.1:1883",
        "--broker",
        envvar="EDGEFLEET_BROKER",
        help="Broker URL: mqtt://[user:pass@]host[:port] or mqtts://...?ca=FILE",
    ),
    data_dir: Path = typer.Option(
        Path("/var/lib/edgefleet"),
        "--data-dir",
        envvar="EDGEFLEET_DATA_DIR",
        help="Where the SQLite store and its lock live.",
    ),
    root: str = typer.Option(
        DEFAULT_ROOT, "--root", envvar="EDGEFLEET_ROOT", help="Topic root prefix."
    ),
    stale_after: float = typer.Option(
        DEFAULT_STALE_AFTER_S,
        "--stale-after",
        help="Seconds without a heartbeat before a node counts as stale.",
    ),
    tick: float = typer.Option(1.0, "--tick", help="Timer period in seconds (staleness, grace)."),
    scaling_interval: float = typer.Option(
        15.0,
        "--scaling-interval",
        help="Seconds between looks at telemetry for autoscaling and sized limits.",
    ),
    resize_cooldown: float = typer.Option(
        60.0, "--resize-cooldown", help="Seconds between two resizes of one replica."
    ),
    rebalance_moves: int = typer.Option(
        2,
        "--rebalance-moves",
        min=0,
        help="Rebalancing's churn budget: moves per --rebalance-interval (0: off).",
    ),
    rebalance_interval: float = typer.Option(
        60.0, "--rebalance-interval", help="Seconds over which --rebalance-moves counts."
    ),
    metrics_addr: str | None = typer.Option(
        None,
        "--metrics-addr",
        envvar="EDGEFLEET_ORCHESTRATOR_METRICS_ADDR",
        help="Serve Prometheus metrics on http://HOST:PORT/metrics (e.g. 127.0.0.1:9464).",
    ),
    metrics_per_node_limit: int = typer.Option(
        0,
        "--metrics-per-node-limit",
        min=0,
        help="Also export per-node series while the fleet has at most this many nodes "
        "(0: never; keeps the series count bounded).",
    ),
    rebalance_settle: float = typer.Option(
        30.0,
        "--rebalance-settle",
        min=0,
        help="Seconds a returning node must stay online before rebalancing targets it.",
    ),
    flap_max: int = typer.Option(
        3, "--flap-max", min=1, help="Exits from online within --flap-window before flapping."
    ),
    flap_window: float = typer.Option(
        600.0, "--flap-window", help="Seconds over which --flap-max counts (and it clears)."
    ),
    burst_nodes: int = typer.Option(
        3,
        "--burst-nodes",
        min=0,
        help="Nodes offline within --burst-window that make a broker event (0: off).",
    ),
    burst_window: float = typer.Option(1.0, "--burst-window", help="Seconds; see --burst-nodes."),
    burst_hold: float = typer.Option(
        30.0,
        "--burst-hold",
        min=0,
        help="After a broker event, seconds before the nodes' disconnect grace starts.",
    ),
    policy: Path | None = typer.Option(
        None,
        "--policy",
        envvar="EDGEFLEET_POLICY",
        help="Compliance policy file (YAML/JSON): every deploy is admitted against it.",
    ),
    signing_key: Path | None = typer.Option(
        None,
        "--signing-key",
        envvar="EDGEFLEET_SIGNING_KEY",
        help="Ed25519 PEM key to sign desired documents with (keys/orchestrator.key of "
        "`edgefleet broker config`); without it documents go out unsigned.",
    ),
    key_chain: Path | None = typer.Option(
        None,
        "--key-chain",
        envvar="EDGEFLEET_KEY_CHAIN",
        help="Endorsement chain of a rotated signing key (`edgefleet keys rotate`).",
    ),
    homeassistant: bool = typer.Option(
        False,
        "--homeassistant",
        help="Publish Home Assistant MQTT discovery: every gateway and app as a device.",
    ),
    homeassistant_prefix: str = typer.Option(
        "homeassistant",
        "--homeassistant-prefix",
        help="Home Assistant's discovery prefix.",
    ),
    roles: Path | None = typer.Option(
        None,
        "--roles",
        envvar="EDGEFLEET_ROLES",
        help="Operators' roles and scope (YAML): viewer, deployer, admin, optionally limited "
        "to apps and sites. Without it every operator is admin (development only).",
    ),
    client_id: str = typer.Option("edgefleet-orchestrator", "--client-id"),
    log_level: str = typer.Option("INFO", "--log-level", envvar="EDGEFLEET_LOG_LEVEL"),
) -> None:
    """Run the orchestrator until SIGTERM/SIGINT."""
    from edgefleet_protocol.scrape import AddressError, parse_address

    from edgefleet_orchestrator.exporters.run import ExporterOptions, run_until_signalled
    from edgefleet_orchestrator.service.config import OrchestratorConfig
    from edgefleet_orchestrator.service.presence import RivalOrchestrator

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = BrokerSettings.from_url(broker)
        validate_root(root)
        metrics = parse_address(metrics_addr) if metrics_addr else None
    except (ProtocolError, AddressError) as exc:
        option = "--metrics-addr: " if isinstance(exc, AddressError) else ""
        typer.echo(f"error: {option}{exc}", err=True)
        raise typer.Exit(2) from None
    periods = (stale_after, tick, scaling_interval, rebalance_interval, flap_window, burst_window)
    if min(periods) <= 0 or resize_cooldown < 0:
        typer.echo(
            "error: --stale-after, --tick, --scaling-interval, --rebalance-interval,"
            " --flap-window and --burst-window must be positive, --resize-cooldown 0 or more",
            err=True,
        )
        raise typer.Exit(2)
    signer = _load_signer(signing_key, key_chain)
    compliance = _load_policy(policy)
    sealing_key = _sealing_key(data_dir)
    access = _load_roles(roles)
    config = OrchestratorConfig(
        broker=settings,
        data_dir=data_dir,
        root=root,
        client_id=client_id,
        stale_after_s=stale_after,
        tick_s=tick,
        scaling_interval_s=scaling_interval,
        resize_cooldown_s=resize_cooldown,
        rebalance_max_moves=rebalance_moves,
        rebalance_interval_s=rebalance_interval,
        rebalance_settle_s=rebalance_settle,
        flap_max=flap_max,
        flap_window_s=flap_window,
        burst_nodes=burst_nodes,
        burst_window_s=burst_window,
        burst_hold_s=burst_hold,
        signer=signer,
        policy=compliance,
        sealing_key=sealing_key,
        access=access,
    )
    if homeassistant and not re.fullmatch(
        r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", homeassistant_prefix
    ):
        typer.echo(
            "error: --homeassistant-prefix must be topic levels of A-Z a-z 0-9 _ - "
            f"(got {homeassistant_prefix!r})",
            err=True,
        )
        raise typer.Exit(2)
    options = ExporterOptions(
        metrics=metrics,
        per_node_limit=metrics_per_node_limit,
        homeassistant_prefix=homeassistant_prefix if homeassistant else None,
    )
    try:
        asyncio.run(run_until_signalled(config, options))
    except (StoreError, RivalOrchestrator) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except OSError as exc:  # only the metrics port is bound before the service runs
        typer.echo(f"error: --metrics-addr {metrics}: cannot listen: {exc.strerror}", err=True)
        raise typer.Exit(2) from None


def _sealing_key(data_dir: Path) -> X25519PrivateKey:
    """``<data-dir>/sealing.key`` (made 0600 on the first start): secrets are sealed to it."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from edgefleet_protocol.sealing import SealError, private_bytes, private_from_bytes

    path = data_dir / "sealing.key"
    try:
        return private_from_bytes(path.read_bytes())
    except FileNotFoundError:
        data_dir.mkdir(parents=True, exist_ok=True)
        key = X25519PrivateKey.generate()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, private_bytes(key))
        finally:
            os.close(fd)
        return key
    except (OSError, SealError) as exc:
        typer.echo(f"error: cannot use the sealing key {path}: {exc}", err=True)
        raise typer.Exit(2) from None


def _load_policy(path: Path | None) -> CompliancePolicy | None:
    """The compliance policy, or exit 2 naming the file and what is wrong in it."""
    from edgefleet_protocol.policy import load_policy

    if path is None:
        return None
    try:
        return load_policy(path.read_bytes(), source=str(path))
    except OSError as exc:
        typer.echo(f"error: --policy: cannot read {path}: {exc.strerror}", err=True)
    except ProtocolError as exc:
        typer.echo(f"error: --policy: {exc}", err=True)
    raise typer.Exit(2)


def _load_roles(path: Path | None) -> AccessPolicy:
    """The operators' roles, or exit 2 naming the file and what is wrong in it."""
    import yaml

    from edgefleet_orchestrator.access.roles import OPEN, parse_policy

    if path is None:
        return OPEN
    try:
        return parse_policy(yaml.safe_load(path.read_text()), str(path))
    except OSError as exc:
        typer.echo(f"error: --roles: cannot read {path}: {exc.strerror}", err=True)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        typer.echo(f"error: --roles: {path} is not YAML: {exc}", err=True)
    except ValueError as exc:
        typer.echo(f"error: --roles: {exc}", err=True)
    raise typer.Exit(2)


def _load_signer(key_path: Path | None, chain_path: Path | None) -> Signer | None:
    """The signing identity, or exit 2 naming the file that is wrong."""
    from edgefleet_orchestrator.security.signer import load_signer

    if key_path is None:
        if chain_path is not None:
            typer.echo("error: --key-chain needs --signing-key", err=True)
            raise typer.Exit(2)
        return None
    try:
        chain = chain_path.read_bytes() if chain_path is not None else None
        return load_signer(key_path.read_bytes(), chain)
    except OSError as exc:
        typer.echo(f"error: cannot read {exc.filename}: {exc.strerror}", err=True)
    except ProtocolError as exc:
        typer.echo(f"error: {key_path if exc.field == 'signing_key' else chain_path}: {exc}",
                   err=True)  # fmt: skip
    raise typer.Exit(2)
