"""The ``edgefleet-agent`` command: invalid settings fail fast with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

AGENT = Path(sys.executable).parent / "edgefleet-agent"


def agent(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(AGENT), *args], capture_output=True, text=True, env=env or {},
                          timeout=30, check=False)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "setting"),
    [
        (["run", "--site", "s1"], "node"),
        (["run", "--node", "Gateway_1", "--site", "s1"], "node"),
        (["run", "--node", "n1", "--site", "s1", "--broker", "http://x"], "broker"),
        (["run", "--node", "n1", "--site", "s1", "--runtime", "lxc"], "runtime"),
        (["run", "--node", "n1", "--site", "s1", "--label", "oops"], "labels"),
        (["run", "--node", "n1", "--site", "s1", "--profile", "no-such-board"], "profile"),
        (["run", "--node", "n1", "--site", "s1", "--state-dir", "/proc/nope"], "state_dir"),
        (["run", "--config", "/nonexistent/agent.yaml"], "config"),
    ],
)
def test_invalid_settings_exit_2_naming_the_setting(args: list[str], setting: str) -> None:
    result = agent(*args)
    assert result.returncode == 2, result.stderr
    assert f"invalid setting '{setting}'" in result.stderr


def test_config_prints_resolved_settings_with_precedence_and_no_password(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('node = "from-file"\nsite = "s1"\nheartbeat_s = 120\nregion = "eu"\n')
    result = agent(
        "config", "--config", str(config), "--heartbeat-s", "30",
        "--broker", "mqtt://agent:secret@broker:1883",
        env={"EDGEFLEET_NODE": "from-env", "EDGEFLEET_REGION": "us"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert (shown["node"], shown["heartbeat_s"], shown["region"]) == ("from-env", 30.0, "us")
    assert shown["broker"] == "mqtt://agent:***@broker:1883"
    assert "secret" not in result.stdout


def test_an_unknown_flag_is_an_argparse_error_with_exit_2() -> None:
    assert agent("run", "--nodes", "x").returncode == 2
