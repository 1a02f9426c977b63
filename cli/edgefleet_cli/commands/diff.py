"""``edgefleet diff FILE`` (and ``deploy --dry-run FILE``): what a deploy of the manifest
would change and where its replicas would go, without changing anything.

Both send the ``plan`` command (docs/protocol.md, "Plans"): the orchestrator runs the
deploy's own checks (manifest, roles, compliance policy, document size) and answers with
the field-level changes against the stored manifest, the revision and rollout the deploy
would start, and a trial pass's placement; it stores and publishes nothing. A refusal
exits 1 like the deploy's would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefleet_cli.config import read_manifest
from edgefleet_cli.options import (
    Common,
    call,
    emit,
    execute,
    operator_command,
)
from edgefleet_cli.plan_views import plan_view

ManifestArg = Annotated[
    Path, typer.Argument(metavar="FILE", help="Manifest, YAML or JSON ('-': stdin).")
]


def show_plan(common: Common, file: Path) -> None:
    """Send ``plan`` with the manifest in ``file`` and print the answer."""

    async def work() -> None:
        result = await call(common, "plan", {"manifest": read_manifest(file)})
        emit(common.output, result, lambda: plan_view(result))

    execute(work)


@operator_command
def diff(file: ManifestArg, common: Common) -> None:
    """Show what deploying FILE would change and where replicas would go; change nothing."""
    show_plan(common, file)
