"""Device-profile rules, pure: what each field of a profile means and allows (docs/operations.md,
Device profiles), every bound at its edge and just past it with the field named, the words
of each refusal, and how a profiles directory is read (which files count, duplicates, one
bad file not hiding the others)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from edgefleet_protocol import ProtocolError
from edgefleet_protocol.codec import validate
from edgefleet_protocol.profiles import (
    Profile,
    ProfileError,
    check_profiles,
    load_profile,
    load_profiles,
)

BASE: dict[str, Any] = {
    "id": "gw-class",
    "vendor": "Acme",
    "model": "Box 1",
    "arch": "armv7l",
    "cpu": {"cores": 4, "model": "Cortex-A7", "max_mhz": 717},
    "memory_mb": 256,
    "storage_mb": 256,
    "link": {"type": "lte", "bandwidth_mbps": 300, "latency_ms": {"min": 20, "max": 80}},
    "runtimes": ["process"],
    "source": "https://example.com/box-1",
}


def profile(**changes: Any) -> dict[str, Any]:
    """BASE with dotted keys set (``cpu.cores=2``); a value of ``...`` deletes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = data
        for key in parents:
            node = node[key]
        if value is ...:
            del node[leaf]
        else:
            node[leaf] = value
    return data


def accepted(**changes: Any) -> Profile:
    return validate(Profile, profile(**changes), forbid_unknown=True)


