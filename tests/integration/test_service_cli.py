"""``edgefleet services`` / ``edgefleet service NAME`` against a real mosquitto and a real
orchestrator, with protocol-level fake nodes: the catalog entry appears when an app with a
service is deployed, the CLI prints it as a table and as JSON, and deleting the app clears
the retained message (the CLI then finds no such service, exit 1); a bad name is a usage
error (exit 2). Also: a second app claiming the service name is refused with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from harness.fleet import FakeNode, Operator, Watcher, eventually, running_orchestrator

EDGEFLEET = str(Path(sys.executable).parent / "edgefleet")

WEB = {
    "name": "web",
    "replicas": 2,
    "workload": {"runtime": "simulated"},
    "service": {"ports": [{"name": "http", "port": 8080}], "topology": "prefer-region"},
}


def cli(url: str, root: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EDGEFLEET, *args, "--broker", url, "--root", root, "--timeout", "5"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


async def test_the_cli_reads_the_catalog_and_a_deleted_app_clears_it(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    url, root = broker_url, topic_root
    nodes = [FakeNode(url, root, f"gw{i}", "s1") for i in (1, 2)]
    topic = f"{root}/services/web"
    watcher = Watcher(url, [f"{root}/services/+"])
    cleared: list[bool] = []
    try:
        for node in nodes:
            await node.start()
        await watcher.start()
        async with running_orchestrator(url, root, tmp_path / "orch"), Operator(url, root) as op:
            assert (await op.call("deploy", manifest=WEB))["ok"]
            await eventually(lambda: topic in watcher.latest, 15, "the catalog entry")
            clash = {**WEB, "name": "web2", "service": {"name": "web", "ports": [{"port": 81}]}}
            refused = await op.call("deploy", manifest=clash)
            assert not refused["ok"]
            assert refused["error"]["code"] == "conflict"
            assert "already offered by app web" in refused["error"]["message"]

            listed = cli(url, root, "services", "-o", "json")
            assert listed.returncode == 0, listed.stderr
            (entry,) = json.loads(listed.stdout)
            assert (entry["service"], entry["app"], entry["topology"]) == (
                "web",
                "web",
                "prefer-region",
            )
            assert entry["ports"] == {"http": 8080}
            table = cli(url, root, "service", "web")
            assert table.returncode == 0, table.stderr
            assert "prefer-region" in table.stdout and "http:8080" in table.stdout
            assert cli(url, root, "service", "Bad_Name").returncode == 2

            assert (await op.call("delete", app="web"))["ok"]

            def gone() -> bool:
                # The watcher keeps the last non-empty payload; the CLI sees the clear.
                done = cli(url, root, "services", "-o", "json")
                cleared.append(done.returncode == 0 and json.loads(done.stdout) == [])
                return cleared[-1]

            await eventually(gone, 20, "the cleared catalog")
            missing = cli(url, root, "service", "web")
            assert missing.returncode == 1 and "no service web" in missing.stderr
            assert watcher.latest[topic]["endpoints"] == []  # the last entry before the clear
    finally:
        await watcher.stop()
        for node in nodes:
            await node.stop()
