"""Opening the sealed secrets of a workload with this node's key.

Who calls it: the desired intake (every sealed secret of a document must open, else the
document is refused as a whole with an event: wrong node key, altered box, missing box),
and the process and Docker runtimes at every launch (the opened values go only into the
starting workload's environment: never into a spec, a store, a label or a log). A value is
never part of any message this module returns.
"""

from __future__ import annotations

from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from edgefleet_protocol import Desired, WorkloadSpec
from edgefleet_protocol.sealing import SealError, unseal

from edgefleet_agent.core.runtime import PermanentRuntimeError

SecretEnv = Callable[[WorkloadSpec], dict[str, str]]


def unopenable(desired: Desired, key: X25519PrivateKey | None) -> list[str]:
    """``"workload: secret NAME: why"`` for every secret of ``desired`` that does not open."""
    problems = []
    for w in desired.workloads:
        for secret in w.spec.secrets:
            where = f"{w.name}: secret {secret.name}"
            if key is None:
                problems.append(f"{where}: this agent has no sealing key")
            elif secret.sealed is None:
                problems.append(f"{where}: not sealed for this node (is it set? does the"
                                " orchestrator know this node's sealing key?)")  # fmt: skip
            else:
                try:
                    unseal(secret.sealed, name=secret.name, key=key)
                except SealError as exc:
                    problems.append(f"{where}: {exc}")
    return problems


def secret_env(key: X25519PrivateKey | None) -> SecretEnv:
    """The runtimes' hook: the environment a spec's secrets add, opened at launch."""

    def opened(spec: WorkloadSpec) -> dict[str, str]:
        env: dict[str, str] = {}
        for secret in spec.secrets:
            if key is None or secret.sealed is None:
                raise PermanentRuntimeError(f"secret {secret.name} cannot be opened here")
            try:
                env[secret.env] = unseal(secret.sealed, name=secret.name, key=key).decode()
            except (SealError, UnicodeDecodeError) as exc:
                raise PermanentRuntimeError(f"secret {secret.name}: {exc}") from None
        return env

    return opened
