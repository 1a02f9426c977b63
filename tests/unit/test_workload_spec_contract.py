"""The workload spec as docs/protocol.md ("Node desired state", WorkloadSpec and Workload
options) and the manifest docs describe it: what each runtime needs, the words each field
takes, the documented defaults and limits, which host ports a replica holds, and the
spec hash a reader can recompute from the doc's recipe.

Why: an agent and the orchestrator both read this spec; a default or a refusal that drifts
changes what runs on every gateway, or restarts every workload (the hash). Mutation testing
showed none of these pinned (mutate/results/2026-12-06-notes-s3-mut-models.md).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from edgefleet_protocol import ProtocolError, WorkloadSpec, host_ports, identity_hash, spec_hash
from edgefleet_protocol.codec import validate
from edgefleet_protocol.workload import Resources

NEEDS = {
    "docker": {"runtime": "docker", "image": "eclipse-mosquitto:2.0.18"},
    "process": {"runtime": "process", "command": ["/bin/true"]},
    "simulated": {"runtime": "simulated"},
}


def spec(**fields: Any) -> WorkloadSpec:
    return validate(WorkloadSpec, {**NEEDS["process"], **fields})


def refusal(data: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(ProtocolError) as caught:
        validate(WorkloadSpec, data)
    return caught.value.field, caught.value.reason


# ids: a bare "docker" keyword would count the case in the docker tier (tests/conftest.py).
@pytest.mark.parametrize("runtime", sorted(NEEDS), ids=lambda r: f"runtime-{r}")
def test_each_runtime_runs_with_what_it_needs(runtime: str) -> None:
    assert validate(WorkloadSpec, NEEDS[runtime]).runtime == runtime


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({"runtime": "docker"}, "runtime docker needs an image"),
        ({"runtime": "docker", "image": None}, "runtime docker needs an image"),
        ({"runtime": "process"}, "runtime process needs a command (argv list)"),
        ({"runtime": "process", "command": []}, "runtime process needs a command (argv list)"),
        ({"runtime": "simulated", "command": []}, "command must not be an empty list"),
        ({"runtime": "docker", "image": "x", "command": []}, "command must not be an empty list"),
    ],
)
def test_a_runtime_without_what_it_needs_is_refused_in_words(
    data: dict[str, Any], reason: str
) -> None:
    assert refusal(data) == ("payload", reason)


def test_a_runtime_outside_the_three_and_an_empty_image_are_refused_by_field() -> None:
    assert refusal({"runtime": "podman", "image": "x"})[0] == "runtime"
    assert refusal({"runtime": "docker", "image": ""})[0] == "image"
    assert refusal({"runtime": "docker", "image": "x" * 513})[0] == "image"
    assert validate(WorkloadSpec, {"runtime": "docker", "image": "x" * 512}).image == "x" * 512


DOCKER_ONLY = {
    "volumes": [{"source": "data", "target": "/data"}],
    "devices": [{"host": "/dev/ttyUSB0"}],
    "host_network": True,
    "cap_add": ["NET_ADMIN"],
    "privileged": True,
}


@pytest.mark.parametrize("name", sorted(DOCKER_ONLY))
@pytest.mark.parametrize("runtime", ["process", "simulated"])
def test_each_docker_only_option_is_refused_for_another_runtime(runtime: str, name: str) -> None:
    data = {**NEEDS[runtime], name: DOCKER_ONLY[name]}
    assert refusal(data) == ("payload", f"{name}: only for runtime docker")
    assert getattr(validate(WorkloadSpec, {**NEEDS["docker"], name: DOCKER_ONLY[name]}), name)


def test_every_docker_only_option_is_named_at_once_in_the_documented_order() -> None:
    _, reason = refusal({**NEEDS["process"], **DOCKER_ONLY})
    assert reason == "volumes, devices, host_network, cap_add, privileged: only for runtime docker"


def test_the_documented_defaults_of_a_spec() -> None:
    bare = validate(WorkloadSpec, NEEDS["process"])
    assert (bare.resources.cpu, bare.resources.memory_mb, bare.resources.auto) == (0.1, 64, None)
    assert (bare.restart, bare.host_network, bare.privileged) == ("always", False, False)
    assert (bare.env, bare.ports, bare.uses, bare.secrets) == ({}, [], [], [])
    assert (bare.health, bare.service, bare.user, bare.data_class, bare.cwd) == (None,) * 5
    port = spec(ports=[{"container": 80}]).ports[0]
    assert (port.host, port.protocol, port.host_ip) == (None, "tcp", "0.0.0.0")


@pytest.mark.parametrize("word", ["always", "on-failure", "never"])
def test_each_restart_word_is_taken(word: str) -> None:
    assert spec(restart=word).restart == word


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [("cpu", 0.001, 1024), ("memory_mb", 1, 4_194_304)],
)
def test_resources_take_the_documented_range_and_nothing_beyond(
    field: str, low: float, high: float
) -> None:
    for ok in (low, high):
        assert getattr(spec(resources={field: ok}).resources, field) == ok
    for bad in (0, high + 1):
        assert refusal({**NEEDS["process"], "resources": {field: bad}})[0] == f"resources.{field}"


@pytest.mark.parametrize(
    ("where", "value"),
    [("container", 0), ("container", 65536), ("host", 0), ("host", 65536), ("protocol", "sctp")],
)
def test_a_port_outside_1_to_65535_or_a_third_protocol_is_refused(where: str, value: Any) -> None:
    port = {"container": 80, where: value}
    assert refusal({**NEEDS["docker"], "ports": [port]})[0] == f"ports.0.{where}"


def test_both_ends_of_the_port_range_and_both_protocols_are_taken() -> None:
    ports = [
        {"container": 1, "host": 65535, "protocol": "udp"},
        {"container": 65535, "host": 1, "protocol": "tcp"},
    ]
    taken = validate(WorkloadSpec, {**NEEDS["docker"], "ports": ports}).ports
    assert [(p.container, p.host, p.protocol) for p in taken] == [
        (1, 65535, "udp"),
        (65535, 1, "tcp"),
    ]


@pytest.mark.parametrize(
    ("kind", "needs"), [("http", "port"), ("tcp", "port"), ("exec", "command")]
)
def test_a_health_check_without_what_its_kind_needs_is_refused(kind: str, needs: str) -> None:
    field, reason = refusal({**NEEDS["process"], "health": {"kind": kind}})
    article = "an" if kind == "exec" else "a"
    assert (field, reason) == ("health", f"{article} {kind} health check needs a {needs}")
    given = {"port": 8080} if needs == "port" else {"command": ["/bin/check"]}
    assert spec(health={"kind": kind, **given}).health is not None


def test_a_docker_health_check_needs_nothing_and_every_probe_has_its_defaults() -> None:
    check = spec(health={"kind": "docker"}).health
    assert check is not None
    assert (check.port, check.path, check.host, check.command) == (None, "/", "127.0.0.1", None)
    timing = (check.interval_s, check.timeout_s, check.failure_threshold, check.start_period_s)
    assert timing == (10.0, 2.0, 3, 0.0)
    assert refusal({**NEEDS["process"], "health": {"kind": "grpc"}})[0] == "health.kind"


# host_ports: "two replicas needing one host port never share a node" (examples/README).
def test_a_docker_replica_holds_its_published_tcp_host_ports_only() -> None:
    ports = [
        {"container": 80, "host": 8080},
        {"container": 53, "host": 5353, "protocol": "udp"},
        {"container": 9000},
    ]
    service = {"name": "web", "ports": {"http": 80}}
    docker = validate(WorkloadSpec, {**NEEDS["docker"], "ports": ports, "service": service})
    assert host_ports(docker) == frozenset({8080})


@pytest.mark.parametrize("runtime", ["process", "simulated"])
def test_a_replica_of_another_runtime_holds_its_service_ports(runtime: str) -> None:
    service = {"name": "web", "ports": {"http": 8080, "admin": 9090}}
    held = validate(WorkloadSpec, {**NEEDS[runtime], "service": service})
    assert host_ports(held) == frozenset({8080, 9090})
    assert host_ports(validate(WorkloadSpec, NEEDS[runtime])) == frozenset()


@pytest.mark.parametrize("port", [0, 65536])
def test_a_service_port_outside_1_to_65535_is_refused_naming_it(port: int) -> None:
    field, reason = refusal(
        {**NEEDS["process"], "service": {"name": "web", "ports": {"http": port}}}
    )
    assert (field, reason) == ("service.ports", f"port http: {port} is outside 1..65535")
    for edge in (1, 65535):
        assert spec(service={"name": "web", "ports": {"http": edge}}).service is not None


# spec_hash: "SHA-256 over the canonical JSON of the spec (sorted keys, no whitespace) with
# default-valued fields left out", `sha256:` + 16 hex digits; `sealed` is left out.
def documented_hash(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def test_the_spec_hash_follows_the_documented_recipe() -> None:
    data = {"runtime": "docker", "image": "mosquitto", "env": {"TZ": "Europe/Zürich"}}
    assert spec_hash(validate(WorkloadSpec, data)) == documented_hash(data)
    spelled_out = {"restart": "always", "resources": {"cpu": 0.1, "memory_mb": 64}, **data}
    assert spec_hash(validate(WorkloadSpec, spelled_out)) == documented_hash(data)


def test_a_sealed_box_is_left_out_of_the_hash_but_the_secret_is_not() -> None:
    named = {**NEEDS["process"], "secrets": [{"name": "db-password", "env": "DB_PASSWORD"}]}
    boxed = {**named, "secrets": [{**named["secrets"][0], "sealed": "Ym94"}]}
    assert spec_hash(validate(WorkloadSpec, boxed)) == documented_hash(named)
    assert spec_hash(validate(WorkloadSpec, named)) != spec_hash(
        validate(WorkloadSpec, NEEDS["process"])
    )


def test_a_change_only_in_resources_keeps_the_identity_hash() -> None:
    small = spec(resources={"cpu": 0.5, "memory_mb": 128})
    large = spec(resources={"cpu": 1, "memory_mb": 256})
    assert spec_hash(small) != spec_hash(large)
    assert identity_hash(small) == identity_hash(large) == documented_hash(NEEDS["process"])
    assert identity_hash(spec(env={"A": "1"})) != identity_hash(small)


def test_fixed_resources_are_what_an_agent_is_given() -> None:
    auto = {"cpu": 0.5, "memory_mb": 128, "auto": {"min_cpu": 0.25, "max_cpu": 2}}
    sized = validate(Resources, auto)
    assert sized.fixed() == Resources(cpu=0.5, memory_mb=128)
    plain = Resources(cpu=0.5, memory_mb=128)
    assert plain.fixed() is plain


@pytest.mark.parametrize(
    ("auto", "reason"),
    [
        ({"min_cpu": 1}, "max_cpu is required with min_cpu"),
        ({"max_memory_mb": 256}, "min_memory_mb is required with max_memory_mb"),
        ({"min_cpu": 2, "max_cpu": 1}, "min_cpu 2 is above max_cpu 1"),
        (
            {"min_memory_mb": 512, "max_memory_mb": 256},
            "min_memory_mb 512 is above max_memory_mb 256",
        ),
        (
            {},
            "needs min_cpu/max_cpu, min_memory_mb/max_memory_mb or both"
            " (leave auto out for fixed limits)",
        ),
    ],
)
def test_auto_bounds_come_in_pairs_low_to_high(auto: dict[str, Any], reason: str) -> None:
    assert refusal({**NEEDS["process"], "resources": {"auto": auto}}) == ("resources.auto", reason)


@pytest.mark.parametrize(
    ("resources", "reason"),
    [
        ({"cpu": 4, "auto": {"min_cpu": 0.5, "max_cpu": 2}}, "cpu 4 is outside auto bounds 0.5..2"),
        ({"memory_mb": 64, "auto": {"min_memory_mb": 128, "max_memory_mb": 256}},
         "memory_mb 64 is outside auto bounds 128..256"),
    ],
)  # fmt: skip
def test_where_new_replicas_start_must_lie_within_the_auto_bounds(
    resources: dict[str, Any], reason: str
) -> None:
    assert refusal({**NEEDS["process"], "resources": resources}) == ("resources", reason)


def test_the_auto_bounds_themselves_are_where_a_replica_may_start() -> None:
    both = {"min_cpu": 0.5, "max_cpu": 2, "min_memory_mb": 128, "max_memory_mb": 256}
    for cpu, memory in ((0.5, 128), (2, 256)):
        sized = spec(resources={"cpu": cpu, "memory_mb": memory, "auto": both}).resources
        assert sized.auto is not None and sized.auto.sizes_cpu and sized.auto.sizes_memory
    only_memory = {"min_memory_mb": 64, "max_memory_mb": 64}
    auto = spec(resources={"auto": only_memory}).resources.auto
    assert auto is not None and (auto.sizes_cpu, auto.sizes_memory) == (False, True)


# docs/protocol.md, "WorkloadSpec limits": both ends taken, one step beyond refused by name.
# (path, lowest, lowest excluded, highest, whole numbers only)
LIMITS = [
    ("resources.cpu", 0, True, 1024, False),
    ("resources.memory_mb", 0, True, 4_194_304, True),
    ("health.port", 1, False, 65535, True),
    ("health.interval_s", 0, True, 3600, False),
    ("health.timeout_s", 0, True, 600, False),
    ("health.failure_threshold", 1, False, 100, True),
    ("health.start_period_s", 0, False, 3600, False),
    ("stop_timeout_s", 0, False, 600, False),
]


def at(path: str, value: Any) -> dict[str, Any]:
    data: dict[str, Any] = {**NEEDS["process"], "health": {"kind": "tcp", "port": 8080}}
    *parents, leaf = path.split(".")
    node = data
    for key in parents:
        node[key] = dict(node.get(key, {}))
        node = node[key]
    node[leaf] = value
    return data


@pytest.mark.parametrize("limit", LIMITS, ids=[row[0] for row in LIMITS])
def test_each_spec_number_takes_the_ends_of_its_documented_range_and_nothing_beyond(
    limit: tuple[str, float, bool, float, bool],
) -> None:
    path, low, excluded, high, whole = limit
    step = 1 if whole else 0.5
    lowest = low + step if excluded else low
    for ok in (lowest, high):
        validate(WorkloadSpec, at(path, ok))
    for bad in (lowest - step, high + 1):
        assert refusal(at(path, bad))[0] == path
    if whole:
        assert refusal(at(path, lowest + 0.5))[0] == path


@pytest.mark.parametrize(
    ("low", "high", "start", "cpu"),
    [("min_cpu", "max_cpu", "cpu", True), ("min_memory_mb", "max_memory_mb", "memory_mb", False)],
)
def test_auto_bounds_take_the_ends_of_the_documented_range_and_nothing_beyond(
    low: str, high: str, start: str, cpu: bool
) -> None:
    least, most = (0.001, 1024) if cpu else (1, 4_194_304)
    for value in (least, most):
        sized = spec(resources={start: value, "auto": {low: value, high: value}}).resources
        assert (
            sized.auto is not None
            and getattr(sized.auto, low) == getattr(sized.auto, high) == value
        )
    for value, name in ((0, low), (most + 1, high)):
        bounds = {low: value if name == low else least, high: value if name == high else most}
        assert (
            refusal({**NEEDS["process"], "resources": {"auto": bounds}})[0]
            == f"resources.auto.{name}"
        )


LISTS = {
    "uses": lambda n: f"svc-{n}",
    "volumes": lambda n: {"source": f"data-{n}", "target": f"/data/{n}"},
    "devices": lambda n: {"host": f"/dev/ttyUSB{n}"},
    "cap_add": lambda n: "NET_ADMIN",
    "secrets": lambda n: {"name": f"secret-{n}", "env": f"SECRET_{n}"},
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_each_list_of_a_spec_holds_at_most_64_entries(name: str) -> None:
    entries = [LISTS[name](n) for n in range(65)]
    assert len(getattr(validate(WorkloadSpec, {**NEEDS["docker"], name: entries[:64]}), name)) == 64
    assert refusal({**NEEDS["docker"], name: entries})[0] == name


def test_a_service_without_ports_holds_none_and_reads_as_an_empty_object() -> None:
    held = spec(service={"name": "broker", "mqtt_group": "ingest"})
    assert held.service is not None and held.service.ports == {}
    assert host_ports(held) == frozenset()
