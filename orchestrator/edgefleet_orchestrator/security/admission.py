"""Policy admission of a deploy: which compliance rules an app manifest breaks.

Who calls it: the ``deploy`` handler (:mod:`edgefleet_orchestrator.service.handlers`), after
the manifest validated and before anything is stored, when the orchestrator runs with
``--policy``. Every broken rule is listed (Kubernetes admission's habit: never make the
author fix one rule per round trip); an empty list admits. The same rules run again on each
gateway from its own policy file, which has the last word.
"""

from __future__ import annotations

from typing import Any

from edgefleet_protocol.manifest import AppManifest
from edgefleet_protocol.policy import CompliancePolicy, manifest_violations


def admission_violations(
    app: AppManifest, policy: CompliancePolicy, raw_manifest: dict[str, Any]
) -> list[str]:
    """``"rule: message"`` for every rule ``app`` breaks (empty: admitted)."""
    return [str(v) for v in manifest_violations(app, policy, given=raw_manifest)]
