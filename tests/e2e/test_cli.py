"""The operator surface end to end: the ``edgefleet`` CLI and the plain ``mosquitto_pub`` /
``mosquitto_sub`` binaries against a real ``edgefleet orchestrator run`` and a fleet of
protocol-level fake nodes (tests/e2e/fake_fleet.py), three processes that meet only at a
real mosquitto.

One orchestrator and fleet serve the whole module (starting them costs seconds); every
test uses app names of its own, and the one test that cordons a node uncordons it.
"""

from __future__ import annotations

import json
import os
import pty
import queue
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness.mosquitto import Mosquitto, free_port

BIN = Path(sys.executable).parent
EDGEFLEET = str(BIN / "edgefleet")
FAKE_FLEET = Path(__file__).with_name("fake_fleet.py")
NODES = {"gw1": "s1", "gw2": "s1", "gw3": "s2"}


@dataclass
class Fleet:
    broker: Mosquitto
    root: str
    workdir: Path
    orchestrator: subprocess.Popen[bytes]
    env: dict[str, str]

    @property
    def sentinel(self) -> str:
        # A retained message of our own: when a mosquitto_sub prints it, its subscriptions
        # are in place (they share one SUBSCRIBE packet), so what follows cannot be missed.
        return f"{self.root}/test-sentinel"

    def log(self) -> str:
        return (self.workdir / "orchestrator.log").read_text(errors="replace")[-4000:]


def mosquitto_pub(port: int, *args: str) -> None:
    """The real ``mosquitto_pub``, QoS 1."""
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", *args], check=True, timeout=10)


