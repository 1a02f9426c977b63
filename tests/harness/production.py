"""Run a generated production broker set (``edgefleet broker config``) in a test.

Only what a test machine must change is overridden — the listener moves to a free
loopback port, persistence and the log go into the test's temp dir, and, when the tests
run as root, ``user root`` stops mosquitto from dropping to the ``mosquitto`` user (which
could not read the test's 0600 files). Every other line — TLS, password file, ACL file,
limits — is the generated config exactly as an operator would deploy it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path

import typer
from edgefleet_cli.commands import broker as cli_broker
from typer.testing import CliRunner

from harness.mosquitto import Mosquitto, free_port, start_mosquitto


def generate_set(out: Path, *args: str) -> dict[str, dict[str, object]]:
    """Run ``edgefleet broker config --out OUT ARGS...``; returns credentials.json's users."""
    root = typer.Typer()
    root.add_typer(cli_broker.app, name="broker")
    result = CliRunner().invoke(root, ["broker", "config", "--out", str(out), *args])
    if result.exit_code != 0:
        raise AssertionError(f"edgefleet broker config failed: {result.output}")
    users: dict[str, dict[str, object]] = json.loads((out / "credentials.json").read_text())[
        "users"
    ]
    return users


def override(config: str, replacements: Mapping[str, str]) -> str:
    """Replace each line starting with a key (a directive name) by its value.

    Every key must match at least one line: a renamed directive in the generator must
    fail the test, not silently run the broker with its default.
    """
    lines = config.splitlines()
    for directive, new in replacements.items():
        pattern = re.compile(rf"^{re.escape(directive)}(\s|$)")
        hits = [i for i, line in enumerate(lines) if pattern.match(line)]
        if not hits:
            raise AssertionError(f"config has no {directive!r} line to override")
        for i in hits:
            lines[i] = new
    return "\n".join(lines) + "\n"


def for_test(config: str, *, port: int, workdir: Path, persistence: bool = True) -> str:
    """``config`` with the listener, persistence and log moved into the test's sandbox."""
    replacements = {
        "listener": f"listener {port} 127.0.0.1",
        "log_dest": f"log_dest file {workdir / 'mosquitto.log'}",
    }
    if persistence:
        data = workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        replacements["persistence_location"] = f"persistence_location {data}/"
    text = override(config, replacements)
    if os.geteuid() == 0:
        text += "user root\n"
    return text


def installed(config: str, paths: Mapping[str, Path]) -> str:
    """A documented config (``broker-config/*.conf``) with its install paths swapped for
    where a test put the files: ``{"/etc/mosquitto/edgefleet/": tmp_dir, ...}``, applied
    longest prefix first so nested directories map correctly."""
    for prefix in sorted(paths, key=len, reverse=True):
        if prefix not in config:
            raise AssertionError(f"config never mentions {prefix!r}")
        config = config.replace(prefix, f"{paths[prefix]}/")
    return config


def start_generated_broker(set_dir: Path, workdir: Path, *, config: str | None = None) -> Mosquitto:
    """Start mosquitto on a generated set (its ``mosquitto.conf`` unless ``config`` is
    given) on a free loopback port."""
    port = free_port()
    text = config if config is not None else (set_dir / "mosquitto.conf").read_text()
    return start_mosquitto(
        workdir, config=for_test(text, port=port, workdir=workdir), port=port, tls=True
    )
