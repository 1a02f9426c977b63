"""Run a real Node-RED with FlowFuse Dashboard 2, and look at its pages with headless
Chromium (Debian's ``chromium`` package).

Used by ``tests/integration/test_node_red_dashboard.py``: the example dashboard flow is
checked by the programs users run, not by a model of them. Node-RED and the dashboard
come from the pinned ``.ci/node-red/package-lock.json``, installed by
``.ci/node-red/install`` (which ``.ci/run`` calls) into a cache dir outside the checkout,
``$EDGEFLEET_NODE_RED_DIR`` or ``~/.cache/edgefleet-ci/node-red``. A missing or different
install is a :class:`MissingTool` (the tier then skips locally and fails in CI).

Dashboard 2 renders in the browser (Vue, data over socket.io), so a page is read with
``chromium --headless --dump-dom --virtual-time-budget``: Chromium runs the page's
scripts and returns the DOM they built. Everything listens on and talks to loopback only.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from harness.mosquitto import MissingTool, free_port
from harness.processes import stop_gracefully

REPO = Path(__file__).resolve().parents[2]
PINS = REPO / ".ci" / "node-red"
INSTALL_HINT = "run .ci/node-red/install (.ci/run does)"


def node_red_dir() -> Path:
    default = Path.home() / ".cache" / "edgefleet-ci" / "node-red"
    return Path(os.environ.get("EDGEFLEET_NODE_RED_DIR", default))


def installed_node_red() -> Path:
    """``red.js`` of the pinned install, or :class:`MissingTool` saying how to get it."""
    if shutil.which("node") is None:
        raise MissingTool("node is not installed (apt-get install nodejs npm)")
    root = node_red_dir()
    marker = root / ".installed-lock.json"
    if not marker.exists():
        raise MissingTool(f"Node-RED is not installed in {root}: {INSTALL_HINT}")
    if marker.read_bytes() != (PINS / "package-lock.json").read_bytes():
        raise MissingTool(f"{root} holds other Node-RED versions than the pins: {INSTALL_HINT}")
    red = root / "node_modules" / "node-red" / "red.js"
    if not red.exists():
        raise MissingTool(f"{red} is missing: {INSTALL_HINT}")
    return red


def pinned_versions() -> dict[str, str]:
    pins: dict[str, str] = json.loads((PINS / "package.json").read_text())["dependencies"]
    return pins


def with_broker(flow: list[dict[str, Any]], host: str, port: int) -> list[dict[str, Any]]:
    """A copy of ``flow`` whose MQTT broker config nodes point at ``host:port`` — the one
    edit a user makes after importing it."""
    patched = copy.deepcopy(flow)
    for node in patched:
        if node.get("type") == "mqtt-broker":
            node["broker"], node["port"] = host, str(port)
    return patched


@dataclass
class NodeRed:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.workdir / "node-red.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_gracefully(self.proc)


SETTINGS = """// Written by tests/harness/node_red.py: loopback only, nothing phones home.
module.exports = {
    uiHost: "127.0.0.1",
    uiPort: %(port)d,
    flowFile: "flows.json",
    credentialSecret: false,
    telemetry: {enabled: false, updateNotification: false},
    diagnostics: {enabled: false, ui: false},
    logging: {console: {level: "info", metrics: false, audit: false}},
};
"""


def start_node_red(
    workdir: Path, flow: list[dict[str, Any]], *, ready_path: str, ready_timeout_s: float = 90
) -> NodeRed:
    """Node-RED running ``flow`` with ``workdir`` as its user dir; returns once the flows
    are started and ``ready_path`` (e.g. the dashboard's) answers 200."""
    red = installed_node_red()
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "flows.json").write_text(json.dumps(flow, indent=1))
    port = free_port()
    settings = workdir / "settings.js"
    settings.write_text(SETTINGS % {"port": port})
    with open(workdir / "node-red.log", "wb") as out:
        proc = subprocess.Popen(
            ["node", str(red), "--userDir", str(workdir), "--settings", str(settings)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = NodeRed(proc, port, workdir)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node-red exited with {proc.returncode}:\n{server.log()}")
        if "Started flows" in server.log():
            try:
                with urllib.request.urlopen(server.url + ready_path, timeout=5) as answer:
                    if answer.status == 200:
                        return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"node-red not ready after {ready_timeout_s} s:\n{server.log()}")


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found is not None:
            return found
    raise MissingTool("chromium is not installed (apt-get install chromium)")


@dataclass
class Browser:
    """Headless Chromium, one short-lived process per page view (``--dump-dom`` and
    ``--screenshot`` each load the page afresh, as a user opening it would)."""

    binary: str
    workdir: Path

    def _run(self, url: str, budget_ms: int, *extra: str) -> str:
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            "--headless",
            "--no-sandbox",  # tests run as root, where Chromium refuses its sandbox
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",  # loopback only: no update or sync calls
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={self.workdir / 'profile'}",
            f"--virtual-time-budget={budget_ms}",
            *extra,
            url,
        ]
        done = subprocess.run(
            argv,
            capture_output=True,
            stdin=subprocess.DEVNULL,
            timeout=budget_ms / 1000 + 60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr.decode()[-2000:]}")
        return done.stdout.decode(errors="replace")

    def dump_dom(self, url: str, *, budget_ms: int = 2500) -> str:
        return self._run(url, budget_ms, "--dump-dom")

    def screenshot(
        self, url: str, out: Path, *, size: tuple[int, int], budget_ms: int = 5000
    ) -> None:
        self._run(
            url,
            budget_ms,
            f"--screenshot={out}",
            f"--window-size={size[0]},{size[1]}",
            "--hide-scrollbars",
        )
        if not out.exists():
            raise RuntimeError(f"chromium wrote no screenshot to {out}")