def eventually(check: Callable[[], Any], timeout_s: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def stop(proc: subprocess.Popen[Any]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout=5)


@pytest.fixture(scope="module")
def fleet(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    missing = [tool for tool in ("mosquitto_pub", "mosquitto_sub") if not shutil.which(tool)]
    if missing:  # the broker tier's rule: skip locally, fail in CI
        reason = f"{', '.join(missing)} not installed (apt-get install mosquitto-clients)"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {reason}", pytrace=False)
        pytest.skip(reason)
    workdir = tmp_path_factory.mktemp("cli")
    root = f"edgefleet-test/cli-{uuid.uuid4().hex[:10]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEFLEET_") and k != "USER"}
    env.update(
        HOME=str(workdir),  # no operator's own ~/.config/edgefleet/cli.toml
        EDGEFLEET_BROKER=mosquitto.url,
        EDGEFLEET_ROOT=root,
        EDGEFLEET_USER="tester",
        COLUMNS="200",
    )
    with open(workdir / "orchestrator.log", "wb") as log:
        orchestrator = subprocess.Popen(
            [
                *(EDGEFLEET, "orchestrator", "run", "--data-dir", str(workdir / "data")),
                *("--tick", "0.2", "--stale-after", "60", "--client-id", f"orch-{root[-10:]}"),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    nodes = subprocess.Popen(
        [sys.executable, str(FAKE_FLEET), "--broker", mosquitto.url, "--root", root]
        + [f"{n}:{s}" for n, s in NODES.items()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    mosquitto_pub(mosquitto.port, "-r", "-t", f"{root}/test-sentinel", "-m", "here")
    f = Fleet(mosquitto, root, workdir, orchestrator, env)
    try:
        assert nodes.stdout is not None and nodes.stdout.readline().strip() == "ready"

        def all_online() -> bool:
            out = run(f, "nodes", "-o", "json", "--timeout", "3")
            if out.returncode != 0:
                return False
            rows = json.loads(out.stdout)["nodes"]
            return sorted(r["node"] for r in rows if r["state"] == "online") == sorted(NODES)

        eventually(all_online, 20, "the orchestrator to see every fake node online")
        yield f
    finally:
        stop(nodes)
        if nodes.stdout is not None:
            nodes.stdout.close()
        assert stop(orchestrator) == 0, f.log()
        mosquitto_pub(mosquitto.port, "-r", "-n", "-t", f.sentinel)


def run(
    fleet: Fleet, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real ``edgefleet`` console script; an expected failure never shows a traceback."""
    proc = subprocess.run(
        [EDGEFLEET, *args],
        env={**fleet.env, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
        cwd=fleet.workdir,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def ok_json(fleet: Fleet, *args: str) -> Any:
    proc = run(fleet, *args, "--output", "json")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    return json.loads(proc.stdout)  # plain JSON on stdout, nothing else


def manifest_file(fleet: Fleet, name: str, text: str) -> Path:
    path = fleet.workdir / f"{name}.yaml"
    path.write_text(text)
    return path


def simple_app(name: str, replicas: int, extra: str = "") -> str:
    return (
        f"name: {name}\nreplicas: {replicas}\nworkload:\n  runtime: simulated\n"
        f"  resources: {{cpu: 0.25, memory_mb: 64}}\n{extra}"
    )


# -- the CLI -----------------------------------------------------------------------------------


def test_deploy_wait_scale_and_delete_through_the_cli(fleet: Fleet) -> None:
    path = manifest_file(fleet, "web", simple_app("web", 2))
    out = run(fleet, "deploy", str(path), "--wait", "--timeout", "30")
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "created app web (version 1)" in out.stdout
    assert "running 2/2" in out.stdout
    assert out.stdout.count("running") >= 3  # the summary line and each replica's row
    assert "web: healthy" in out.stderr  # the progress bar, kept off stdout

    app = ok_json(fleet, "app", "web")
    assert app["manifest"]["replicas"] == 2
    assert app["status"]["running"] == 2
    assert {r["node"] for r in app["status"]["replicas"]} <= set(NODES)
    assert [a["app"] for a in ok_json(fleet, "apps")["apps"]].count("web") == 1

    again = run(fleet, "deploy", "-", stdin=path.read_text())
    assert (again.returncode, again.stdout.strip()) == (0, "unchanged app web (version 1)")

    scaled = run(fleet, "scale", "web", "3")
    assert (scaled.returncode, scaled.stdout.strip()) == (0, "scaled app web: 2 -> 3 replicas")
    eventually(
        lambda: (ok_json(fleet, "app", "web")["status"] or {}).get("running") == 3,
        what="web to run 3 replicas",
    )
    assert ok_json(fleet, "scale", "web", "1") == {"app": "web", "replicas": 1, "previous": 3}

    # An update: the retained status of the old version must not end the wait early, and a
    # status that does not change must not keep it waiting.
    path.write_text(simple_app("web", 2, "labels: {tier: front}\n"))
    out = run(fleet, "deploy", str(path), "--wait", "--timeout", "30")
    assert out.returncode == 0, (out.stdout, out.stderr)
    assert "updated app web (version " in out.stdout and "running 2/2" in out.stdout

    deleted = run(fleet, "delete", "web")
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "deleted app web")
    gone = run(fleet, "app", "web")
    assert gone.returncode == 1
    assert gone.stderr.splitlines()[0] == "error: not_found: no app named 'web'"
    assert gone.stdout == ""


def test_read_commands_answer_as_tables_and_as_plain_json(fleet: Fleet) -> None:
    nodes = ok_json(fleet, "nodes")["nodes"]
    assert {(n["node"], n["site"]) for n in nodes} == set(NODES.items())
    table = run(fleet, "nodes")
    assert table.returncode == 0
    for name, site in NODES.items():
        assert name in table.stdout and site in table.stdout

    node = ok_json(fleet, "node", "gw3")
    assert (node["node"], node["site"], node["state"]) == ("gw3", "s2", "online")
    assert node["capabilities"]["labels"] == {"role": "edge"}
    shown = run(fleet, "node", "gw3").stdout
    assert "role=edge" in shown and "aarch64" in shown

    assert isinstance(ok_json(fleet, "apps")["apps"], list)
    assert run(fleet, "apps").returncode == 0


def test_cordon_and_uncordon_change_what_the_orchestrator_reports(fleet: Fleet) -> None:
    try:
        out = run(fleet, "cordon", "gw2")
        assert (out.returncode, out.stdout.strip()) == (0, "cordoned node gw2")
        assert run(fleet, "cordon", "gw2").stdout.strip() == "node gw2 was already cordoned"
        rows = {n["node"]: n for n in ok_json(fleet, "nodes")["nodes"]}
        assert rows["gw2"]["cordoned"] is True and rows["gw1"]["cordoned"] is False
    finally:
        out = run(fleet, "uncordon", "gw2")
    assert (out.returncode, out.stdout.strip()) == (0, "uncordoned node gw2")
    assert ok_json(fleet, "node", "gw2")["cordoned"] is False


def test_refused_commands_exit_1_with_the_orchestrators_reason(fleet: Fleet) -> None:
    bad = manifest_file(fleet, "lisp", "name: lisp\nreplicas: 1\nworkload: {runtime: lisp}\n")
    out = run(fleet, "deploy", str(bad))
    assert out.returncode == 1
    first = out.stderr.splitlines()[0]
    assert first.startswith("error: bad_request: invalid manifest: workload.runtime:")
    assert "field: manifest.workload.runtime" in out.stderr

    for args, line in [
        (("app", "nope"), "error: not_found: no app named 'nope'"),
        (("delete", "nope"), "error: not_found: no app named 'nope'"),
        (("scale", "nope", "2"), "error: not_found: no app named 'nope'"),
        (("node", "gw9"), "error: not_found: no node named 'gw9'"),
        (("cordon", "gw9"), "error: not_found: no node named 'gw9'"),
    ]:
        out = run(fleet, *args)
        assert (out.returncode, out.stderr.splitlines()[0]) == (1, line), args

    daemon = "name: agentd\nmode: daemon\nworkload: {runtime: simulated}\n"
    assert run(fleet, "deploy", str(manifest_file(fleet, "agentd", daemon))).returncode == 0
    out = run(fleet, "scale", "agentd", "2")
    assert out.returncode == 1
    assert out.stderr.startswith("error: conflict: app agentd runs in daemon mode")
    assert run(fleet, "delete", "agentd").returncode == 0


def test_usage_errors_exit_2_and_name_the_problem(fleet: Fleet) -> None:
    broken = manifest_file(fleet, "broken", "name: broken\nreplicas: [1\n")
    cases: list[tuple[tuple[str, ...], str]] = [
        (("deploy", str(broken)), "(line 3, column 1)"),
        (("deploy", str(fleet.workdir / "absent.yaml")), "cannot read"),
        (("apps", "--output", "yaml"), "'yaml' is not one of"),
        (("scale", "web", "many"), "Invalid value for 'N'"),
        (("apps", "--broker", "http://x"), "error: --broker: 'http://x': scheme must be"),
        (("apps", "--config", str(fleet.workdir / "none.toml")), "does not exist"),
        (("apps", "--user", "a/b"), "error: --user: user 'a/b'"),
    ]
    for args, says in cases:
        out = run(fleet, *args)
        assert out.returncode == 2, (args, out.stderr)
        assert says in out.stderr, (args, out.stderr)
        assert out.stdout == ""


def test_a_config_file_supplies_broker_and_root(fleet: Fleet) -> None:
    config = fleet.workdir / "cli.toml"
    config.write_text(f'broker = "{fleet.broker.url}"\nroot = "{fleet.root}"\ntimeout = 5\n')
    env = {"EDGEFLEET_BROKER": "", "EDGEFLEET_ROOT": ""}
    out = run(fleet, "nodes", "--config", str(config), "-o", "json", env=env)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["nodes"]) == len(NODES)
    default = fleet.workdir / ".config" / "edgefleet" / "cli.toml"  # HOME is the workdir
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_text(config.read_text())
    assert run(fleet, "nodes", env=env).returncode == 0


def test_deploy_wait_fails_at_once_with_the_reasons_when_no_node_qualifies(fleet: Fleet) -> None:
    path = manifest_file(
        fleet, "nowhere", simple_app("nowhere", 2, "placement:\n  selector: {role: satellite}\n")
    )
    started = time.monotonic()
    out = run(fleet, "deploy", str(path), "--wait", "--timeout", "40")
    assert out.returncode == 1, (out.stdout, out.stderr)
    assert time.monotonic() - started < 30  # not the 60 s timeout
    assert "running 0/2" in out.stdout
    assert "2 replicas not placed:" in out.stdout
    assert "error: no node qualifies for nowhere; nothing can be placed:" in out.stderr
    assert "label role=satellite required" in out.stderr

    as_json = run(fleet, "deploy", str(path), "--wait", "--timeout", "40", "-o", "json")
    assert as_json.returncode == 1
    doc = json.loads(as_json.stdout)
    assert doc["converged"] is False and doc["deploy"]["action"] == "unchanged"
    assert any("role=satellite" in line for line in doc["failure"])
    assert run(fleet, "delete", "nowhere").returncode == 0


def test_an_unreachable_broker_exits_4_and_says_what_to_check(fleet: Fleet) -> None:
    port = free_port()
    started = time.monotonic()
    out = run(fleet, "apps", "--broker", f"mqtt://127.0.0.1:{port}")
    assert out.returncode == 4
    assert out.stderr.strip() == (
        f"error: cannot reach the broker at mqtt://127.0.0.1:{port} (Connection refused): "
        "is it running? check --broker"
    )
    assert time.monotonic() - started < 5  # no reconnect loop into the timeout

    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts TCP, speaks no MQTT
        port = silent.getsockname()[1]
        out = run(fleet, "apps", "--broker", f"mqtt://127.0.0.1:{port}", "--timeout", "1")
    assert out.returncode == 4
    assert out.stderr.startswith(f"error: no MQTT session with mqtt://127.0.0.1:{port} (")
    assert "is it an MQTT broker?" in out.stderr


def test_no_orchestrator_exits_4_and_says_what_to_run(fleet: Fleet) -> None:
    never = f"edgefleet-test/none-{uuid.uuid4().hex[:8]}"
    out = run(fleet, "apps", "--root", never, "--timeout", "1.5")
    assert out.returncode == 4
    assert "no orchestrator has ever announced itself" in out.stderr
    assert "is `edgefleet orchestrator run` running?" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1

    # What a stopped orchestrator leaves behind (its clean stop, or its will): the CLI
    # reads it and fails at once instead of waiting out the timeout.
    stopped = f"edgefleet-test/stopped-{uuid.uuid4().hex[:8]}"
    offline = '{"v": 1, "state": "offline", "since": 1767225600, "version": "0.1.0"}'
    topic = f"{stopped}/orchestrator/status"
    mosquitto_pub(fleet.broker.port, "-r", "-t", topic, "-m", offline)
    try:
        started = time.monotonic()
        out = run(fleet, "deploy", "-", "--root", stopped, "--timeout", "30", stdin="name: x\n")
        assert out.returncode == 4
        assert "is offline since 2026-01-01 00:00:00 UTC" in out.stderr
        assert time.monotonic() - started < 10
    finally:
        mosquitto_pub(fleet.broker.port, "-r", "-n", "-t", topic)


def test_watch_once_prints_the_fleet_from_the_retained_status_topics(fleet: Fleet) -> None:
    path = manifest_file(fleet, "seen", simple_app("seen", 1))
    assert run(fleet, "deploy", str(path), "--wait", "--timeout", "30").returncode == 0
    snap = ok_json(fleet, "watch", "--once")
    assert snap["orchestrator"]["state"] == "online"
    assert snap["summary"]["nodes_online"] == len(NODES)
    assert {(n["node"], n["state"]) for n in snap["nodes"]} == {(n, "online") for n in NODES}
    seen = next(a for a in snap["apps"] if a["app"] == "seen")
    assert (seen["state"], seen["running"]) == ("healthy", 1)
    table = run(fleet, "watch", "--once")
    assert table.returncode == 0
    assert "orchestrator online" in table.stdout and "seen" in table.stdout
    assert run(fleet, "delete", "seen").returncode == 0


def test_watch_follows_changes_live_until_interrupted(fleet: Fleet) -> None:
    proc = subprocess.Popen(
        [EDGEFLEET, "watch", "--output", "json"],
        env=fleet.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # readline blocks; a thread keeps the test's waits bounded
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_snapshot(timeout_s: float = 15) -> dict[str, Any]:
        return json.loads(lines.get(timeout=timeout_s))  # type: ignore[no-any-return]

    try:
        first = next_snapshot()
        assert "live" not in {a["app"] for a in first["apps"]}
        path = manifest_file(fleet, "live", simple_app("live", 2))
        assert run(fleet, "deploy", str(path)).returncode == 0
        deadline = time.monotonic() + 15
        while True:
            snap = next_snapshot(max(0.1, deadline - time.monotonic()))
            live = [a for a in snap["apps"] if a["app"] == "live"]
            if live and live[0]["running"] == 2:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0  # Ctrl-C is how watch ends: not an error
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        run(fleet, "delete", "live")


def test_watch_redraws_a_live_table_in_a_terminal(fleet: Fleet) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [EDGEFLEET, "watch"],
        env={**fleet.env, "TERM": "xterm"},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = bytearray()

    def read_some(timeout_s: float) -> bool:
        """Append what the terminal shows; False once the child closed it."""
        ready, _, _ = select.select([leader], [], [], timeout_s)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                return False
            seen.extend(chunk)
            return bool(chunk)
        return True

    def screen_shows(text: str, timeout_s: float = 15) -> None:
        deadline = time.monotonic() + timeout_s
        while text.encode() not in seen:
            left = deadline - time.monotonic()
            assert left > 0, f"the terminal never showed {text!r}: {bytes(seen)[-2000:]!r}"
            assert read_some(min(left, 0.5)), f"watch ended early: {bytes(seen)[-2000:]!r}"

    try:
        screen_shows("orchestrator")
        screen_shows("online")
        path = manifest_file(fleet, "tty", simple_app("tty", 1))
        assert run(fleet, "deploy", str(path)).returncode == 0
        screen_shows("tty")  # drawn by an update, not the first frame
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        drained_by = time.monotonic() + 5
        while time.monotonic() < drained_by and read_some(0.2):  # the last frame and after
            pass
        assert b"Traceback" not in seen
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(leader)
        run(fleet, "delete", "tty")


# -- the same API through the real mosquitto_pub / mosquitto_sub ------------------------------


class Sub:
    """A real ``mosquitto_sub`` whose subscriptions are known to be in place."""

    def __init__(self, fleet: Fleet, *topics: str, v5: bool = False, fmt: str = "%t %p") -> None:
        args = ["mosquitto_sub", "-p", str(fleet.broker.port), "-q", "1", "-W", "15"]
        args += ["-V", "mqttv5"] if v5 else []
        args += ["-F", fmt, "-t", fleet.sentinel]
        for topic in topics:
            args += ["-t", topic]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        first = self.line()
        assert first.startswith(fleet.sentinel), first

    def line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # -W bounds the wait
        assert line, "mosquitto_sub ended (-W timeout) before the expected message"
        return line.rstrip("\n")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        self.proc.wait(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def pub(fleet: Fleet, topic: str, payload: str, *extra: str) -> None:
    mosquitto_pub(fleet.broker.port, "-t", topic, "-m", payload, *extra)


def mqtt_call(fleet: Fleet, verb: str, body: dict[str, Any] | str, rid: str) -> dict[str, Any]:
    """One command as a shell user would send it; returns the reply as JSON."""
    reply_to = f"{fleet.root}/replies/shell/{rid}"
    if isinstance(body, dict):
        body = json.dumps({"v": 1, "request_id": rid, "reply_to": reply_to, **body})
    sub = Sub(fleet, reply_to)
    try:
        pub(fleet, f"{fleet.root}/commands/{verb}", body)
        topic, _, payload = sub.line().partition(" ")
    finally:
        sub.close()
    assert topic == reply_to
    reply: dict[str, Any] = json.loads(payload)
    assert reply["request_id"] == rid
    return reply


def test_every_verb_through_mosquitto_pub_and_sub(fleet: Fleet) -> None:
    tag = uuid.uuid4().hex[:6]
    manifest = {"name": "shell", "replicas": 1, "workload": {"runtime": "simulated"}}
    r = mqtt_call(fleet, "deploy", {"manifest": manifest}, f"d-{tag}")
    assert r["ok"] and r["result"]["action"] == "created"
    yaml_text = "name: shell\nreplicas: 1\nworkload:\n  runtime: simulated\n"
    r = mqtt_call(fleet, "deploy", {"manifest": yaml_text}, f"y-{tag}")
    assert r["ok"] and r["result"]["action"] == "unchanged"
    r = mqtt_call(fleet, "scale", {"app": "shell", "replicas": 2}, f"s-{tag}")
    assert r["result"] == {"app": "shell", "replicas": 2, "previous": 1}
    r = mqtt_call(fleet, "apps", {}, f"l-{tag}")
    assert "shell" in {a["app"] for a in r["result"]["apps"]}
    r = mqtt_call(fleet, "app", {"app": "shell"}, f"a-{tag}")
    assert r["result"]["manifest"]["replicas"] == 2
    r = mqtt_call(fleet, "nodes", {}, f"n-{tag}")
    assert {n["node"] for n in r["result"]["nodes"]} == set(NODES)
    r = mqtt_call(fleet, "node", {"node": "gw1"}, f"o-{tag}")
    assert r["result"]["site"] == "s1"
    r = mqtt_call(fleet, "cordon", {"node": "gw1"}, f"c-{tag}")
    assert r["result"] == {"node": "gw1", "cordoned": True, "changed": True}
    r = mqtt_call(fleet, "uncordon", {"node": "gw1"}, f"u-{tag}")
    assert r["result"] == {"node": "gw1", "cordoned": False, "changed": True}
    r = mqtt_call(fleet, "drain", {"node": "gw1"}, f"r-{tag}")
    assert r["ok"] and (r["result"]["node"], r["result"]["action"]) == ("gw1", "started")
    r = mqtt_call(fleet, "uncordon", {"node": "gw1"}, f"v-{tag}")
    assert r["result"]["drain_cancelled"] is True
    r = mqtt_call(fleet, "delete", {"app": "shell"}, f"x-{tag}")
    assert r["result"] == {"app": "shell", "action": "deleted"}


def test_malformed_commands_get_error_replies_that_name_the_problem(fleet: Fleet) -> None:
    tag = uuid.uuid4().hex[:6]
    r = mqtt_call(fleet, "frobnicate", {}, f"v-{tag}")
    assert (r["ok"], r["error"]["code"]) == (False, "unknown_verb")
    assert "deploy" in r["error"]["details"]["verbs"]
    r = mqtt_call(fleet, "scale", {"app": "shell"}, f"m-{tag}")
    assert r["error"]["code"] == "bad_request"
    assert r["error"]["details"] == {"field": "replicas", "reason": "is required"}
    r = mqtt_call(fleet, "scale", {"app": "shell", "replicas": "3"}, f"t-{tag}")
    assert r["error"]["details"]["field"] == "replicas"
    bad = {"name": "bad", "replicas": 1, "workload": {"runtime": "simulated", "memroy_mb": 1}}
    r = mqtt_call(fleet, "deploy", {"manifest": bad}, f"b-{tag}")
    assert r["error"]["code"] == "bad_request" and "memroy_mb" in r["error"]["message"]
    r = mqtt_call(fleet, "app", {"app": "bad"}, f"g-{tag}")
    assert r["error"]["code"] == "not_found"  # the bad manifest changed nothing

    # A payload that is not JSON names no reply topic: only the audit trail records it.
    events = Sub(fleet, f"{fleet.root}/orchestrator/events")
    try:
        pub(fleet, f"{fleet.root}/commands/apps", "this is not json")
        while True:
            event = json.loads(events.line().partition(" ")[2])
            audit = event.get("details", {})
            if event.get("kind") == "command" and audit.get("request_id") == "unknown":
                break
    finally:
        events.close()
    assert (audit["ok"], audit["result"], audit["verb"]) == (False, "bad_request", "apps")


def test_a_repeated_request_id_gets_the_same_reply_and_runs_once(fleet: Fleet) -> None:
    rid = f"once-{uuid.uuid4().hex[:6]}"
    first = {"name": "once", "replicas": 1, "workload": {"runtime": "simulated"}}
    second = {**first, "replicas": 5}
    r1 = mqtt_call(fleet, "deploy", {"manifest": first}, rid)
    r2 = mqtt_call(fleet, "deploy", {"manifest": second}, rid)
    assert r1 == r2
    assert r1["ok"] and r1["result"]["action"] == "created"
    app = ok_json(fleet, "app", "once")
    assert app["manifest"]["replicas"] == 1  # the repeat did not run
    assert [a["app"] for a in ok_json(fleet, "apps")["apps"]].count("once") == 1
    assert run(fleet, "delete", "once").returncode == 0


def test_a_command_without_reply_to_runs_and_is_audited_on_orchestrator_events(
    fleet: Fleet,
) -> None:
    rid = f"quiet-{uuid.uuid4().hex[:6]}"
    events = Sub(fleet, f"{fleet.root}/orchestrator/events")
    try:
        pub(
            fleet,
            f"{fleet.root}/commands/node",
            json.dumps({"v": 1, "request_id": rid, "node": "gw3"}),
        )
        while True:
            event = json.loads(events.line().partition(" ")[2])
            if event.get("details", {}).get("request_id") == rid:
                break
    finally:
        events.close()
    # who, verb, target, result and time; never the reply (#12 defect 4)
    assert event["kind"] == "command" and "reply" not in event["details"]
    audit = event["details"]
    assert (audit["operator"], audit["verb"], audit["target"], audit["result"]) == (
        "anonymous",
        "node",
        "gw3",
        "ok",
    )
    assert event["node"] == "gw3" and isinstance(audit["ts"], float)


def test_mqtt5_response_topic_and_correlation_data_are_honoured(fleet: Fleet) -> None:
    rid = f"v5-{uuid.uuid4().hex[:6]}"
    reply_to = f"{fleet.root}/replies/shell/{rid}"
    sub = Sub(fleet, reply_to, v5=True, fmt="%t|%D|%p")
    try:
        pub(
            fleet,
            f"{fleet.root}/commands/apps",
            json.dumps({"v": 1, "request_id": rid}),
            "-V",
            "mqttv5",
            "-D",
            "publish",
            "response-topic",
            reply_to,
            "-D",
            "publish",
            "correlation-data",
            f"corr-{rid}",
        )
        topic, correlation, payload = sub.line().split("|", 2)
    finally:
        sub.close()
    assert (topic, correlation) == (reply_to, f"corr-{rid}")
    assert json.loads(payload)["ok"] is True


def test_audit_shows_who_ran_which_command_as_a_table_and_as_json(fleet: Fleet) -> None:
    assert run(fleet, "node", "gw3").returncode == 0
    entries = ok_json(fleet, "audit", "--limit", "5")["entries"]
    last = entries[-1]
    assert (last["operator"], last["verb"], last["target"], last["result"]) == (
        "anonymous",
        "node",
        "gw3",
        "ok",
    )
    table = run(fleet, "audit", "--operator", "anonymous", "--limit", "3")
    assert table.returncode == 0, table.stderr
    assert "anonymous" in table.stdout and "node gw3" in table.stdout
