"""App manifests: the examples load, and every bad manifest is refused naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from edgefleet_protocol import ProtocolError, validate
from edgefleet_protocol.manifest import (
    AppManifest,
    ManifestError,
    load_manifest,
    load_manifests,
    replica_index,
    replica_name,
    with_replicas,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

GOOD: dict[str, Any] = {
    "name": "web",
    "replicas": 2,
    "workload": {"runtime": "process", "command": ["sleep", "infinity"]},
}


def with_changes(**changes: Any) -> dict[str, Any]:
    """GOOD with top-level keys replaced (None removes the key)."""
    data = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


def placement(**fields: Any) -> dict[str, Any]:
    return with_changes(placement=fields)


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_every_example_manifest_loads_as_it_is(path: Path) -> None:
    manifest = load_manifest(path.read_text(), source=str(path))
    assert manifest.name == path.stem


def test_the_examples_cover_what_the_readme_promises() -> None:
    by_name = {m.name: m for m in load_manifests(EXAMPLES)}
    assert set(by_name) == {
        "video-analytics",
        "log-shipper",
        "batch-job",
        "sensor-gateway-eu",
        "sensor-api",
        "sensor-dashboard",
    }
    api, dashboard = by_name["sensor-api"], by_name["sensor-dashboard"]
    assert api.service_name == "sensor-api" and api.service is not None
    assert api.service.topology == "prefer-site"
    assert dashboard.uses == ["sensor-api"] and dashboard.workload.uses == ["sensor-api"]
    video = by_name["video-analytics"]
    assert video.replicas == 3
    assert video.placement.spread == "site"
    assert video.placement.max_latency_ms is not None
    assert (video.placement.max_latency_ms.target, video.placement.max_latency_ms.ms) == (
        "camera-hub",
        50,
    )
    assert video.placement.min_bandwidth_mbps == 10
    assert by_name["log-shipper"].mode == "daemon"
    assert by_name["log-shipper"].replicas is None
    assert by_name["batch-job"].placement.strategy == "binpack"
    eu = by_name["sensor-gateway-eu"]
    assert eu.placement.regions == ["eu"]
    assert eu.placement.selector == {"role": "sensor-gateway"}


def test_process_examples_run_commands_a_plain_linux_box_has() -> None:
    for manifest in load_manifests(EXAMPLES):
        if manifest.workload.runtime == "process":
            assert manifest.workload.command is not None
            assert manifest.workload.command[0] in {"python3", "sh", "tail", "sleep"}
        else:
            assert manifest.workload.runtime == "docker"
            assert manifest.workload.image


def test_json_text_loads_like_yaml_text() -> None:
    assert load_manifest(json.dumps(GOOD)) == load_manifest(yaml.safe_dump(GOOD))


def test_bytes_load_like_text() -> None:
    assert load_manifest(json.dumps(GOOD).encode()) == load_manifest(json.dumps(GOOD))


def test_defaults_are_the_documented_ones() -> None:
    manifest = load_manifest(json.dumps(GOOD))
    assert manifest.mode == "replicated"
    assert manifest.disconnect.grace_s == 30
    assert manifest.disconnect.replace is True
    assert manifest.placement.strategy == "spread"
    assert manifest.placement.max_per_node is None
    assert manifest.placement.effective_spread == "node"


def test_binpack_spreads_nowhere_unless_asked() -> None:
    assert (
        load_manifest(json.dumps(placement(strategy="binpack"))).placement.effective_spread is None
    )
    explicit = load_manifest(json.dumps(placement(strategy="binpack", spread="site")))
    assert explicit.placement.effective_spread == "site"


def test_a_daemon_needs_no_replica_count() -> None:
    manifest = load_manifest(json.dumps(with_changes(mode="daemon", replicas=None)))
    assert manifest.is_daemon
    assert manifest.replicas is None


def test_a_manifest_is_frozen() -> None:
    manifest = load_manifest(json.dumps(GOOD))
    with pytest.raises(ValueError, match="frozen"):
        manifest.replicas = 5  # type: ignore[misc]


def test_validate_with_forbid_unknown_refuses_unknown_fields_like_load_manifest() -> None:
    with pytest.raises(ProtocolError) as caught:
        validate(AppManifest, placement(spred="site"), forbid_unknown=True)
    assert caught.value.field == "placement"
    assert "spred" in caught.value.reason


BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # (why, manifest, field, words the reason must contain)
    ("unknown top-level field", with_changes(replica=3), "replica", "unknown field(s) replica"),
    ("unknown placement field", placement(max_per_nod=1), "placement.max_per_nod", "unknown"),
    (
        "unknown resources field",
        with_changes(
            workload={"runtime": "process", "command": ["x"], "resources": {"memroy_mb": 1}}
        ),
        "workload.resources.memroy_mb",
        "allowed: auto, cpu, memory_mb",
    ),
    ("bad app id", with_changes(name="Web_1"), "name", "not a valid id"),
    ("empty app id", with_changes(name=""), "name", "must not be empty"),
    ("missing name", with_changes(name=None), "name", "is required"),
    ("missing workload", with_changes(workload=None), "workload", "is required"),
    (
        "unknown runtime",
        with_changes(workload={"runtime": "podman", "command": ["x"]}),
        "workload.runtime",
        "'docker', 'process' or 'simulated'",
    ),
    (
        "process without command",
        with_changes(workload={"runtime": "process"}),
        "workload",
        "needs a command",
    ),
    ("max_per_node zero", placement(max_per_node=0), "placement.max_per_node", "at least 1"),
    ("max_per_node negative", placement(max_per_node=-2), "placement.max_per_node", "at least 1"),
    (
        "replicas with daemon",
        with_changes(mode="daemon"),
        "replicas",
        "must be left out with mode: daemon",
    ),
    (
        "replicated without replicas",
        with_changes(replicas=None),
        "replicas",
        "is required with mode: replicated",
    ),
    ("negative replicas", with_changes(replicas=-1), "replicas", "greater than or equal to 0"),
    ("unknown mode", with_changes(mode="singleton"), "mode", "'replicated' or 'daemon'"),
    (
        "negative grace",
        with_changes(disconnect={"grace_s": -1}),
        "disconnect.grace_s",
        "greater than or equal to 0",
    ),
    (
        "negative bandwidth",
        placement(min_bandwidth_mbps=-5),
        "placement.min_bandwidth_mbps",
        "greater than or equal to 0",
    ),
    (
        "negative latency limit",
        placement(max_latency_ms={"target": "hub", "ms": -1}),
        "placement.max_latency_ms.ms",
        "greater than 0",
    ),
    (
        "latency limit without target",
        placement(max_latency_ms={"ms": 50}),
        "placement.max_latency_ms.target",
        "is required",
    ),
    ("unknown spread", placement(spread="rack"), "placement.spread", "'node' or 'site'"),
    ("unknown strategy", placement(strategy="random"), "placement.strategy", "'spread' or"),
    ("bad site id", placement(sites=["Site A"]), "placement.sites.0", "not a valid id"),
    ("duplicate site", placement(sites=["a", "a"]), "placement.sites", "more than once"),
    ("region with a space", placement(regions=["e u"]), "placement.regions", "region 'e u'"),
    (
        "selector value not a string",
        placement(selector={"zone": 1}),
        "placement.selector.zone",
        "valid string",
    ),
    (
        "label both required and forbidden",
        placement(selector={"zone": "a"}, selector_not={"zone": "a"}),
        "placement.selector_not.zone",
        "both required and forbidden",
    ),
    (
        "name too long for replica names",
        with_changes(name="a" * 62),
        "name",
        "would be 64 characters; at most 63",
    ),
    (
        "name too long for the replica count",
        with_changes(name="a" * 61, replicas=11),
        "name",
        f"{'a' * 61}-10",
    ),
    (
        "daemon name too long for hashed node names",
        with_changes(name="d" * 53, mode="daemon", replicas=None),
        "name",
        "would be 64 characters",
    ),
    ("replicas not a number", with_changes(replicas="three"), "replicas", "valid integer"),
]


@pytest.mark.parametrize(("data", "field", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_a_bad_manifest_is_refused_naming_the_field_and_reason(
    data: dict[str, Any], field: str, words: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_manifest(json.dumps(data))
    assert caught.value.field == field
    assert words in caught.value.reason


TEXT_ERRORS: list[tuple[str, str | bytes, str]] = [
    ("a list", "- a\n- b\n", "must be a mapping, got list"),
    ("a scalar", "hello", "must be a mapping, got str"),
    ("empty text", "  \n", "is empty"),
    ("broken YAML", "name: [unclosed\n", "not valid YAML/JSON"),
    ("YAML aliases", "a: &x 1\nb: *x\n", "aliases"),
    ("not UTF-8", b"\xff\xfe", "not UTF-8"),
    ("a YAML date", "name: web\nsince: 2024-01-01\n", "not JSON"),
    ("too big", "x: " + "a" * (300 * 1024), "larger than"),
]


@pytest.mark.parametrize(
    ("text", "words"), [t[1:] for t in TEXT_ERRORS], ids=[t[0] for t in TEXT_ERRORS]
)
def test_text_that_is_not_a_manifest_mapping_is_refused_naming_the_source(
    text: str | bytes, words: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(text, source="app.yaml")
    assert caught.value.field == "app.yaml"
    assert words in caught.value.reason
    assert str(caught.value).startswith("app.yaml: ")


def test_load_manifests_names_the_file_of_the_first_error(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump(placement(max_per_node=0)))
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert caught.value.source == str(tmp_path / "b.yaml")
    assert caught.value.field == "placement.max_per_node"


def test_load_manifests_refuses_one_app_defined_twice(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "b.json").write_text(json.dumps(GOOD))
    with pytest.raises(ManifestError) as caught:
        load_manifests(tmp_path)
    assert caught.value.field == "name"
    assert "already defined in" in caught.value.reason


def test_load_manifests_reads_one_file_or_skips_other_suffixes(tmp_path: Path) -> None:
    (tmp_path / "web.yml").write_text(yaml.safe_dump(GOOD))
    (tmp_path / "notes.txt").write_text("not a manifest")
    assert [m.name for m in load_manifests(tmp_path)] == ["web"]
    assert [m.name for m in load_manifests(tmp_path / "web.yml")] == ["web"]


def test_load_manifests_refuses_a_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="does not exist"):
        load_manifests(tmp_path / "nope")


REPLICA_NAMES: list[tuple[str, dict[str, Any], str]] = [
    ("replicated", {"index": 0}, "web-0"),
    ("replicated high index", {"index": 42}, "web-42"),
    ("daemon", {"node": "gw-7"}, "web-gw-7"),
]


@pytest.mark.parametrize(
    ("kind", "args", "expected"), REPLICA_NAMES, ids=[r[0] for r in REPLICA_NAMES]
)
def test_replica_names_follow_the_documented_forms(
    kind: str, args: dict[str, Any], expected: str
) -> None:
    assert replica_name("web", **args) == expected


def test_a_daemon_replica_on_a_long_node_name_uses_a_hash_of_the_node() -> None:
    node = "gateway-" + "x" * 55
    name = replica_name("log-shipper", node=node)
    assert len(name) <= 63
    assert name.startswith("log-shipper-")
    suffix = name.removeprefix("log-shipper-")
    assert len(suffix) == 10
    assert all(c in "0123456789abcdef" for c in suffix)
    assert replica_name("log-shipper", node=node) == name
    assert replica_name("log-shipper", node=node[:-1] + "y") != name


def test_replica_name_needs_exactly_one_of_index_and_node() -> None:
    with pytest.raises(TypeError):
        replica_name("web")
    with pytest.raises(TypeError):
        replica_name("web", index=1, node="n")


def test_replica_name_refuses_a_negative_index_and_an_over_long_result() -> None:
    with pytest.raises(ProtocolError, match="index"):
        replica_name("web", index=-1)
    with pytest.raises(ProtocolError, match="at most 63"):
        replica_name("a" * 62, index=10)


INDEXES: list[tuple[str, int | None]] = [
    ("web-0", 0),
    ("web-17", 17),
    ("web-01", None),
    ("web-gw-1", None),
    ("webx-1", None),
    ("web-", None),
    ("web-\u0661", None),  # a non-ASCII digit
]


@pytest.mark.parametrize(("replica", "index"), INDEXES)
def test_replica_index_reads_back_only_canonical_replicated_names(
    replica: str, index: int | None
) -> None:
    assert replica_index("web", replica) == index


def test_scaling_a_manifest_revalidates_it() -> None:
    manifest = load_manifest(json.dumps(GOOD))
    assert with_replicas(manifest, 7).replicas == 7
    assert with_replicas(manifest, 7).workload == manifest.workload
    with pytest.raises(ProtocolError) as negative:
        with_replicas(manifest, -1)
    assert negative.value.field == "replicas"
    long_name = load_manifest(json.dumps(with_changes(name="a" * 61, replicas=10)))
    with pytest.raises(ProtocolError) as too_long:
        with_replicas(long_name, 11)
    assert too_long.value.field == "name"
    daemon = load_manifest(json.dumps(with_changes(mode="daemon", replicas=None)))
    with pytest.raises(ProtocolError, match="must be left out with mode: daemon"):
        with_replicas(daemon, 2)


def test_replica_names_in_words_and_at_their_length_limit() -> None:
    from edgefleet_protocol.manifest.names import longest_replica_name, replica_name

    assert longest_replica_name("web", "replicated", 0) == "web-0"
    assert longest_replica_name("web", "replicated", 12) == "web-11"
    with pytest.raises(TypeError, match=r"^replica_name needs exactly one of index= or node=$"):
        replica_name("web")
    with pytest.raises(ProtocolError) as caught:
        replica_name("web", index=-1)
    assert (caught.value.field, caught.value.reason) == ("index", "must be 0 or more, got -1")
    node = "n" * (63 - len("web-"))
    assert replica_name("web", node=node) == f"web-{node}"  # exactly 63: kept as it is
    with pytest.raises(ProtocolError) as bad:
        replica_name("Web", index=0)
    assert bad.value.field == "replica name"


def test_token_and_label_rules_in_words_and_at_their_limits() -> None:
    from edgefleet_protocol.manifest.rules import (
        MAX_MANIFEST_BYTES,
        check_labels,
        check_tokens,
        field_error,
    )

    rule = "1-63 characters of letters, digits, '.', '_', '/', ':', '-'"
    assert MAX_MANIFEST_BYTES == 256 * 1024
    with pytest.raises(ValueError, match="region") as bad:
        check_tokens(["ok", "no space"], "region")
    assert str(bad.value) == f"region 'no space' is not valid: {rule}"
    with pytest.raises(ValueError, match="once") as twice:
        check_tokens(["a", "a"], "region")
    assert str(twice.value) == "lists a region more than once"
    assert check_labels({"zone": "v" * 63}) == {"zone": "v" * 63}
    with pytest.raises(ValueError, match="zone") as long:
        check_labels({"zone": "v" * 64})
    assert str(long.value) == "label 'zone': value longer than 63 characters"
    with pytest.raises(ValueError, match="label key") as key:
        check_labels({"-x": "v"})
    assert str(key.value) == f"label key '-x' is not valid: {rule}"
    error = field_error("AppManifest", ("replicas",), "is too many", 7)
    assert error.errors()[0]["type"] == "manifest_rule"
    assert error.errors()[0]["loc"] == ("replicas",)
