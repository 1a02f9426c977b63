"""The Node-RED dashboard example, run by real Node-RED and looked at by real Chromium.

A real mosquitto, the ``edgefleet orchestrator run`` process and three real
``edgefleet-agent run`` processes (simulated runtime) on the default root; Node-RED with
FlowFuse Dashboard 2 (the pinned install of ``.ci/node-red``) runs
``examples/node-red/dashboard-flow.json`` as shipped, with only its broker node pointed at
the test's port; headless Chromium loads the dashboard page and the test reads the DOM
Dashboard 2 built in the browser: the gateway table, the fleet counts and the app table.
A fourth gateway, retired while offline, is there only as a retained ``offline`` status.
Then one gateway stops, the retired one's retained status is cleared (an empty payload),
a late will from an old session and a payload that is not JSON arrive: the page must show
two gateways online and one offline, nothing of the cleared one, and the flow must not
log an error. The last view is saved as a screenshot (``EDGEFLEET_UPDATE_DOCS_IMAGES=1``
copies it to ``docs/images/node-red-dashboard.png``, the picture the docs show).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from edgefleet_protocol.wire import Publication
from harness.fleet import Operator
from harness.mosquitto import MissingTool, Mosquitto, start_mosquitto
from harness.node_red import (
    Browser,
    NodeRed,
    Page,
    read_page,
    start_browser,
    start_node_red,
    with_broker,
)
from harness.processes import Program, agent, orchestrator
from harness.tiers import require

REPO = Path(__file__).resolve().parents[2]
FLOW = json.loads((REPO / "examples/node-red/dashboard-flow.json").read_text())
ROOT = "edgefleet/v1"  # the flow's topics, as users get them
PAGE_PATH = "/dashboard/fleet"
GATEWAYS = [("gw-1", "plant-a"), ("gw-2", "plant-a"), ("gw-3", "plant-b")]
GONE = ("gw-gone", "plant-b")  # retired while offline: its retained status gets cleared
SCREENSHOT = REPO / "docs/images/node-red-dashboard.png"

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[Callable[..., object]]:
    """Starts the real parts, stops them all at the end whatever happened."""
    stops: list[Callable[[], None]] = []

    def start(factory: Callable[..., object], *args: object, **kwargs: object) -> object:
        try:
            thing = factory(*args, **kwargs)
        except MissingTool as exc:
            require(False, str(exc))
            raise
        stops.append(thing.stop)  # type: ignore[attr-defined]
        return thing

    yield start
    for stop in reversed(stops):
        stop()


async def view(browser: Browser, url: str) -> Page:
    return read_page(await asyncio.to_thread(browser.dump_dom, url))


async def until(
    browser: Browser, url: str, check: Callable[[Page], bool], what: str, timeout_s: float = 120
) -> Page:
    """Reload the page until ``check`` holds (Dashboard 2 fills it in over its websocket)."""
    deadline = time.monotonic() + timeout_s
    page = Page({}, {})
    while time.monotonic() < deadline:
        page = await view(browser, url)
        if check(page):
            return page
    raise AssertionError(f"{what}: not shown after {timeout_s} s; the page showed {page}")


def gateways(page: Page) -> dict[str, dict[str, str]]:
    return {row["Node"]: row for row in page.records("efd-table-gateways")}


def running_workloads(page: Page) -> int:
    """The sum of the gateways' "running/total" workload cells."""
    cells = [row["Workloads running"] for row in gateways(page).values()]
    return sum(int(cell.split("/")[0]) for cell in cells if cell)


def states(page: Page) -> dict[str, str]:
    return {node: row["State"] for node, row in gateways(page).items()}


