"""Start a real Prometheus server (Debian's ``prometheus`` package) that scrapes given
targets on loopback, and query it through its HTTP API.

Used by the metrics tests: the exposition is checked by the real consumer, not by a
parser of our own. Each server gets its own temp dir (config, TSDB) and a free port, and
is stopped (SIGTERM, then SIGKILL) when done.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.mosquitto import MissingTool, free_port
from harness.processes import stop_gracefully


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise MissingTool("prometheus is not installed (apt-get install prometheus)")
    return found


@dataclass
class Prometheus:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector (``[]`` while nothing matches)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as answer:
            body: dict[str, Any] = json.load(answer)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=5) as answer:
            active: list[dict[str, Any]] = json.load(answer)["data"]["activeTargets"]
            return active

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        stop_gracefully(self.proc)


def start_prometheus(
    workdir: Path, targets: list[str], *, interval_s: float = 1.0, ready_timeout_s: float = 60
) -> Prometheus:
    """Prometheus scraping ``targets`` (``HOST:PORT``, path ``/metrics``) every
    ``interval_s``; returns once it answers ``/-/ready``."""
    binary = prometheus_binary()
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML: no YAML writer needed
            {
                "global": {
                    "scrape_interval": f"{round(interval_s * 1000)}ms",
                    "evaluation_interval": "15s",
                },
                "scrape_configs": [
                    {"job_name": "edgefleet", "static_configs": [{"targets": targets}]}
                ],
            }
        )
    )
    port = free_port()
    with open(workdir / "prometheus.log", "wb") as out:
        proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Prometheus(proc, port, workdir)
    deadline = time.monotonic() + ready_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"prometheus exited with {proc.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as answer:
                if answer.status == 200:
                    return server
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"prometheus not ready after {ready_timeout_s} s:\n{server.log()}")
