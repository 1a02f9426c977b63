"""The real orchestrator and agent programs as subprocesses, for conformance tests.

Each is started exactly as an operator would (``edgefleet orchestrator run``,
``edgefleet-agent run``) with test-fast timings, its output to a log file, and can be
stopped cleanly (SIGTERM), killed (SIGKILL: the broker then publishes its will) and
started again on the same state.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def stop_gracefully(proc: subprocess.Popen[bytes], timeout_s: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if ``proc`` is not gone within ``timeout_s``; a no-op once it is."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Program:
    """One long-running program; ``start`` may be called again after a stop or kill."""

    name: str
    argv: list[str]
    logs: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    log_files: list[Path] = field(default_factory=list)

    def start(self) -> Program:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} runs already"
        self.starts += 1
        path = self.logs / f"{self.name}-{self.starts}.log"
        self.log_files.append(path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
        with open(path, "wb") as out:
            self.proc = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self, timeout_s: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout_s)

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            try:
                self.terminate(10)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.log_files if p.exists())


def orchestrator(broker_url: str, root: str, data_dir: Path, logs: Path, client_id: str) -> Program:
    argv = [
        str(BIN / "edgefleet"), "orchestrator", "run",
        "--broker", broker_url, "--root", root, "--data-dir", str(data_dir),
        "--tick", "0.2", "--stale-after", "30", "--client-id", client_id,
    ]  # fmt: skip
    return Program("orchestrator", argv, logs)


def agent(
    broker_url: str, root: str, state_dir: Path, logs: Path, *, node: str, site: str
) -> Program:
    argv = [
        str(BIN / "edgefleet-agent"), "run",
        "--node", node, "--site", site, "--broker", broker_url, "--root", root,
        "--state-dir", str(state_dir), "--runtime", "simulated", "--address", "127.0.0.1",
        "--reconcile-interval-s", "0.5", "--sample-interval-s", "0.5", "--heartbeat-s", "3",
        "--probe-interval-s", "1", "--keepalive-s", "5",
    ]  # fmt: skip
    return Program(f"agent-{node}", argv, logs)