async def test_the_dashboard_shows_the_fleet_in_a_real_browser(
    tmp_path: Path, started: Callable[..., object]
) -> None:
    broker = started(start_mosquitto, tmp_path / "mosquitto")
    assert isinstance(broker, Mosquitto)
    node_red = started(
        start_node_red,
        tmp_path / "node-red",
        with_broker(FLOW, "127.0.0.1", broker.port),
        ready_path=PAGE_PATH,
    )
    assert isinstance(node_red, NodeRed)
    try:
        browser = start_browser(tmp_path / "chromium")
    except MissingTool as exc:
        require(False, str(exc))
        raise
    url = node_red.url + PAGE_PATH
    logs = tmp_path / "logs"
    logs.mkdir()
    orch = orchestrator(broker.url, ROOT, tmp_path / "orch", logs, "dashboard-orchestrator")
    agents = {
        node: agent(broker.url, ROOT, tmp_path / node, logs, node=node, site=site)
        for node, site in GATEWAYS
    }
    programs: list[Program] = [orch, *agents.values()]
    for program in programs:
        started(program.start)

    async with Operator(broker.url, ROOT) as op:
        gone_status = f"{ROOT}/nodes/{GONE[1]}/{GONE[0]}/status"
        old = {"v": 1, "node": GONE[0], "site": GONE[1], "state": "offline", "session": 1}
        await op.session.publish(
            Publication(
                gone_status, json.dumps({**old, "since": time.time()}).encode(), retain=True
            )
        )
        everyone = {**{node: "online" for node, _ in GATEWAYS}, GONE[0]: "offline"}
        await until(
            browser,
            url,
            lambda page: (
                states(page) == everyone and page.texts.get("efd-text-nodes", "").startswith("3 / ")
            ),
            "three gateways online and gw-gone offline, in the table and the summary",
        )
        manifest = {"name": "sim-app", "replicas": 3, "workload": {"runtime": "simulated"}}
        reply = await op.call("deploy", timeout_s=30, manifest=manifest)
        assert reply["ok"], reply
        page = await until(
            browser,
            url,
            lambda page: (
                [r["Healthy / desired"] for r in page.records("efd-table-apps")] == ["3/3"]
                and running_workloads(page) == 3
            ),
            "sim-app 3/3 healthy, its replicas in the gateway table",
        )
        assert states(page) == everyone
        rows = gateways(page)
        assert {node: row["Site"] for node, row in rows.items()} == dict([*GATEWAYS, GONE])
        (app,) = page.records("efd-table-apps")
        assert (app["App"], app["State"], app["Placed"]) == ("sim-app", "healthy", "3")
        # Telemetry reached the rows (real agents sample the host) and the last-seen column.
        for node, _ in GATEWAYS:
            assert rows[node]["CPU %"].isdigit(), rows[node]
            assert rows[node]["Memory %"].isdigit(), rows[node]
            assert rows[node]["Last seen"].endswith(" UTC"), rows[node]

        # gw-3 stops (a clean offline), gw-gone is decommissioned (its retained status
        # cleared), and two bad inputs the flow must shrug off: a late will of an older
        # session of gw-1 (the session rule: ignored) and a telemetry payload not JSON.
        assert agents["gw-3"].terminate() == 0
        stale_will = {"v": 1, "node": "gw-1", "site": "plant-a", "state": "offline"}
        for publication in [
            Publication(gone_status, b"", retain=True),
            Publication(
                f"{ROOT}/nodes/plant-a/gw-1/status",
                json.dumps({**stale_will, "session": 0, "since": 1.0}).encode(),
            ),
            Publication(f"{ROOT}/nodes/plant-a/gw-2/telemetry", b"not json", qos=0),
        ]:
            await op.session.publish(publication)
        after = {"gw-1": "online", "gw-2": "online", "gw-3": "offline"}
        page = await until(
            browser,
            url,
            lambda page: (
                states(page) == after and page.texts.get("efd-text-nodes", "").startswith("2 / ")
            ),
            "gw-3 offline, gw-gone gone, gw-1 still online",
        )
        assert sum(state == "online" for state in states(page).values()) == 2

        shot = tmp_path / "node-red-dashboard.png"
        await asyncio.to_thread(browser.screenshot, url, shot, size=(1280, 1000))
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        if os.environ.get("EDGEFLEET_UPDATE_DOCS_IMAGES") == "1":
            shutil.copyfile(shot, SCREENSHOT)

    for program in programs:
        assert "Traceback" not in program.log(), program.log()
    log = node_red.log()
    assert "[error]" not in log, log
    assert "Connected to broker" in log, log
