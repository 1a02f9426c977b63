"""The demo's process shell: start the broker, the orchestrator and the agents, and stop
every one of them — and everything they started — whatever happens.

Who calls it: :mod:`edgefleet_orchestrator.demo.main`.

Invariants:

* Every child leads its own process group (``start_new_session``): a Ctrl-C in the terminal
  reaches only the demo, which then stops its children in order (agents after their apps
  are deleted, then the orchestrator, then the broker).
* Every child is in :class:`ProcessBook`; :meth:`ProcessBook.kill_all` is safe to call at
  any time and more than once.
* Workloads are started by agents in sessions of their own and outlive an agent that stops
  (by design: a gateway's apps keep running through an agent restart). The demo finds them
  through each agent's ``processes.json`` (pid *and* create time, so a recycled pid is never
  touched) and, as a last net, by their working directory or environment pointing into the
  demo's temp dir (agents run with their state dir as working directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from edgefleet_orchestrator.demo.embedded_broker import LOOPBACK, free_port, wait_listening


@dataclass
class Child:
    name: str
    role: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def child_env() -> dict[str, str]:
    """The demo's environment without ``EDGEFLEET_*`` settings a user may have exported,
    which would otherwise override the demo's choices in its children."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ProcessBook:
    """Every process the demo started, by name, with its log under ``workdir/logs``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.children: dict[str, Child] = {}
        self.started = 0

    def spawn(self, name: str, role: str, argv: Sequence[str], *, cwd: Path | None = None) -> Child:
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        with open(log_path, "ab") as log:  # the child keeps its own copy of the fd
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=child_env(),
                start_new_session=True,
            )
        child = Child(name, role, process, log_path)
        self.children[name] = child
        self.started += 1
        return child

    def crash(self, name: str) -> None:
        """SIGKILL the named child alone, as a power cut would: no goodbye, no cleanup."""
        child = self.children[name]
        with contextlib.suppress(ProcessLookupError):
            child.process.kill()
        child.process.wait(timeout=10)

    def stop(self, names: Iterable[str], *, timeout_s: float = 10.0) -> None:
        """SIGTERM each named child's group at once, wait, then SIGKILL what is left."""
        chosen = [self.children[n] for n in names if n in self.children]
        for child in chosen:
            if child.alive():
                _signal_group(child.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in chosen:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # The group too: anything the child forked without a session of its own.
            _signal_group(child.pid, signal.SIGKILL)
            if child.alive():
                child.process.kill()
                child.process.wait(timeout=5)

    def names(self, role: str) -> list[str]:
        return [name for name, child in self.children.items() if child.role == role]

    def kill_all(self) -> None:
        """SIGKILL every child group still there and reap it; idempotent."""
        for child in self.children.values():
            _signal_group(child.pid, signal.SIGKILL)
            if child.alive():
                with contextlib.suppress(ProcessLookupError):
                    child.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)

    def alive(self) -> list[Child]:
        return [child for child in self.children.values() if child.alive()]


# -- brokers ---------------------------------------------------------------------------------


def find_mosquitto() -> str | None:
    """mosquitto as the shell would find it: on PATH (hide it from PATH to get the
    embedded broker; see the README)."""
    return shutil.which("mosquitto")


def mosquitto_conf(port: int, workdir: Path) -> str:
    """broker-config/dev.conf on a chosen port, logging to a file instead of the console."""
    return "\n".join(
        [
            "per_listener_settings false",
            f"listener {port} {LOOPBACK}",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 100000",
            "max_inflight_messages 0",
            "max_packet_size 1048576",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
            "",
        ]
    )


def _sbin_hint() -> str:
    for directory in ("/usr/sbin", "/usr/local/sbin"):
        if os.access(os.path.join(directory, "mosquitto"), os.X_OK):
            return f" (it is in {directory}: add that to PATH to use it)"
    return ""


@dataclass(frozen=True, slots=True)
class BrokerInfo:
    kind: str  # "mosquitto" or "amqtt"
    description: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{LOOPBACK}:{self.port}"


