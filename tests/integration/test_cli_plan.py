"""``edgefleet diff`` and ``edgefleet deploy --dry-run`` against a real orchestrator (in
this process) on the session's mosquitto, with two gateways: the real CLI process prints
what a deploy would change and where the replicas would go, and afterwards nothing has
changed: the same stored manifest and revisions, the same retained desired documents and
app status, and no pass."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import yaml
from harness.fleet import FakeNode, Operator, edgefleet, eventually, running_orchestrator
from harness.observer import retained_now


def retained(url: str, root: str) -> dict[str, bytes]:
    """Every retained desired document and app status under ``root``, by topic."""
    found = retained_now(url, f"{root}/nodes/+/+/desired") + retained_now(url, f"{root}/apps/#")
    return {s.topic: s.payload for s in found}


async def test_diff_and_dry_run_show_the_change_and_change_nothing(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = [FakeNode(broker_url, topic_root, f"gw-{i}", "s1") for i in (1, 2)]
    common = ["--broker", broker_url, "--root", topic_root]
    web = {"name": "web", "replicas": 1,
           "workload": {"runtime": "process", "command": ["sleep", "60"]}}  # fmt: skip
    async with running_orchestrator(broker_url, topic_root, tmp_path / "orch") as orch:
        try:
            for n in nodes:
                await n.start()
            await eventually(lambda: len(orch.state.registry.nodes) == 2, what="both nodes")
            async with Operator(broker_url, topic_root) as op:
                assert (await op.call("deploy", manifest=web))["ok"]
            await eventually(lambda: len(orch.state.assignments) == 1, what="web placed")
            await eventually(lambda: "web" in orch.state.statuses, what="web's status")
            before = await asyncio.to_thread(retained, broker_url, topic_root)
            assert any(t.endswith("/desired") for t in before)
            passes, stored = orch.stats.passes, orch.state.apps["web"]
            revisions = orch.store.revisions("web")

            changed = tmp_path / "web.yaml"
            changed.write_text(yaml.safe_dump({**web, "replicas": 2, "workload": {
                **web["workload"], "command": ["sleep", "61"]}}))  # type: ignore[dict-item]  # fmt: skip
            bad = tmp_path / "bad.yaml"
            bad.write_text(yaml.safe_dump({**web, "replicaz": 2}))
            # Four CLI processes at once (each is a second of start-up on a loaded machine).
            (
                (code, out, err),
                (jcode, jout, jerr),
                (bcode, _, berr),
                (wcode, _, werr),
            ) = await asyncio.gather(
                edgefleet("diff", str(changed), *common),
                edgefleet("deploy", "--dry-run", str(changed), "-o", "json", *common),
                edgefleet("diff", str(bad), *common),
                edgefleet("deploy", "--dry-run", "--wait", str(changed), *common),
            )
            assert code == 0, err
            lines = out.splitlines()
            assert lines[0] == (
                "a deploy would update app web as revision 2 and start a rollout from "
                "revision 1 (progressing)"
            )
            assert "~ replicas: 1 -> 2" in lines
            assert '~ workload.command: ["sleep", "60"] -> ["sleep", "61"]' in lines
            assert any("web-0" in line and "kept" in line for line in lines), out
            assert any("web-1" in line and "placed" in line for line in lines), out
            assert lines[-1] == "dry run: nothing was changed"

            assert jcode == 0, jerr
            plan = json.loads(jout)
            assert (plan["action"], plan["revision"], plan["desired"]) == ("update", 2, 2)
            assert {r["node"] for r in plan["replicas"]} == {"gw-1", "gw-2"}

            # A refusal is the deploy's own, exit 1; --wait makes no sense with it (exit 2).
            assert bcode == 1 and "replicaz" in berr, berr
            assert wcode == 2 and "--dry-run" in werr

            # Nothing changed: the manifest, the revisions, no pass, the retained state.
            assert orch.state.apps["web"] == stored
            assert orch.store.revisions("web") == revisions
            assert "web" not in orch.state.rollouts
            assert orch.stats.passes == passes
            assert await asyncio.to_thread(retained, broker_url, topic_root) == before
        finally:
            for n in nodes:
                await n.stop()
