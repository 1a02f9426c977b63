"""``edgefleet-agent --show-completion``: the script completes what the parser knows,
checked by real bash."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from edgefleet_agent.cli import build_parser, main
from edgefleet_agent.completion import completion_script


def complete(words: list[str]) -> list[str]:
    script = completion_script(build_parser(), "bash")
    line = " ".join(words)
    probe = f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _edgefleet_agent\n"
    probe += 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_subcommands_and_their_flags_complete() -> None:
    assert complete(["edgefleet-agent", "si"]) == ["simulate"]
    assert "--heartbeat-s" in complete(["edgefleet-agent", "run", "--heart"])
    assert "--metrics-addr" in complete(["edgefleet-agent", "config", "--metrics"])
    assert complete(["edgefleet-agent", "run", "--no-such"]) == []


def test_zsh_gets_the_bash_script_through_bashcompinit() -> None:
    assert completion_script(build_parser(), "zsh").startswith("autoload -U +X bashcompinit")


def test_the_flag_prints_the_script_and_refuses_other_shells(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--show-completion", "bash"]) == 0
    assert "complete -o default -F _edgefleet_agent edgefleet-agent" in capsys.readouterr().out
    assert main(["--show-completion", "fish"]) == 2
