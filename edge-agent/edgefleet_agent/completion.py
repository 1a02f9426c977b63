"""Shell completion for ``edgefleet-agent``, like ``edgefleet --show-completion``.

``edgefleet-agent --show-completion bash`` (or ``zsh``) prints a script built from the
argument parser itself, so every subcommand and flag it knows is completed and none it
does not: ``eval "$(edgefleet-agent --show-completion bash)"`` in ``~/.bashrc``. Pure:
parser in, script text out.
"""

from __future__ import annotations

import argparse

SHELLS = ("bash", "zsh")


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
    top = " ".join([*sorted(subs), *_options(parser), "--show-completion"])
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
