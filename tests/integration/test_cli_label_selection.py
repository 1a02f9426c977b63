"""``edgefleet nodes -l`` and ``apps -l`` against a real orchestrator (in this process)
and gateways with labels: the replies carry the labels, the command keeps what matches,
and ``-o wide`` shows them."""

from __future__ import annotations

import json
from pathlib import Path

from harness.fleet import FakeNode, Operator, edgefleet, eventually, running_orchestrator


async def test_label_selectors_and_wide_output(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = [
        FakeNode(broker_url, topic_root, "gw-1", "a", labels={"role": "sensor", "zone": "a"}),
        FakeNode(broker_url, topic_root, "gw-2", "a", labels={"role": "camera"}),
    ]
    common = ["--broker", broker_url, "--root", topic_root]
    async with running_orchestrator(broker_url, topic_root, tmp_path / "orch") as orch:
        try:
            for n in nodes:
                await n.start()
            await eventually(lambda: len(orch.state.registry.nodes) == 2, what="both nodes")
            async with Operator(broker_url, topic_root) as op:
                for name, labels in (("web", {"team": "data"}), ("db", {"team": "ops"})):
                    manifest = {
                        "name": name,
                        "replicas": 1,
                        "labels": labels,
                        "workload": {"runtime": "process", "command": ["true"]},
                    }
                    assert (await op.call("deploy", manifest=manifest))["ok"]
            code, out, err = await edgefleet("nodes", "-l", "role=sensor", "-o", "json", *common)
            assert code == 0, err
            assert [r["node"] for r in json.loads(out)["nodes"]] == ["gw-1"]
            code, out, _ = await edgefleet("nodes", "-l", "!zone", "-o", "wide", *common)
            assert "gw-2" in out and "role=camera" in out and "gw-1" not in out
            code, out, _ = await edgefleet("apps", "--selector", "team=ops", *common)
            assert code == 0 and "db" in out and "web" not in out
            code, _, err = await edgefleet("apps", "-l", "bad key", *common)
            assert code == 2 and "--selector" in err
        finally:
            for n in nodes:
                await n.stop()