def refusal(**changes: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        accepted(**changes)
    return caught.value


# -- what a profile may say -----------------------------------------------------------------


@pytest.mark.parametrize("arch", ["aarch64", "x86_64", "armv7l", "armv6l"])
def test_every_documented_architecture_is_accepted(arch: str) -> None:
    assert accepted(arch=arch).arch == arch


@pytest.mark.parametrize("link", ["ethernet", "wifi", "lte", "5g"])
def test_every_documented_link_type_is_accepted(link: str) -> None:
    assert accepted(link__type=link).link.type == link


@pytest.mark.parametrize(
    ("field", "edges", "past"),
    [
        ("cpu__cores", (1, 1024), (0, 1025)),
        ("cpu__threads", (4, 4096), (0, 4097)),
        ("cpu__max_mhz", (1, 10_000), (0, 10_001)),
        ("link__latency_ms__max", (20, 60_000), (60_000.5,)),
        ("link__bandwidth_mbps", (0.1, 1_000_000), (0, 1_000_000.5)),
        ("memory_mb", (1, 4_194_304), (0, 4_194_305)),
        ("storage_mb", (0, 1_073_741_824), (-1, 1_073_741_825)),
    ],
)
def test_numeric_bounds_at_their_edges_and_just_past(
    field: str, edges: tuple[float, ...], past: tuple[float, ...]
) -> None:
    dotted = field.replace("__", ".")
    for value in edges:
        got: Any = accepted(**{field: value})
        for key in field.split("__"):
            got = getattr(got, key)
        assert got == value
    for value in past:
        assert refusal(**{field: value}).field == dotted


def test_latency_min_spans_zero_to_a_minute() -> None:
    assert accepted(link__latency_ms__min=0).link.latency_ms.min == 0
    zero = accepted(link__latency_ms__min=0, link__latency_ms__max=0).link.latency_ms
    assert (zero.min, zero.max) == (0, 0)
    both = accepted(link__latency_ms__min=60_000, link__latency_ms__max=60_000)
    assert both.link.latency_ms.min == both.link.latency_ms.max == 60_000
    assert refusal(link__latency_ms__min=-0.5).field == "link.latency_ms.min"
    too_far = refusal(link__latency_ms__min=60_000.5, link__latency_ms__max=60_000)
    assert too_far.field == "link.latency_ms.min"
    assert refusal(link__latency_ms__max=-0.5).field == "link.latency_ms.max"


@pytest.mark.parametrize(
    ("field", "shortest", "longest"),
    [("vendor", 1, 64), ("model", 1, 128), ("cpu__model", 1, 128), ("source", None, 512)],
)
def test_text_lengths_at_their_edges_and_just_past(
    field: str, shortest: int | None, longest: int
) -> None:
    dotted = field.replace("__", ".")
    prefix = "https://e.com/" if field == "source" else ""
    if shortest is not None:
        assert accepted(**{field: "x" * shortest})
        assert refusal(**{field: ""}).field == dotted
    assert accepted(**{field: prefix + "x" * (longest - len(prefix))})
    assert refusal(**{field: prefix + "x" * (longest + 1 - len(prefix))}).field == dotted


@pytest.mark.parametrize(
    "field", ["id", "vendor", "model", "arch", "cpu", "cpu__cores", "cpu__model", "cpu__max_mhz",
              "memory_mb", "storage_mb", "link", "link__bandwidth_mbps", "link__latency_ms",
              "link__latency_ms__min", "link__latency_ms__max", "runtimes", "source"],
)  # fmt: skip
def test_every_required_field_is_required(field: str) -> None:
    error = refusal(**{field: ...})
    assert (error.field, error.reason) == (field.replace("__", "."), "is required")


def test_optional_fields_default_to_nothing_listed() -> None:
    p = accepted()
    assert (p.cpu.threads, p.accelerators, p.sensors, p.labels) == (None, [], [], {})


def test_up_to_32_accelerators_and_64_sensors() -> None:
    assert len(accepted(accelerators=["npu"] * 32).accelerators) == 32
    assert refusal(accelerators=["npu"] * 33).field == "accelerators"
    assert len(accepted(sensors=["gnss"] * 64).sensors) == 64
    assert refusal(sensors=["gnss"] * 65).field == "sensors"


def test_threads_may_equal_cores_but_not_be_fewer() -> None:
    assert accepted(cpu__threads=4).cpu.threads == 4
    assert accepted(cpu__cores=1, cpu__threads=1).cpu.threads == 1
    error = refusal(cpu__threads=3)
    assert (error.field, error.reason) == ("cpu", "threads (3) cannot be fewer than cores (4)")


def test_latency_min_may_equal_max_but_not_exceed_it() -> None:
    assert accepted(link__latency_ms__min=80).link.latency_ms.min == 80
    error = refusal(link__latency_ms__min=81)
    assert (error.field, error.reason) == (
        "link.latency_ms",
        "min (81.0) must not exceed max (80.0)",
    )


def test_label_keys_and_values_are_refused_in_full_words() -> None:
    assert accepted(labels={"dual-sim": "v" * 63}).labels == {"dual-sim": "v" * 63}
    key = refusal(labels={"Dual SIM": "true"})
    assert (key.field, key.reason) == ("labels", "label key 'Dual SIM': 1-63 characters of a-z, "
            "0-9, '.', '_', '/', '-', starting and ending with a letter or digit")  # fmt: skip
    value = refusal(labels={"dual-sim": "v" * 64})
    assert (value.field, value.reason) == (
        "labels",
        "label 'dual-sim': value longer than 63 characters",
    )


def test_the_source_is_an_http_or_https_page() -> None:
    assert accepted(source="http://example.com/spec").source == "http://example.com/spec"
    for bad in ("h", "ftp://example.com/spec", "https://example.com/a spec"):
        error = refusal(source=bad)
        assert (error.field, error.reason) == (
            "source", "must be the http(s) URL of the published specification",
        )  # fmt: skip


def test_a_runtime_listed_twice_is_refused() -> None:
    assert accepted(runtimes=["docker", "process"]).runtimes == ["docker", "process"]
    error = refusal(runtimes=["process", "process"])
    assert (error.field, error.reason) == ("runtimes", "lists a runtime more than once")


# -- profile files --------------------------------------------------------------------------


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def refused_file(path: Path) -> ProfileError:
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    error = caught.value
    assert error.file == path
    assert str(error) == error.args[0] == f"{path}: {error.field}: {error.reason}"
    return error


def test_a_profile_file_is_at_most_64_KiB(tmp_path: Path) -> None:
    path = write(tmp_path / "gw-class.yaml", BASE)
    text = path.read_text()
    limit = 64 * 1024
    path.write_text(text + "#" * (limit - len(text) - 1) + "\n")
    assert len(path.read_bytes()) == limit
    assert load_profile(path).id == "gw-class"
    path.write_text(text + "#" * (limit - len(text)) + "\n")
    error = refused_file(path)
    assert (error.field, error.reason) == ("file", f"{limit + 1} bytes exceeds {limit}")


def test_an_unreadable_file_says_why(tmp_path: Path) -> None:
    error = refused_file(tmp_path / "gone.yaml")
    assert (error.field, error.reason) == ("file", "cannot be read (No such file or directory)")


def test_invalid_yaml_names_the_line_of_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "gw-class.yaml"
    path.write_text("id: gw-class\nvendor: Acme\nmodel: Box: 1\narch: armv7l\n")
    error = refused_file(path)
    assert (error.field, error.reason) == ("file", "is not valid YAML (line 3)")


def test_bytes_that_are_not_text_are_invalid_yaml_without_a_line(tmp_path: Path) -> None:
    path = tmp_path / "gw-class.yaml"
    path.write_bytes(b"id: gw-class\nvendor: \xff\xfe\n")
    error = refused_file(path)
    assert (error.field, error.reason) == ("file", "is not valid YAML")


def test_a_file_must_hold_a_mapping(tmp_path: Path) -> None:
    error = refused_file(write(tmp_path / "gw-class.yaml", ["id", "gw-class"]))
    assert (error.field, error.reason) == ("file", "must hold a mapping, got list")


def test_the_id_must_be_the_file_name(tmp_path: Path) -> None:
    error = refused_file(write(tmp_path / "other-name.yaml", BASE))
    assert (error.field, error.reason) == ("id", "'gw-class' must match the file name 'other-name'")


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profiles(tmp_path / "nope")
    error = caught.value
    assert (error.file, error.field, error.reason) == (
        tmp_path / "nope", "directory", "does not exist or is not a directory",
    )  # fmt: skip


def test_only_yaml_files_of_the_directory_are_profiles(tmp_path: Path) -> None:
    write(tmp_path / "gw-class.yaml", BASE)
    write(tmp_path / "gw-small.yml", {**BASE, "id": "gw-small"})
    (tmp_path / "README.md").write_text("# notes, not a profile\n")
    (tmp_path / "old.yaml").mkdir()
    assert sorted(load_profiles(tmp_path)) == ["gw-class", "gw-small"]


def test_one_bad_file_does_not_hide_the_files_after_it(tmp_path: Path) -> None:
    (tmp_path / "a-broken.yaml").write_text("id: [\n")
    write(tmp_path / "gw-class.yaml", BASE)
    write(tmp_path / "gw-small.yaml", {**BASE, "id": "gw-small"})
    checks = check_profiles(tmp_path)
    assert [c.path.name for c in checks] == ["a-broken.yaml", "gw-class.yaml", "gw-small.yaml"]
    assert [c.error is None for c in checks] == [False, True, True]
    assert [c.profile.id for c in checks if c.profile] == ["gw-class", "gw-small"]


def test_a_duplicate_id_names_the_file_that_defined_it_first(tmp_path: Path) -> None:
    first = write(tmp_path / "gw-class.yaml", BASE)
    second = write(tmp_path / "gw-class.yml", BASE)
    _, duplicate = check_profiles(tmp_path)
    assert duplicate.error is not None and duplicate.profile is None
    assert (duplicate.error.file, duplicate.error.field, duplicate.error.reason) == (
        second, "id", f"'gw-class' is already defined in {first}",
    )  # fmt: skip
