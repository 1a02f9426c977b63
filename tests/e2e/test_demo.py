"""``make demo`` end to end: it runs the whole story and leaves no process behind.

Each run goes through a small reaper process that makes itself the Linux "child subreaper"
before starting the demo: any process the demo (or its agents, or their workloads) leaves
behind is re-parented to the reaper instead of init, so "nothing survives" is checked on
the whole process tree, not on the processes the demo happens to know about. The tests also
look for any process that still names the demo's temp dir.

Runs twice: with mosquitto on PATH, and with mosquitto hidden from PATH (the demo must then
bring up its embedded amqtt broker, as on a machine with only Python). A third run is
interrupted with SIGINT in the middle of the story and must clean up just as well.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

# One run takes about 15 s on a quiet 2-core machine; the limits leave room for a noisy one.
RUN_TIMEOUT_S = 150
pytestmark = [pytest.mark.slow, pytest.mark.timeout(RUN_TIMEOUT_S + 90)]

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

REAPER = r"""
import ctypes, json, os, signal, subprocess, sys, time
import psutil

PR_SET_CHILD_SUBREAPER = 36
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
    sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
result_path, interrupt_on = sys.argv[1], sys.argv[2]
demo = subprocess.Popen(
    [sys.executable, "-m", "edgefleet_orchestrator.demo"], stdout=subprocess.PIPE, text=True
)
lines, explored = [], None
for line in demo.stdout:
    sys.stdout.write(line)
    sys.stdout.flush()
    lines.append(line)
    if interrupt_on and interrupt_on in line:
        demo.send_signal(signal.SIGINT)
        interrupt_on = ""
    if line.startswith("Stop it"):  # DEMO_KEEP: try a printed command, then stop as told
        command = next(l for l in lines if " apps --broker " in l).split()
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        explored = {"argv": command, "code": done.returncode, "output": done.stdout + done.stderr}
        os.kill(int(line.split("kill ")[1].split()[0]), signal.SIGTERM)
code = demo.wait()
time.sleep(1.0)  # let anything orphaned at the very end be re-parented to us
left = []
for child in psutil.Process().children(recursive=True):
    try:
        if child.status() != psutil.STATUS_ZOMBIE:
            left.append(" ".join(child.cmdline()) or child.name())
        child.kill()
    except psutil.Error:
        pass
while True:  # reap every orphan we inherited
    try:
        if os.waitpid(-1, os.WNOHANG) == (0, 0):
            break
    except ChildProcessError:
        break
with open(result_path, "w") as out:
    json.dump({"code": code, "left": left, "output": "".join(lines), "explored": explored}, out)
