"""`edgefleet keys ...`: the desired-state signing keys after provisioning.

``edgefleet keys rotate --keys DIR`` replaces ``DIR/orchestrator.key`` with a new key and
appends to ``DIR/orchestrator.chain.json`` an endorsement of it, signed by the current
orchestrator key (``--by current``, routine) or by the offline root key (``--by root``,
after the current key leaked: the chain then starts afresh from the root, so the leaked key
vouches for nothing). Restart the orchestrator with the new key and ``--key-chain``; each
agent adopts the new key with the first document it verifies and refuses the old one from
then on. The old key is kept as ``orchestrator.key.<key id>.retired`` (destroy it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from edgefleet_protocol.control_messages import MAX_KEY_CHAIN
from edgefleet_protocol.errors import ProtocolError

from edgefleet_cli.brokerconfig import trust
from edgefleet_cli.brokerconfig.bundle import SECRET
from edgefleet_cli.brokerconfig.writer import write_file

app = typer.Typer(help="desired-state signing keys", no_args_is_help=True)


@app.command("rotate")
def rotate(
    keys: Annotated[
        Path, typer.Option("--keys", help="The keys/ directory of `edgefleet broker config`.")
    ],
    by: Annotated[
        str, typer.Option("--by", help="Who endorses the new key: current or root.")
    ] = "current",
) -> None:
    """Make a new orchestrator signing key, endorsed by the current key or the root key."""
    if by not in ("current", "root"):
        typer.echo(f"error: --by must be current or root, not {by!r}", err=True)
        raise typer.Exit(2)
    key_path = keys / Path(trust.ORCHESTRATOR_KEY).name
    chain_path = keys / Path(trust.CHAIN_FILE).name
    signer_path = key_path if by == "current" else keys / Path(trust.ROOT_KEY).name
    try:
        current = trust.load_key(key_path.read_bytes(), what=str(key_path))
        signer = trust.load_key(signer_path.read_bytes(), what=str(signer_path))
        chain = trust.read_chain(chain_path.read_bytes()) if chain_path.exists() else []
    except OSError as exc:
        typer.echo(f"error: cannot read {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(2) from None
    except ProtocolError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    new = trust.new_key()
    chain = [] if by == "root" else chain
    chain = [*chain, trust.endorse(new, by=signer)][-MAX_KEY_CHAIN:]
    old_id = trust.public_ref(current).key_id
    retired = keys / f"{key_path.name}.{old_id}.retired"
    os.replace(key_path, retired)
    write_file(key_path, trust.key_pem(new), SECRET)
    write_file(chain_path, trust.chain_json(chain), 0o644)
    new_id = trust.public_ref(new).key_id
    typer.echo(f"new orchestrator key {new_id} endorsed by the {by} key; old key {old_id} in")
    typer.echo(f"  {retired} (destroy it once every gateway runs the new key).")
    typer.echo(f"Restart the orchestrator with --signing-key {key_path} --key-chain {chain_path}")
