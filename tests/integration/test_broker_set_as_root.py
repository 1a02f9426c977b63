"""The tutorial's production broker set, word for word, as root: generated with
``edgefleet broker config --bind 127.0.0.1``, started with ``mosquitto -c <set>/mosquitto.conf``
and nothing changed by hand. mosquitto started as root drops to its own user before it
reads the password and ACL files, so this only works because the generator lets that
user's group read them. Then an operator connects over TLS with the files of its
``clients/`` folder alone (the CA its env file points at is in that folder).
"""

from __future__ import annotations

import asyncio
import grp
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import Session
from harness.mosquitto import free_port, mosquitto_binary

BIN = Path(sys.executable).parent


def generate(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False)


def start(conf: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as sink:
        return subprocess.Popen(
            [mosquitto_binary(), "-c", str(conf)], stdout=sink, stderr=subprocess.STDOUT
        )


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A directory mosquitto's user can pass through, like /etc/mosquitto (pytest's own
    tmp dirs are 0700 root, as /root is: the generator warns about those)."""
    path = Path(tempfile.mkdtemp(prefix="edgefleet-set-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_the_generated_set_runs_as_root_without_hand_fixing(
    tmp_path: Path, reachable: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("the tutorial's root case needs root")
    try:
        mosquitto_gid = grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        pytest.skip("no mosquitto group (Debian's package creates it)")
    port = free_port()
    data = tmp_path / "data"  # the default /var/lib/mosquitto is the package's, mosquitto's own
    data.mkdir()
    os.chown(data, -1, mosquitto_gid)
    data.chmod(0o770)
    out = reachable / "broker-set"
    done = generate(
        [
            str(BIN / "edgefleet"),
            "broker",
            "config",
            "--out",
            str(out),
            "--host",
            "localhost",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data),
            "--operator",
            "alice",
            "--node",
            "plant-a/gw-1",
        ],
    )
    assert done.returncode == 0, done.stderr
    assert "readable by group mosquitto" in done.stdout
    assert "warning" not in done.stderr
    log = tmp_path / "mosquitto.log"
    broker = start(out / "mosquitto.conf", log)
    try:
        deadline = time.monotonic() + 10
        while not listening(port) and broker.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert broker.poll() is None, log.read_text()
        assert listening(port), log.read_text()
        client = out / "clients"
        env = dict(
            line.split("=", 1)
            for line in (client / "alice.env").read_text().splitlines()
            if "=" in line and not line.startswith("#")
        )
        url = env["EDGEFLEET_BROKER"].strip("'\"")
        # The env file names <client-dir>/ca.crt; here the folder is where it was written.
        settings = BrokerSettings.from_url(url)
        settings = BrokerSettings(
            host="127.0.0.1",
            port=port,
            username=settings.username,
            password=settings.password,
            tls=True,
            ca_file=str(client / "ca.crt"),
            cert_file=str(client / "alice.crt"),
            key_file=str(client / "alice.key"),
        )
        session = Session(settings, client_id="alice")
        async with session:
            assert await session.wait_connected(10), session.stats.last_error
    finally:
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(10)
        except subprocess.TimeoutExpired:
            broker.kill()
        shutil.rmtree(out, ignore_errors=True)
