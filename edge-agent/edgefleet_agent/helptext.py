"""``edgefleet-agent --help`` in the look of ``edgefleet --help``: a usage line, the
description, then boxed **Options** and **Commands** panels, one row per flag with its value
name and help, wrapped to the terminal.

Why not typer and rich, as ``edgefleet`` uses: ``pip install 'edgefleet[agent]'`` must
bring a gateway nothing of the control plane (tests/packaging holds it to no typer, no
rich), so the agent keeps argparse and draws the same panels itself. Every flag, default
and exit code stays argparse's. Pure: a parser in, text out (:class:`PanelParser` is the
argparse class that uses it; its sub-parsers inherit it).
"""

from __future__ import annotations

import argparse
import shutil
import textwrap
from collections.abc import Iterable, Sequence

MIN_WIDTH = 40
MAX_WIDTH = 120


def help_width() -> int:
    """The terminal's width (``COLUMNS`` when set; 80 when not a terminal), bounded."""
    return max(MIN_WIDTH, min(MAX_WIDTH, shutil.get_terminal_size((80, 24)).columns))


def panel(title: str, rows: Sequence[tuple[str, ...]], width: int) -> list[str]:
    """A box titled ``title`` around ``rows`` of columns; the last column wraps."""
    inner = width - 4  # "│ " and " │"
    fixed = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    left = sum(fixed) + 2 * len(fixed)
    room = max(inner - left, 16)
    lines = [f"╭─ {title} " + "─" * max(width - len(title) - 5, 0) + "╮"]
    for row in rows:
        head = "".join(cell.ljust(w + 2) for cell, w in zip(row, fixed, strict=False))
        # A word longer than the room (a URL) overflows the box rather than being split.
        text = textwrap.wrap(row[-1], room, break_long_words=False) or [""]
        for i, part in enumerate(text):
            lead = head if i == 0 else " " * len(head)
            lines.append("│ " + (lead + part).ljust(inner) + " │")
    lines.append("╰" + "─" * (width - 2) + "╯")
    return lines


def _option_rows(actions: Iterable[argparse.Action]) -> list[tuple[str, str, str]]:
    rows = []
    for action in actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        takes_value = action.nargs != 0
        value = ""
        if takes_value:
            metavar = action.metavar or action.dest.upper()
            value = metavar if isinstance(metavar, str) else " ".join(metavar)
            if action.nargs == "?":
                value = f"[{value}]"
        rows.append((", ".join(action.option_strings), value, action.help or ""))
    return rows


def _command_rows(actions: Iterable[argparse.Action]) -> list[tuple[str, str]]:
    for action in actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {c.dest: c.help or "" for c in action._choices_actions}
            return [(name, helps.get(name, "")) for name in action.choices]
    return []


def format_panels(parser: argparse.ArgumentParser, width: int | None = None) -> str:
    """The whole help text of ``parser``."""
    width = width or help_width()
    commands = _command_rows(parser._actions)
    usage = f"{parser.prog} [OPTIONS]" + (" COMMAND [ARGS]..." if commands else "")
    out = ["", f" Usage: {usage}", ""]
    if parser.description:
        out += [f" {line}" for line in textwrap.wrap(parser.description, width - 2)] + [""]
    options = _option_rows(parser._actions)
    if options:
        out += panel("Options", options, width)
    if commands:
        out += panel("Commands", commands, width)
    if parser.epilog:
        out += ["", *textwrap.wrap(parser.epilog, width)]
    return "\n".join(out) + "\n"


class PanelParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose ``--help`` draws :func:`format_panels`; parsing, errors
    (usage on stderr, exit 2) and every flag are argparse's own."""

    def format_help(self) -> str:
        return format_panels(self)
