"""``edgefleet secret set NAME``: store a secret the orchestrator seals for each gateway.

The value is read from standard input (or ``--from-file``), sealed here to the
orchestrator's sealing key (``sealing_key`` in its retained status) and sent sealed: the
command, its reply and the audit trail never carry it in clear, and neither does any topic,
store row or log after it. Manifests refer to it by name (``secrets: [{name, env}]`` in the
workload); each gateway gets it sealed to its own key.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from edgefleet_protocol.sealing import MAX_SECRET_BYTES, SealError, seal

from edgefleet_cli.client import OperatorClient
from edgefleet_cli.config import CommandRefused, UsageError, refusal_lines
from edgefleet_cli.options import (
    Common,
    emit,
    execute,
    operator_command,
)

app = typer.Typer(help="sealed secrets", no_args_is_help=True)


@app.command("set")
@operator_command
def set_secret(
    name: Annotated[str, typer.Argument(help="The secret's name (manifests refer to it).")],
    common: Common,
    from_file: Annotated[
        Path | None, typer.Option("--from-file", help="Read the value from this file.")
    ] = None,
) -> None:
    """Store secret NAME; the value comes from standard input (or --from-file)."""

    async def work() -> None:
        try:
            value = from_file.read_bytes() if from_file else sys.stdin.buffer.read()
        except OSError as exc:
            raise UsageError(f"error: cannot read {from_file}: {exc.strerror}") from None
        if not value or len(value) > MAX_SECRET_BYTES:
            raise UsageError(f"error: a secret value is 1 to {MAX_SECRET_BYTES} bytes")
        settings = common.settings()
        async with OperatorClient(settings) as client:
            await client.settle(max_s=min(settings.timeout_s, 3.0))
            status = client.snapshot.orchestrator
            if status is None or status.sealing_key is None:
                raise CommandRefused("error: the orchestrator publishes no sealing key")
            try:
                sealed = seal(value, name=name, recipient=status.sealing_key)
            except SealError as exc:
                raise CommandRefused(f"error: {exc}") from None
            reply = await client.call("secret-set", {"name": name, "sealed": sealed})
        if not reply.ok:
            raise CommandRefused(*refusal_lines(reply))
        emit(common.output, reply.result, f"secret {name} {reply.result['action']} (sealed; "
             "the value never left this machine in clear)")  # fmt: skip

    execute(work)
