"""The generated ``clients/<user>.env`` can be sourced by a real shell (issue #12 defect
8): the broker URL's ``&`` used to end the assignment, the variable stayed unset and the
CLI quietly used its default broker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from edgefleet_cli.brokerconfig.bundle import env_value
from harness.production import generate_set


def test_every_generated_env_file_sources_in_bash_to_the_exact_values(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    assert bash is not None
    users = generate_set(
        tmp_path / "set", "--host", "broker.example.net", "--node", "s1/n1", "--operator", "alice"
    )
    for name, entry in users.items():
        env_file = tmp_path / "set" / "clients" / f"{name}.env"
        out = subprocess.run(
            [
                bash,
                "-c",
                'set -eu; source "$1"; printf "%s\\n%s\\n%s" "$EDGEFLEET_BROKER" '
                '"$EDGEFLEET_BROKER_USERNAME" "$EDGEFLEET_BROKER_PASSWORD"',
                "bash",
                str(env_file),
            ],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert out.stderr == ""
        assert out.stdout.split("\n") == [entry["url"], name, entry["password"]]
        assert "&" in str(entry["url"])  # the character that broke it


@pytest.mark.parametrize("value", ["it's", "a\nb", "back\\slash"])
def test_a_value_no_quoting_keeps_intact_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="cannot write"):
        env_value(value)
