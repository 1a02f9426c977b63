"""The ``edgefleet`` console script: one clear line, not a traceback, when the operator
CLI's libraries are missing (a gateway installed with only ``edgefleet[agent]`` has the
script but not typer or rich)."""

from __future__ import annotations

import sys

CLI_LIBRARIES = ("typer", "rich", "click")


def main() -> None:
    try:
        from edgefleet_cli.main import main as run
    except ModuleNotFoundError as exc:
        if exc.name not in CLI_LIBRARIES:
            raise
        sys.stderr.write(
            f"edgefleet: the operator CLI needs {exc.name}, which this install lacks: "
            "pip install 'edgefleet[orchestrator]' (a gateway needs only edgefleet-agent, "
            "from 'edgefleet[agent]')\n"
        )
        sys.exit(2)
    run()
