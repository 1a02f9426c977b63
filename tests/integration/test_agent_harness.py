"""Shared pieces for the agent's broker-tier tests (this module holds no tests itself).

:class:`AgentProcess` runs the REAL agent (``.venv/bin/edgefleet-agent run``) as a
subprocess with fast timings; :class:`Watcher` is an MQTT client that records everything
under a test's topic root and waits for a message matching a predicate, with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from edgefleet_protocol import Desired, DesiredWorkload, WorkloadSpec, spec_hash
from edgefleet_protocol.broker import BrokerSettings
from edgefleet_protocol.session import InboundMessage, Publication, Session

AGENT_BIN = Path(sys.executable).parent / "edgefleet-agent"
FAST = [
    "--reconcile-interval-s", "0.5",
    "--sample-interval-s", "0.5",
    "--heartbeat-s", "3",
    "--probe-interval-s", "1",
    "--keepalive-s", "5",
    "--log-level", "debug",
    # The tests' workload scripts live in root-only temp dirs, so they run as the agent;
    # tests/runtime/test_workload_options.py runs them as the workload user.
    "--workload-user", "-",
]  # fmt: skip


def unique_node() -> str:
    return f"n-{uuid.uuid4().hex[:8]}"


@dataclass
class AgentProcess:
    """One agent subprocess; ``start`` may be called again after a stop (new session)."""

    state_dir: Path
    broker_url: str
    root: str
    node: str = field(default_factory=unique_node)
    site: str = "s1"
    runtime: str = "simulated"
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def command(self) -> list[str]:
        return [
            str(AGENT_BIN), "run",
            "--node", self.node, "--site", self.site,
            "--broker", self.broker_url, "--root", self.root,
            "--state-dir", str(self.state_dir), "--runtime", self.runtime,
            *FAST, *self.extra,
        ]  # fmt: skip

    @property
    def log_path(self) -> Path:
        return self.state_dir.parent / f"{self.node}-agent-{self.starts}.log"

    def start(self) -> AgentProcess:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=5)

    def terminate(self, timeout: float = 10.0) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def topic(self, kind: str) -> str:
        return f"{self.root}/nodes/{self.site}/{self.node}/{kind}"


class Watcher:
    """Records every message under a topic root; waits for matching ones."""

    def __init__(self, broker_url: str, root: str) -> None:
        self.session = Session(
            BrokerSettings.from_url(broker_url),
            client_id=f"watcher-{uuid.uuid4().hex[:8]}",
            subscriptions=[f"{root}/#"],
        )
        self.seen: list[InboundMessage] = []
        self._task: asyncio.Task[None] | None = None
        self._new = asyncio.Event()

    async def __aenter__(self) -> Watcher:
        self.session.start()
        assert await self.session.wait_connected(5)
        self._task = asyncio.create_task(self._collect())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.session.close()

    async def _collect(self) -> None:
        async for message in self.session.messages():
            self.seen.append(message)
            self._new.set()

    def bodies(self, topic: str) -> list[dict[str, Any]]:
        return [json.loads(m.payload) for m in self.seen if m.topic == topic and m.payload]

    async def wait_for(
        self,
        topic: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda _: True,
        *,
        timeout: float = 10.0,
        after: int = 0,
    ) -> dict[str, Any]:
        """The first message on ``topic`` (from index ``after`` of all seen) that matches."""
        deadline = time.monotonic() + timeout
        while True:
            for message in self.seen[after:]:
                if message.topic == topic and message.payload:
                    body = json.loads(message.payload)
                    if predicate(body):
                        return body
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = [(m.topic.rsplit("/", 1)[-1], m.payload[:300]) for m in self.seen[-8:]]
                raise AssertionError(f"no matching message on {topic} in {timeout} s; {recent}")
            self._new.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(remaining, 0.5)):
                    await self._new.wait()

    def mark(self) -> int:
        return len(self.seen)

    async def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        assert await self.session.publish(Publication(topic, payload, qos=1, retain=retain))


def workload(name: str, runtime: str = "simulated", **spec: Any) -> DesiredWorkload:
    data: dict[str, Any] = {"runtime": runtime, **spec}
    parsed = WorkloadSpec.model_validate(data)
    return DesiredWorkload(name=name, app="app1", spec=parsed, spec_hash=spec_hash(parsed))


def desired_doc(node: str, generation: int, *workloads: DesiredWorkload) -> bytes:
    doc = Desired(node=node, site="s1", generation=generation, issued_at=time.time(),
                  workloads=list(workloads))  # fmt: skip
    return doc.model_dump_json().encode()


def sleeper(marker: str) -> list[str]:
    """A process workload command that is easy to find: ``sleep <unique number>``."""
    return ["sleep", marker]


def unique_marker() -> str:
    return f"{86400 + uuid.uuid4().int % 100000}.{uuid.uuid4().int % 1000:03d}"


def pids_running(marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        if (
            proc.info["cmdline"] == ["sleep", marker]
            and proc.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(proc.pid)
    return found


def kill_markers(*markers: str) -> None:
    for marker in markers:
        for pid in pids_running(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def workloads_of(reported: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(reported.get("workloads", {}))


def all_running(names: set[str]) -> Callable[[dict[str, Any]], bool]:
    def check(reported: dict[str, Any]) -> bool:
        w = workloads_of(reported)
        return set(w) == names and all(v["state"] == "running" for v in w.values())

    return check
