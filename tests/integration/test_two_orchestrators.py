"""Two orchestrators against one broker (#12 defect 3): they used to kick each other off
about five times a second, silently. Now the second one stops with a clear error and the
first keeps serving — with one client id (the default, and the production broker, where
the client id is the user name) and with two."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest
from edgefleet_orchestrator.service.config import OrchestratorConfig
from edgefleet_orchestrator.service.orchestrator import Orchestrator
from edgefleet_orchestrator.service.presence import RivalOrchestrator
from edgefleet_protocol.broker import BrokerSettings
from harness.fleet import Operator, Watcher


def config(url: str, root: str, data_dir: Path, client_id: str) -> OrchestratorConfig:
    return OrchestratorConfig(
        broker=BrokerSettings.from_url(url),
        data_dir=data_dir,
        root=root,
        client_id=client_id,
        settle_s=0.3,
        tick_s=0.2,
    )


@pytest.mark.parametrize("same_client_id", [True, False])
async def test_the_second_orchestrator_stops_and_the_first_keeps_serving(
    broker_url: str, topic_root: str, tmp_path: Path, same_client_id: bool
) -> None:
    first_id = f"orch-{uuid.uuid4().hex[:6]}"
    second_id = first_id if same_client_id else f"orch-{uuid.uuid4().hex[:6]}"
    first = Orchestrator(config(broker_url, topic_root, tmp_path / "a", first_id))
    stop_first = asyncio.Event()
    first_task = asyncio.create_task(first.run(stop_first))
    status_topic = f"{topic_root}/orchestrator/status"
    watcher = Watcher(broker_url, [status_topic])
    await watcher.start()
    try:
        assert await first.session.wait_connected(5)
        second = Orchestrator(config(broker_url, topic_root, tmp_path / "b", second_id))
        with pytest.raises(RivalOrchestrator, match="another orchestrator"):
            async with asyncio.timeout(30):
                await second.run(asyncio.Event())
        # The first one still serves (back within its reconnect backoff if the second took
        # its client id over): the retained status is its own, and it answers.
        deadline = asyncio.get_running_loop().time() + 20
        while watcher.latest.get(status_topic, {}).get("instance") != first.presence.instance:
            assert asyncio.get_running_loop().time() < deadline, watcher.latest
            await asyncio.sleep(0.05)
        assert watcher.latest[status_topic]["state"] == "online"
        assert await first.session.wait_connected(20)
        async with Operator(broker_url, topic_root) as op:
            assert (await op.call("apps", timeout_s=15))["ok"]
        assert not first_task.done()
    finally:
        stop_first.set()
        await first_task
        await watcher.stop()
    assert json.dumps(watcher.latest)  # the watcher saw well-formed statuses throughout
