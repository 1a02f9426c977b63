"""Device profiles: the shipped ones validate, broken ones are refused with file and field,
and the `edgefleet profiles` CLI reports both with the right exit code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from edgefleet_cli.commands.profiles import app
from edgefleet_protocol.profiles import (
    ProfileError,
    check_profiles,
    load_profile,
    load_profiles,
)
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "device-profiles"
runner = CliRunner()

REQUIRED_CLASSES = {
    "raspberry-pi-4b-4gb",
    "raspberry-pi-zero-2w",
    "jetson-orin-nano-8gb",
    "siemens-iot2050-advanced",
    "intel-nuc13-pro-i5",
}


@pytest.fixture
def profiles_copy(tmp_path: Path) -> Path:
    target = tmp_path / "profiles"
    shutil.copytree(PROFILES, target)
    return target


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_every_shipped_profile_validates() -> None:
    profiles = load_profiles(PROFILES)
    assert len(profiles) >= 6
    assert set(profiles) >= REQUIRED_CLASSES


@pytest.mark.parametrize("path", sorted(PROFILES.glob("*.yaml")), ids=lambda p: p.stem)
def test_each_profile_cites_a_spec_page_and_names_itself_after_its_file(path: Path) -> None:
    profile = load_profile(path)
    assert profile.id == path.stem
    assert profile.source.startswith("https://")
    assert profile.cpu.cores >= 1
    assert profile.memory_mb > 0
    assert profile.link.latency_ms.min <= profile.link.latency_ms.max


def test_published_figures_are_the_ones_in_the_profiles() -> None:
    # A handful of spec-sheet facts, so an accidental edit to a profile is noticed.
    p = load_profiles(PROFILES)
    assert (p["raspberry-pi-4b-4gb"].cpu.cores, p["raspberry-pi-4b-4gb"].memory_mb) == (4, 4096)
    assert (p["raspberry-pi-zero-2w"].memory_mb, p["raspberry-pi-zero-2w"].link.type) == (
        512,
        "wifi",
    )
    assert (p["jetson-orin-nano-8gb"].cpu.cores, p["jetson-orin-nano-8gb"].memory_mb) == (6, 8192)
    assert (p["siemens-iot2050-advanced"].cpu.max_mhz, p["siemens-iot2050-advanced"].memory_mb) == (
        1100,
        2048,
    )
    assert (p["intel-nuc13-pro-i5"].cpu.cores, p["intel-nuc13-pro-i5"].cpu.threads) == (12, 16)
    assert p["intel-nuc13-pro-i5"].arch == "x86_64"


BROKEN = [
    # (file, old text, new text, expected field path)
    ("raspberry-pi-4b-4gb.yaml", "memory_mb: 4096", "memory_mb: -1", "memory_mb"),
    ("raspberry-pi-4b-4gb.yaml", "memory_mb: 4096", "memroy_mb: 4096", "profile"),
    ("raspberry-pi-5-8gb.yaml", "max_mhz: 2400", "max_mhz: fast", "cpu.max_mhz"),
    ("raspberry-pi-5-8gb.yaml", "  cores: 4\n", "  cores: 4\n  coers: 4\n", "cpu"),
    ("teltonika-rutx11.yaml", "type: lte", "type: satellite", "link.type"),
    ("teltonika-rutx11.yaml", "{min: 20, max: 80}", "{min: 80, max: 20}", "link.latency_ms"),
    ("intel-nuc13-pro-i5.yaml", "arch: x86_64", "arch: sparc", "arch"),
    ("intel-nuc13-pro-i5.yaml", "runtimes: [docker, process]", "runtimes: []", "runtimes"),
    ("jetson-orin-nano-8gb.yaml", "source: https://", "source: ftp://", "source"),
    ("jetson-orin-nano-8gb.yaml", "id: jetson-orin-nano-8gb", "id: jetson-orin", "id"),
    ("siemens-iot2050-advanced.yaml", "  din-rail:", "  Din Rail:", "labels"),
    ("siemens-iot2050-advanced.yaml", "vendor: Siemens", "vendor: [Siemens", "file"),
]


@pytest.mark.parametrize(("name", "old", "new", "field"), BROKEN)
def test_a_broken_profile_is_refused_with_its_file_and_field(
    profiles_copy: Path, name: str, old: str, new: str, field: str
) -> None:
    path = profiles_copy / name
    replace_in(path, old, new)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    assert info.value.file == path
    assert info.value.field == field
    assert str(info.value).startswith(f"{path}: {field}: ")


def test_a_typo_is_named_in_the_reason(profiles_copy: Path) -> None:
    path = profiles_copy / "raspberry-pi-4b-4gb.yaml"
    replace_in(path, "memory_mb: 4096", "memroy_mb: 4096")
    with pytest.raises(ProfileError, match="memroy_mb"):
        load_profile(path)


def test_duplicate_ids_are_refused(profiles_copy: Path) -> None:
    shutil.copy(profiles_copy / "teltonika-rutx11.yaml", profiles_copy / "teltonika-rutx11.yml")
    checks = {c.path.name: c for c in check_profiles(profiles_copy)}
    assert checks["teltonika-rutx11.yaml"].error is None
    duplicate = checks["teltonika-rutx11.yml"].error
    assert duplicate is not None
    assert duplicate.field == "id"
    assert "already defined" in duplicate.reason
    with pytest.raises(ProfileError, match="already defined"):
        load_profiles(profiles_copy)


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="does not exist"):
        load_profiles(tmp_path / "nope")


# -- the CLI ----------------------------------------------------------------------------------


def test_validate_exits_zero_with_one_ok_line_per_shipped_profile() -> None:
    result = runner.invoke(app, ["validate", str(PROFILES)])
    assert result.exit_code == 0, result.output
    ok_lines = [line for line in result.stdout.splitlines() if line.startswith("OK ")]
    assert len(ok_lines) == len(list(PROFILES.glob("*.yaml")))


def test_validate_exits_one_and_prints_file_field_and_reason(profiles_copy: Path) -> None:
    broken = profiles_copy / "raspberry-pi-5-8gb.yaml"
    replace_in(broken, "max_mhz: 2400", "max_mhz: 0")
    result = runner.invoke(app, ["validate", str(profiles_copy)])
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"{broken}: cpu.max_mhz: Input should be greater than 0" in lines
    assert sum(line.startswith("OK ") for line in lines) == len(lines) - 1


def test_validate_reads_the_directory_from_the_environment(
    profiles_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (profiles_copy / "teltonika-rutx11.yaml").unlink()
    monkeypatch.setenv("EDGEFLEET_PROFILES_DIR", str(profiles_copy))
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert str(profiles_copy) in result.stdout
    assert "teltonika" not in result.stdout


def test_validate_of_an_empty_directory_fails(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "no *.yaml" in result.stdout


def test_list_as_json_holds_every_profile() -> None:
    result = runner.invoke(app, ["list", str(PROFILES), "--output", "json"])
    assert result.exit_code == 0, result.output
    listed = {p["id"]: p for p in json.loads(result.stdout)}
    assert set(listed) == set(load_profiles(PROFILES))
    assert listed["teltonika-rutx11"]["link"]["type"] == "lte"


def test_list_as_a_table_shows_each_id() -> None:
    result = runner.invoke(app, ["list", str(PROFILES)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for profile_id in load_profiles(PROFILES):
        assert profile_id in result.stdout


def test_list_reports_invalid_files_and_exits_one(profiles_copy: Path) -> None:
    replace_in(profiles_copy / "teltonika-rutx11.yaml", "memory_mb: 256", "memory_mb: lots")
    result = runner.invoke(app, ["list", str(profiles_copy), "-o", "json"])
    assert result.exit_code == 1
    assert len(json.loads(result.stdout)) == len(list(profiles_copy.glob("*.yaml"))) - 1
    assert "teltonika-rutx11.yaml: memory_mb:" in result.stderr


def test_from_outside_the_checkout_the_shipped_profiles_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: after the CLI moved to cli/edgefleet_cli/commands/, the checkout fallback
    pointed one folder too shallow and found nothing from any other working directory."""
    from edgefleet_cli.commands.profiles import ENV_DIR, default_profiles_dir

    monkeypatch.delenv(ENV_DIR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_profiles_dir() == PROFILES
