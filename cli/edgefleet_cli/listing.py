"""``edgefleet nodes`` and ``apps``: one command round trip, then a label selector (``-l``)
and the output form (``-o table|wide|json``) applied on this side.

Why here and not in the orchestrator: the ``nodes`` and ``apps`` replies carry every row
with its labels (docs/protocol.md), so any client selects the same way; the orchestrator
stays unchanged by how one client chooses to show them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import RenderableType

from edgefleet_cli.config import UsageError
from edgefleet_cli.options import Common, Output, call, execute, out, print_json
from edgefleet_cli.selectors import SelectorError, matches, parse_selector


class ListOutput(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"


ListOutputOpt = Annotated[
    ListOutput,
    typer.Option(
        "--output", "-o", help="table for people, wide for more columns, json for scripts."
    ),
]
SelectorOpt = Annotated[
    str | None,
    typer.Option(
        "--selector",
        "-l",
        help="Only rows whose labels match, e.g. role=sensor,zone!=b,gpu,!test.",
        show_default=False,
    ),
]

View = Callable[[Mapping[str, Any], bool], RenderableType]


def listing(
    common: Common,
    verb: str,
    key: str,
    *,
    selector: str | None,
    output: ListOutput,
    view: View,
) -> None:
    """Run ``verb``, keep the rows under ``key`` that match ``selector``, show them."""

    async def work() -> None:
        try:  # inside: execute() turns the refusal into its line and exit code 2
            requirements = parse_selector(selector) if selector is not None else ()
        except SelectorError as exc:
            raise UsageError(f"error: --selector: {exc}") from None
        result = dict(await call(common, verb, {}))
        result[key] = [r for r in result.get(key) or [] if matches(r.get("labels"), requirements)]
        if output is ListOutput.json:
            print_json(result)
        else:
            out().print(view(result, output is ListOutput.wide))

    execute(work)


__all__ = ["ListOutput", "ListOutputOpt", "Output", "SelectorOpt", "listing"]
