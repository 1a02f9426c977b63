"""``edgefleet-agent --help`` draws edgefleet's panels with argparse, and
``--install-completion`` installs the script the way ``edgefleet``'s does."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from edgefleet_agent.cli import SINGLE, build_parser, main
from edgefleet_agent.completion import current_shell, install_completion
from edgefleet_agent.helptext import PanelParser, format_panels


def test_the_root_help_has_usage_description_options_and_commands() -> None:
    text = format_panels(build_parser(), width=80)
    lines = text.splitlines()
    assert " Usage: edgefleet-agent [OPTIONS] COMMAND [ARGS]..." in lines
    assert any(line.startswith("╭─ Options ─") for line in lines)
    assert any(line.startswith("╭─ Commands ─") for line in lines)
    for name in ("run", "config", "simulate", "--install-completion", "--show-completion"):
        assert any(line.startswith(f"│ {name} ") for line in lines), name
    assert all(len(line) == 80 for line in lines if line[:1] in "╭│╰" and line), text


def test_every_setting_flag_is_in_the_run_help_with_its_environment_variable() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[
        "run"
    ]
    text = format_panels(sub, width=200)
    for setting in SINGLE:
        flag = "--" + setting.replace("_", "-")
        assert f"│ {flag} " in text, flag
        assert f"EDGEFLEET_{setting.upper()})" in text, setting


def test_a_long_word_overflows_instead_of_being_cut() -> None:
    parser = PanelParser(prog="p")
    parser.add_argument("--url", help="x" * 100)
    assert "x" * 100 in format_panels(parser, width=60)


def test_help_exits_0_and_a_bad_flag_is_still_argparse_s_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["run", "--help"])
    assert done.value.code == 0
    assert "│ --heartbeat-s " in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["run", "--no-such-flag"])
    assert done.value.code == 2


@pytest.mark.parametrize(
    ("shell_path", "shell"),
    [("/bin/bash", "bash"), ("/usr/bin/zsh", "zsh"), ("/bin/fish", "bash"), ("", "bash")],
)
def test_the_current_shell_comes_from_shell_and_defaults_to_bash(
    shell_path: str, shell: str
) -> None:
    assert current_shell(shell_path) == shell


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_install_writes_the_script_and_sources_it_once(tmp_path: Path, shell: str) -> None:
    rc_name = ".bashrc" if shell == "bash" else ".zshrc"
    (tmp_path / rc_name).write_text("alias ll='ls -l'")  # no newline at the end
    for _ in range(2):
        path, rc = install_completion("# script\n", shell, tmp_path)
    assert path.read_text() == "# script\n" and path.is_relative_to(tmp_path)
    assert rc.read_text() == f"alias ll='ls -l'\nsource {path}\n"


def test_the_flag_installs_into_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SHELL", "/bin/zsh")
    assert main(["--install-completion"]) == 0
    assert "zsh completion installed" in capsys.readouterr().out
    assert "_edgefleet_agent" in (tmp_path / ".zfunc" / "edgefleet-agent.zsh").read_text()
    assert main(["--install-completion", "fish"]) == 2
