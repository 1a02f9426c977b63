"""Run a generated production broker set (``edgefleet broker config``) in a test.

Only what a test machine must change is overridden — the listener moves to a free
loopback port, persistence and the log go into the test's temp dir, and, when the tests
run as root, ``user root`` stops mosquitto from dropping to the ``mosquitto`` user (which
could not read the test's 0600 files). Every other line — TLS, password file, ACL file,
limits — is the generated config exactly as an operator would deploy it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from harness.mosquitto import Mosquitto, free_port, start_mosquitto


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


def for_test(config: str, *, port: int, workdir: Path, listener: str = "listener") -> str:
    """``config`` with the listener, persistence and log moved into the test's sandbox."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    text = override(
        config,
        {
            listener: f"listener {port} 127.0.0.1",
            "persistence_location": f"persistence_location {data}/",
            "log_dest": f"log_dest file {workdir / 'mosquitto.log'}",
        },
    )
    if os.geteuid() == 0:
        text += "user root\n"
    return text


def start_generated_broker(set_dir: Path, workdir: Path) -> Mosquitto:
    """Start mosquitto on ``set_dir/mosquitto.conf`` (a generated set) on a free port."""
    port = free_port()
    config = for_test((set_dir / "mosquitto.conf").read_text(), port=port, workdir=workdir)
    return start_mosquitto(workdir, config=config, port=port, tls=True)
