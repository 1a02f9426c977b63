"""Shell completion for ``edgefleet-agent``, like ``edgefleet --show-completion``.

``edgefleet-agent --show-completion bash`` (or ``zsh``) prints a script built from the
argument parser itself, so every subcommand and flag it knows is completed and none it
does not: ``eval "$(edgefleet-agent --show-completion bash)"`` in ``~/.bashrc``, or
``edgefleet-agent --install-completion``, which writes the script where ``edgefleet
--install-completion`` (typer) writes its own and sources it from the shell's rc file. The
script is pure (parser in, text out); :func:`install_completion` is the one writer.
"""

from __future__ import annotations

import argparse
from pathlib import Path

SHELLS = ("bash", "zsh")

_PLACES = {
    "bash": (".bash_completions/edgefleet-agent.sh", ".bashrc"),
    "zsh": (".zfunc/edgefleet-agent.zsh", ".zshrc"),
}
"""Per shell: where the script goes and which rc file sources it (under the home dir)."""


def current_shell(shell_path: str) -> str:
    """The shell named by ``$SHELL`` (``/usr/bin/zsh``: zsh); bash when it is not one we
    complete for, the usual shell of a gateway."""
    name = Path(shell_path).name
    return name if name in SHELLS else "bash"


def install_completion(script: str, shell: str, home: Path) -> tuple[Path, Path]:
    """Write ``script`` for ``shell`` under ``home`` and source it from the rc file (once:
    installing again only rewrites the script). Returns (script path, rc path)."""
    relative, rc_name = _PLACES[shell]
    path, rc = home / relative, home / rc_name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    line = f"source {path}"
    existing = rc.read_text(encoding="utf-8") if rc.exists() else ""
    if line not in existing.splitlines():
        with rc.open("a", encoding="utf-8") as f:
            f.write(("" if existing.endswith("\n") or not existing else "\n") + line + "\n")
    return path, rc


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return sorted(s for action in parser._actions for s in action.option_strings)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def completion_script(parser: argparse.ArgumentParser, shell: str) -> str:
    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}; known: {', '.join(SHELLS)}")
    subs = _subcommands(parser)
    top = " ".join([*sorted(subs), *_options(parser)])
    cases = "\n".join(
        f'    {name}) opts="{" ".join(_options(sub))}" ;;' for name, sub in sorted(subs.items())
    )
    script = f"""# edgefleet-agent {shell} completion (edgefleet-agent --show-completion {shell})
_edgefleet_agent() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" opts
  if [ "$COMP_CWORD" -le 1 ]; then
    COMPREPLY=($(compgen -W "{top}" -- "$cur"))
    return
  fi
  case "${{COMP_WORDS[1]}}" in
{cases}
    *) opts="" ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -o default -F _edgefleet_agent edgefleet-agent
"""
    if shell == "zsh":
        script = "autoload -U +X bashcompinit && bashcompinit\n" + script
    return script