"""


SBIN = ("/usr/sbin", "/usr/local/sbin")


def mosquitto_dirs(path: str) -> list[str]:
    return [d for d in path.split(os.pathsep) if d and os.access(Path(d, "mosquitto"), os.X_OK)]


def path_with_mosquitto(path: str) -> str | None:
    """PATH, plus the sbin directory holding mosquitto when PATH lacks it (Debian installs
    it in /usr/sbin, which many users' and CI shells do not have on PATH)."""
    if mosquitto_dirs(path):
        return path
    for directory in SBIN:
        if os.access(Path(directory, "mosquitto"), os.X_OK):
            return os.pathsep.join([path, directory])
    return None


def path_without_mosquitto(path: str, shadow_root: Path) -> str:
    """PATH with every directory that holds mosquitto replaced by a copy of links to all its
    other entries (so sh, tail and friends stay reachable if they live beside it)."""
    entries = []
    for index, directory in enumerate(path.split(os.pathsep)):
        if directory not in mosquitto_dirs(path):
            entries.append(directory)
            continue
        shadow = shadow_root / f"shadow-{index}"
        shadow.mkdir(parents=True)
        for item in Path(directory).iterdir():
            if not item.name.startswith("mosquitto"):
                (shadow / item.name).symlink_to(item)
        entries.append(str(shadow))
    return os.pathsep.join(entries)


def run_demo(
    tmp_path: Path, path: str, *, interrupt_on: str = "", keep: bool = False
) -> dict[str, Any]:
    result_path = tmp_path / "result.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EDGEFLEET_", "DEMO_KEEP"))}
    env["PATH"] = path
    if keep:
        env["DEMO_KEEP"] = "1"
    started = time.monotonic()
    reaper = subprocess.Popen(
        [sys.executable, "-c", REAPER, str(result_path), interrupt_on],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        assert reaper.wait(timeout=RUN_TIMEOUT_S) == 0
    except subprocess.TimeoutExpired:
        # Ctrl-C for the demo (same process group as the reaper): it cleans up after itself.
        os.killpg(reaper.pid, signal.SIGINT)
        try:
            reaper.wait(timeout=60)
        finally:
            os.killpg(reaper.pid, signal.SIGKILL)
        pytest.fail(f"the demo did not finish within {RUN_TIMEOUT_S} s")
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["seconds"] = time.monotonic() - started
    return result


def processes_naming(text: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if text in cmdline:
            found.append(f"{proc.info['pid']}: {cmdline}")
    return found


def assert_nothing_left(result: dict[str, Any]) -> None:
    output = result["output"]
    match = re.search(r"work dir (\S+?);", output)
    assert match, output[-3000:]
    workdir = match.group(1)
    assert result["left"] == [], f"processes outlived the demo: {result['left']}"
    assert processes_naming(workdir) == []
    assert not Path(workdir).exists(), "the demo's temp dir was not removed"
    assert re.search(r"stopped all \d+ processes the demo started", output), output[-3000:]


def assert_story_told(output: str) -> None:
    for expected in (
        r"nodes 12/12 online",
        r"deploy examples/demo/video-analytics\.yaml: created",
        r"deploy examples/batch-job\.yaml: created",
        r"video-analytics 3/3 ok \| sensor-gateway-eu 2/2 ok \| log-shipper 12/12 ok \| "
        r"batch-job 4/4 ok",
        r"kill -9 the agent of \S+",
        r"is offline \(its will",
        r"is back: dropped \S+",
        r"video-analytics 7/8 degraded",
        r"unplaced because: \d+ nodes?: no latency probe for camera-hub",
        r"deleted every app; all workloads stopped",
        r"\(0 leftover workload\(s\) swept\)",
    ):
        assert re.search(expected, output), f"missing {expected!r} in:\n{output[-4000:]}"
    for step in ("broker + orchestrator up", "every replica running", "replicas running elsewhere"):
        assert re.search(rf"{re.escape(step)}\s*│\s*(\d+\.\d s|\d+ ms)", output), step


@pytest.mark.parametrize("broker", ["mosquitto", "embedded"])
def test_the_demo_tells_its_story_and_leaves_no_process_behind(tmp_path: Path, broker: str) -> None:
    path = os.environ.get("PATH", "")
    if broker == "mosquitto":
        found = path_with_mosquitto(path)
        if found is None:
            if IN_CI:
                pytest.fail("CI=true and mosquitto is not installed", pytrace=False)
            pytest.skip("mosquitto is not installed")
        path = found
    else:
        path = path_without_mosquitto(path, tmp_path)
        assert shutil.which("mosquitto", path=path) is None
    result = run_demo(tmp_path, path)
    output = result["output"]
    assert result["code"] == 0, output[-4000:]
    wanted = "broker: mosquitto" if broker == "mosquitto" else "broker: embedded amqtt broker"
    assert wanted in output
    assert_story_told(output)
    assert_nothing_left(result)
    print(f"demo with {broker}: {result['seconds']:.1f} s")


def test_ctrl_c_in_the_middle_of_the_story_stops_everything(tmp_path: Path) -> None:
    result = run_demo(tmp_path, os.environ.get("PATH", ""), interrupt_on="kill -9 the agent")
    output = result["output"]
    assert result["code"] == 130, output[-4000:]
    assert "stopping (signal received)" in output
    assert "what happened" not in output  # the story did not go on
    assert_nothing_left(result)


def test_demo_keep_leaves_a_fleet_the_printed_commands_work_on_until_killed(
    tmp_path: Path,
) -> None:
    result = run_demo(tmp_path, os.environ.get("PATH", ""), keep=True)
    output = result["output"]
    explored = result["explored"]
    assert explored is not None, output[-3000:]
    assert explored["code"] == 0, explored
    for app in ("video-analytics", "sensor-gateway-eu", "log-shipper", "batch-job"):
        assert app in explored["output"]
    assert "--broker mqtt://127.0.0.1:" in " ".join(explored["argv"])
    assert result["code"] == 0, output[-3000:]  # `kill <pid>` as printed is a clean stop
    assert "stopping (signal received)" in output
    assert_nothing_left(result)
