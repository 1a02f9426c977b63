"""The ``secret-set`` command and sealing secrets into desired documents.

Invariants: a secret exists at the orchestrator only as a box sealed to its own sealing key
(the command's argument, stored as is under control key ``secret/<name>``); it is opened
only in memory, while a pass re-seals it for the node that runs the workload
(:func:`seal_for_nodes`). Nothing it publishes or stores — reply, audit, event, document,
store row — holds a value in clear.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol import Desired
from edgefleet_protocol.commands import ErrorCode, SecretSetArgs
from edgefleet_protocol.sealing import SealError, private_bytes, seal, unseal
from pydantic import BaseModel

from edgefleet_orchestrator.fleet.records import NodeRecord
from edgefleet_orchestrator.reconcile.documents import DocumentChange
from edgefleet_orchestrator.service.handlers import CommandFailed, Outcome
from edgefleet_orchestrator.service.state import ControlState
from edgefleet_orchestrator.store.base import Store

SECRET_PREFIX = "secret/"


def handle_secret(verb: str, args: BaseModel, state: ControlState, store: Store) -> Outcome:
    """``secret-set`` (:data:`SECRET_VERBS`): store a box sealed to this orchestrator."""
    assert isinstance(args, SecretSetArgs)
    key = state.sealing_key
    if key is None:
        raise CommandFailed(ErrorCode.CONFLICT, "this orchestrator has no sealing key")
    try:
        unseal(args.sealed, name=args.name, key=key)  # refuse what could never be used
    except SealError as exc:
        raise CommandFailed(
            ErrorCode.BAD_REQUEST,
            f"sealed: {exc}",
            {"field": "sealed", "reason": str(exc)},
        ) from None
    action = "updated" if args.name in state.secrets else "created"
    store.put_control(SECRET_PREFIX + args.name, json.dumps({"sealed": args.sealed}))
    state.secrets[args.name] = args.sealed
    state.secrets_dirty.add(args.name)
    return Outcome({"secret": args.name, "action": action}, True)


SECRET_VERBS = {"secret-set": handle_secret}


def stored_secrets(control: Mapping[str, str]) -> dict[str, str]:
    """The boxes in the store's control documents, by secret name."""
    found = {}
    for key, text in control.items():
        if key.startswith(SECRET_PREFIX):
            try:
                found[key.removeprefix(SECRET_PREFIX)] = str(json.loads(text)["sealed"])
            except (ValueError, KeyError, TypeError):
                continue
    return found


def seal_document(
    doc: Desired, *, node: NodeRecord | None, secrets: Mapping[str, str], key: X25519PrivateKey
) -> Desired:
    """``doc`` with each secret reference sealed for ``node``'s key; a reference that cannot
    be sealed (no such secret, no node key) stays unsealed and the agent refuses it."""
    recipient = node.capabilities.sealing_key if node and node.capabilities else None
    workloads = []
    for w in doc.workloads:
        refs = []
        for ref in w.spec.secrets:
            box, sealed = secrets.get(ref.name), None
            if box is not None and recipient is not None:
                try:
                    value = unseal(box, name=ref.name, key=key)
                    sealed = seal(value, name=ref.name, recipient=recipient,
                                  derive_from=private_bytes(key))  # fmt: skip
                except SealError:
                    sealed = None
            refs.append(ref.model_copy(update={"sealed": sealed}))
        spec = w.spec.model_copy(update={"secrets": refs}) if refs else w.spec
        workloads.append(w.model_copy(update={"spec": spec}))
    return doc.model_copy(update={"workloads": workloads})


def seal_changes(
    changes: list[DocumentChange], state: ControlState, key: X25519PrivateKey | None
) -> None:
    """Seal the secrets of every document of a pass, in place."""
    if key is None:
        return
    nodes = state.registry.nodes
    for i, c in enumerate(changes):
        if any(w.spec.secrets for w in c.document.workloads):
            sealed = seal_document(
                c.document, node=nodes.get(c.node), secrets=state.secrets, key=key
            )
            changes[i] = replace(c, document=sealed)
