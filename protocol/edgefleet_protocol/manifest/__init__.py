"""Application manifests: what an operator asks the fleet to run, validated at the edge.

A manifest names an app, the workload spec each replica runs, how many replicas (or one per
matching node, ``mode: daemon``), where they may run (``placement``) and what happens when a
node disappears (``disconnect``). The orchestrator validates manifests with unknown fields
refused, so a typo such as ``max_per_nod`` is an error naming its path instead of a silently
ignored key. The placement pipeline (:mod:`edgefleet_orchestrator.placement`) reads the
validated, frozen :class:`AppManifest`; nothing downstream re-checks it.

Callers: the ``deploy`` command handler and ``edgefleet`` CLI (via :func:`load_manifest` /
:func:`load_manifests`), and the reconcile loop (via :func:`replica_name`).

Rooms: :mod:`.rules` (shared shapes), :mod:`.blocks` (placement, disconnect, autoscale,
disruption, service: where a new block goes), :mod:`.names` (replica names), :mod:`.app` (the
manifest), :mod:`.files` (reading text and files), :mod:`.diff` (field-level changes, for
``plan``). Import from this package.
"""

from edgefleet_protocol.manifest.app import (
    AppManifest,
    with_replicas,
)
from edgefleet_protocol.manifest.blocks import (
    BUILTIN_METRICS,
    Autoscale,
    Disconnect,
    Disruption,
    LatencyLimit,
    Placement,
    Service,
    ServicePort,
    Share,
    Topology,
    Update,
    Waves,
    share_of,
)
from edgefleet_protocol.manifest.diff import field_changes
from edgefleet_protocol.manifest.files import (
    ManifestError,
    load_manifest,
    load_manifests,
    manifest_files,
    manifest_problems,
)
from edgefleet_protocol.manifest.names import (
    replica_index,
    replica_name,
)
from edgefleet_protocol.manifest.rules import (
    DAEMON_HASH_DIGITS,
    MANIFEST_SUFFIXES,
    MAX_ID_LENGTH,
    MAX_MANIFEST_BYTES,
    Mode,
    Spread,
    Strategy,
)

__all__ = [
    "BUILTIN_METRICS",
    "DAEMON_HASH_DIGITS",
    "MANIFEST_SUFFIXES",
    "MAX_ID_LENGTH",
    "MAX_MANIFEST_BYTES",
    "AppManifest",
    "Autoscale",
    "Disconnect",
    "Disruption",
    "LatencyLimit",
    "ManifestError",
    "Mode",
    "Placement",
    "Service",
    "ServicePort",
    "Share",
    "Spread",
    "Strategy",
    "Topology",
    "Update",
    "Waves",
    "field_changes",
    "load_manifest",
    "load_manifests",
    "manifest_files",
    "manifest_problems",
    "replica_index",
    "replica_name",
    "share_of",
    "with_replicas",
]