def start_broker(book: ProcessBook, python: str, *, prefer: str = "auto") -> BrokerInfo:
    """mosquitto with the dev config when installed (or ``prefer == "mosquitto"``), else the
    embedded amqtt broker; on a free loopback port; returns once it listens."""
    port = free_port()
    binary = find_mosquitto() if prefer in ("auto", "mosquitto") else None
    if prefer == "mosquitto" and binary is None:
        raise RuntimeError("EDGEFLEET_DEMO_BROKER=mosquitto, but mosquitto is not on PATH")
    if binary is not None:
        workdir = book.workdir / "mosquitto"
        workdir.mkdir(parents=True, exist_ok=True)
        conf = workdir / "mosquitto.conf"
        conf.write_text(mosquitto_conf(port, workdir))
        child = book.spawn("broker", "broker", [binary, "-c", str(conf)])
        kind, description = "mosquitto", f"mosquitto ({binary}, broker-config/dev.conf settings)"
    else:
        argv = [python, "-m", "edgefleet_orchestrator.demo.embedded_broker", "--port", str(port)]
        child = book.spawn("broker", "broker", argv)
        kind, description = "amqtt", "embedded amqtt broker (MQTT 3.1.1)"
        if prefer == "auto":
            description += f" because mosquitto is not on PATH{_sbin_hint()}"
    wait_listening(child.process, LOOPBACK, port, timeout_s=20, log=child.log_path)
    return BrokerInfo(kind, description, port)


# -- leftovers -------------------------------------------------------------------------------


def recorded_workloads(state_dir: Path) -> list[tuple[int, float]]:
    """(pid, create_time) of every process an agent's process runtime recorded."""
    try:
        data = json.loads((state_dir / "processes.json").read_text())
        records = data.get("processes", {}).values()
        return [
            (int(r["pid"]), float(r["create_time"]))
            for r in records
            if r.get("pid") is not None and r.get("create_time") is not None
        ]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []


def _same_process(pid: int, create_time: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        return proc if abs(proc.create_time() - create_time) < 0.05 else None
    except psutil.Error:
        return None


def _points_into(proc: psutil.Process, root: str) -> bool:
    """Does this process work in, or name in its command line or environment, ``root``?"""
    inside = root.rstrip(os.sep) + os.sep

    def names_it(text: str) -> bool:
        return text == root or inside in text

    try:
        if names_it(proc.cwd() + os.sep) or any(names_it(arg) for arg in proc.cmdline()):
            return True
        return any(names_it(value) for value in proc.environ().values())
    except psutil.Error:
        return False


def _terminate(procs: Sequence[psutil.Process], timeout_s: float = 3.0) -> list[str]:
    """SIGTERM each process's group (or the process, when the group is ours), then SIGKILL."""
    own_group = os.getpgrp()
    described = []
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            described.append(f"{proc.pid} {' '.join(proc.cmdline())[:80]}")
            group = os.getpgid(proc.pid)
            if group != own_group:
                _signal_group(group, signal.SIGTERM)
            proc.terminate()
    _, alive = psutil.wait_procs(list(procs), timeout=timeout_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error, OSError):
            group = os.getpgid(proc.pid)
            if group != own_group:
                _signal_group(group, signal.SIGKILL)
            proc.kill()
    psutil.wait_procs(alive, timeout=timeout_s)
    return described


def sweep_leftovers(
    workdir: Path, state_dirs: Iterable[Path], *, spare: Iterable[int] = ()
) -> list[str]:
    """Stop any workload or helper still running that belongs to this demo, except the
    ``spare`` pids (children the demo still stops in order); returns what it had to stop
    (empty when the graceful path left nothing behind)."""
    me = os.getpid()
    spared = set(spare)
    found: dict[int, psutil.Process] = {}
    for state_dir in state_dirs:
        for pid, create_time in recorded_workloads(state_dir):
            proc = _same_process(pid, create_time)
            if proc is not None and proc.pid != me and proc.pid not in spared:
                found[proc.pid] = proc
    root = str(workdir)
    for proc in psutil.process_iter():
        if proc.pid in spared or proc.pid == me or proc.pid in found:
            continue
        if _points_into(proc, root):
            found[proc.pid] = proc
    return _terminate(list(found.values())) if found else []
