"""edgefleet's wire contract: identifiers, topics, payload models, codec and MQTT session.

Both the orchestrator and the edge agent import this package; it imports neither.
"""

from edgefleet_protocol.base import PROTOCOL_VERSION
from edgefleet_protocol.codec import MAX_PAYLOAD_BYTES, decode, decode_for_kind, encode, validate
from edgefleet_protocol.compliance import ComplianceReport
from edgefleet_protocol.control_messages import (
    AppStatus,
    AutoscaleStatus,
    CommandError,
    CommandReply,
    CommandRequest,
    Desired,
    DesiredWorkload,
    Endpoint,
    FleetSummary,
    KeyEndorsement,
    OrchestratorStatus,
    ReplicaStatus,
    ServiceEndpoints,
    Unplaced,
)
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.ids import validate_id
from edgefleet_protocol.logs import LogsChunk, LogsRequest
from edgefleet_protocol.node_messages import (
    Capabilities,
    Event,
    NetworkInfo,
    NodeStatus,
    Reported,
    ServiceProxy,
    Telemetry,
    WorkloadReport,
    WorkloadUsage,
)
from edgefleet_protocol.rollout import (
    RolledBack,
    RolloutCounts,
    RolloutGuard,
    RolloutStatus,
)
from edgefleet_protocol.topics import DEFAULT_ROOT, RULES, ParsedTopic, TopicKind, Topics
from edgefleet_protocol.workload import (
    AutoResources,
    HealthCheck,
    Port,
    Resources,
    ServiceBinding,
    WorkloadSpec,
    host_ports,
    identity_hash,
    spec_hash,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_ROOT",
    "MAX_PAYLOAD_BYTES",
    "PROTOCOL_VERSION",
    "RULES",
    "AppStatus",
    "AutoResources",
    "AutoscaleStatus",
    "Capabilities",
    "CommandError",
    "CommandReply",
    "CommandRequest",
    "ComplianceReport",
    "Desired",
    "DesiredWorkload",
    "Endpoint",
    "Event",
    "FleetSummary",
    "HealthCheck",
    "KeyEndorsement",
    "LogsChunk",
    "LogsRequest",
    "NetworkInfo",
    "NodeStatus",
    "OrchestratorStatus",
    "ParsedTopic",
    "Port",
    "ProtocolError",
    "ReplicaStatus",
    "Reported",
    "Resources",
    "RolledBack",
    "RolloutCounts",
    "RolloutGuard",
    "RolloutStatus",
    "ServiceBinding",
    "ServiceEndpoints",
    "ServiceProxy",
    "Telemetry",
    "TopicKind",
    "Topics",
    "Unplaced",
    "WorkloadReport",
    "WorkloadSpec",
    "WorkloadUsage",
    "__version__",
    "decode",
    "decode_for_kind",
    "encode",
    "host_ports",
    "identity_hash",
    "spec_hash",
    "validate",
    "validate_id",
]