def start_browser(workdir: Path) -> Browser:
    return Browser(chromium_binary(), workdir)


class _Widgets(HTMLParser):
    """Collects, per Dashboard 2 widget (``id="nrdb-ui-widget-<node id>"``), its table
    rows as cell texts and its ``nrdb-ui-text-value`` text."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.values: dict[str, str] = {}
        self._stack: list[str | None] = []  # the widget id each open element belongs to
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._value: list[str] | None = None

    def _widget(self) -> str | None:
        return next((w for w in reversed(self._stack) if w), None)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        element_id = found.get("id") or ""
        widget = (
            element_id.removeprefix("nrdb-ui-widget-")
            if element_id.startswith("nrdb-ui-widget-")
            else None
        )
        if tag not in VOID:
            self._stack.append(widget)
        if tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif "nrdb-ui-text-value" in (found.get("class") or "").split():
            self._value = []

    def handle_endtag(self, tag: str) -> None:
        widget = self._widget()
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if widget is not None:
                self.rows.setdefault(widget, []).append(self._row)
            self._row = None
        elif tag == "span" and self._value is not None:
            if widget is not None:
                self.values[widget] = " ".join("".join(self._value).split())
            self._value = None
        if tag not in VOID and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        for sink in (self._cell, self._value):
            if sink is not None:
                sink.append(data)


VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}


@dataclass(frozen=True)
class Page:
    """What a dashboard page showed: per widget id, its table (header row first) and its
    text value."""

    tables: dict[str, list[list[str]]]
    texts: dict[str, str]

    def records(self, widget: str) -> list[dict[str, str]]:
        """A table widget's body rows keyed by its header titles (``[]`` while empty)."""
        rows = self.tables.get(widget, [])
        if not rows:
            return []
        header, body = rows[0], rows[1:]
        return [dict(zip(header, row, strict=False)) for row in body if len(row) == len(header)]


def read_page(dom: str) -> Page:
    parser = _Widgets()
    parser.feed(dom)
    parser.close()
    return Page(parser.rows, parser.values)
