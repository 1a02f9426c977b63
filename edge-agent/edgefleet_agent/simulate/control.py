"""The fleet simulator's control language: one command per stdin line, one JSON line back.

Pure (text in, :class:`Command` or :class:`CommandError` out). ``edgefleet-agent simulate
--control`` reads commands from stdin while the fleet runs, and answers each on stdout:

=====================================  ==================================================
``kill 5`` / ``kill NODE...``          nodes die: sockets closed, the broker sends wills
``cut 5`` / ``cut NODE... for 20``     links go silent (restored after 20 s if given)
``flap 3 down 2 up 8``                 links go down 2 s, up 8 s, repeatedly
``restore`` / ``restore NODE...``      every (or the named) cut or flapping link comes back
``revive`` / ``revive 5|NODE...``      killed nodes boot again (new agent session)
``status``                             counts: running, ready, killed, cut, flapping
``stop``                               stop the fleet cleanly and exit
=====================================  ==================================================

A count picks victims among faultable nodes that are running on a working link, with the
fleet's seeded RNG. Blank lines and lines starting with ``#`` are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verb = Literal["kill", "cut", "flap", "restore", "revive", "status", "stop"]
VERBS: tuple[Verb, ...] = ("kill", "cut", "flap", "restore", "revive", "status", "stop")


class CommandError(ValueError):
    """A line that is not a command; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Command:
    verb: Verb
    count: int = 0
    nodes: tuple[str, ...] = ()
    for_s: float | None = None
    down_s: float = 0.0
    up_s: float = 0.0


USAGE = (
    "kill N|NODE..., cut N|NODE... [for S], flap N|NODE... down S up S, "
    "restore [NODE...], revive [N|NODE...], status, stop"
)


def _seconds(word: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CommandError(f"{word} needs a number of seconds, got {text!r}") from None
    if not value > 0:
        raise CommandError(f"{word} must be > 0 seconds, got {text!r}")
    return value


def _keyword(words: list[str], key: str) -> float | None:
    """Remove ``key VALUE`` from ``words``; its value in seconds, or ``None``."""
    if key not in words:
        return None
    at = words.index(key)
    if at + 1 >= len(words):
        raise CommandError(f"{key} needs a number of seconds")
    value = _seconds(key, words[at + 1])
    del words[at : at + 2]
    return value


def _targets(verb: Verb, words: list[str], *, required: bool) -> tuple[int, tuple[str, ...]]:
    if not words:
        if required:
            raise CommandError(f"{verb} needs a count or node ids")
        return 0, ()
    if len(words) == 1 and words[0].isdigit():
        count = int(words[0])
        if count < 1:
            raise CommandError(f"{verb} needs a count of at least 1, got {words[0]}")
        return count, ()
    if any(word.isdigit() for word in words):
        raise CommandError(f"{verb} takes one count or node ids, not both: {' '.join(words)}")
    return 0, tuple(dict.fromkeys(words))


def parse_command(line: str) -> Command | None:
    """The command on ``line``; ``None`` for a blank or comment line."""
    words = line.split()
    if not words or words[0].startswith("#"):
        return None
    head, rest = words[0].lower(), words[1:]
    if head not in VERBS:
        raise CommandError(f"unknown command {words[0]!r}; commands: {USAGE}")
    verb: Verb = head
    match verb:
        case "status" | "stop":
            if rest:
                raise CommandError(f"{verb} takes no arguments")
            return Command(verb)
        case "kill":
            count, nodes = _targets(verb, rest, required=True)
            return Command(verb, count, nodes)
        case "cut":
            for_s = _keyword(rest, "for")
            count, nodes = _targets(verb, rest, required=True)
            return Command(verb, count, nodes, for_s=for_s)
        case "flap":
            down_s, up_s = _keyword(rest, "down"), _keyword(rest, "up")
            if down_s is None or up_s is None:
                raise CommandError("flap needs 'down SECONDS up SECONDS'")
            count, nodes = _targets(verb, rest, required=True)
            return Command(verb, count, nodes, down_s=down_s, up_s=up_s)
        case "restore":
            count, nodes = _targets(verb, rest, required=False)
            if count:
                raise CommandError("restore takes node ids (or nothing, for every link)")
            return Command(verb, nodes=nodes)
        case "revive":
            count, nodes = _targets(verb, rest, required=False)
            return Command(verb, count, nodes)
    raise CommandError(f"unknown command {words[0]!r}")  # pragma: no cover
