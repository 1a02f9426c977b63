"""Anti-flap against a real broker (issue #13): a node that comes back is a rebalancing
target only after it has stayed online ``rebalance_settle_s`` — the chaos run saw replicas
moved back onto a returning node 0.2 s after it returned, on a link that kept failing."""

from __future__ import annotations

import time
from pathlib import Path

from harness.fleet import Operator, eventually
from test_scaling_e2e import DRAINED, Feed, Listener, SlowNode, fleet, orchestrator, replicas_of

SETTLE_S = 3.0


async def test_a_returning_node_is_rebalanced_onto_only_after_it_settled(
    broker_url: str, topic_root: str, tmp_path: Path
) -> None:
    nodes = await fleet(broker_url, topic_root, "gw1", "gw2", "gw3", start_s=0.2)
    manifest = {
        **DRAINED,
        "replicas": 6,
        "placement": {"max_per_node": 6},
        "disconnect": {"grace_s": 1.0},
    }
    async with (
        Listener(broker_url, topic_root) as heard,
        orchestrator(
            broker_url,
            topic_root,
            tmp_path,
            rebalance_max_moves=2,
            rebalance_interval_s=0.5,
            rebalance_settle_s=SETTLE_S,
        ) as orch,
        Operator(broker_url, topic_root) as op,
        Feed(nodes, every_s=0.1),
    ):
        assert (await op.call("deploy", manifest=manifest))["ok"]

        def per_node() -> list[int]:
            where = list(replicas_of(orch, "web").values())
            return [where.count(n) for n in ("gw1", "gw2", "gw3")]

        await eventually(lambda: per_node() == [2, 2, 2], timeout_s=20, what="2 per node")
        gone = nodes.pop()
        await gone.go_offline()
        await eventually(lambda: per_node()[2] == 0, timeout_s=20, what="gw3's replicas moved")
        await eventually(lambda: not orch.state.control.retiring, timeout_s=20, what="moves done")
        heard.events.clear()
        back = SlowNode(broker_url, topic_root, "gw3", "s1", start_s=0.2, session_no=2)
        await back.start()
        returned = time.time()
        nodes.append(back)
        await eventually(
            lambda: orch.state.registry.nodes["gw3"].state == "online", what="gw3 online again"
        )
        await eventually(
            lambda: per_node() == [2, 2, 2] and not orch.state.control.retiring,
            timeout_s=30,
            what="rebalanced back to 2 per node",
        )
        started = heard.of("rebalance")
        assert started, "rebalancing moved replicas back"
        first = min(e["ts"] for e in started)
        assert first - returned >= SETTLE_S - 0.2, (
            f"a rebalance move started {first - returned:.1f} s after gw3 returned"
        )
    for n in nodes:
        await n.stop()
