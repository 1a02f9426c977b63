"""Operator CLI inputs: settings precedence (flags > env > file > defaults), config files,
manifest files, and the one-line error a refusal becomes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from edgefleet_cli.config import (
    DEFAULT_TIMEOUT_S,
    ClientSettings,
    UsageError,
    default_config_path,
    read_config_file,
    read_manifest,
    refusal_lines,
    resolve_settings,
)
from edgefleet_protocol import CommandReply
from edgefleet_protocol.commands import ErrorCode, error_reply


def resolve(
    flags: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    file: dict[str, Any] | None = None,
) -> ClientSettings:
    return resolve_settings(flags or {}, env or {}, file or {})


@pytest.mark.parametrize(
    ("flags", "env", "file", "expected"),
    [
        ({}, {}, {}, ("127.0.0.1", 1883, "edgefleet/v1", DEFAULT_TIMEOUT_S)),
        (
            {},
            {},
            {"broker": "mqtt://file:1", "root": "f/v1", "timeout": 3},
            ("file", 1, "f/v1", 3.0),
        ),
        (
            {},
            {"EDGEFLEET_BROKER": "mqtt://env:2", "EDGEFLEET_ROOT": "e", "EDGEFLEET_TIMEOUT": "4"},
            {"broker": "mqtt://file:1", "root": "f/v1", "timeout": 3},
            ("env", 2, "e", 4.0),
        ),
        (
            {"broker": "mqtt://flag:3", "root": "fl", "timeout": 5.0},
            {"EDGEFLEET_BROKER": "mqtt://env:2", "EDGEFLEET_ROOT": "e", "EDGEFLEET_TIMEOUT": "4"},
            {"broker": "mqtt://file:1", "root": "f/v1", "timeout": 3},
            ("flag", 3, "fl", 5.0),
        ),
        (
            {"root": "fl"},
            {"EDGEFLEET_BROKER": "mqtt://env:2", "EDGEFLEET_TIMEOUT": ""},
            {"timeout": 3},
            ("env", 2, "fl", 3.0),
        ),
    ],
    ids=[
        "defaults",
        "file beats defaults",
        "env beats file",
        "flags beat env",
        "each key from its own highest source; empty env is unset",
    ],
)
def test_each_setting_comes_from_the_highest_source_that_sets_it(
    flags: dict[str, Any],
    env: dict[str, str],
    file: dict[str, Any],
    expected: tuple[str, int, str, float],
) -> None:
    s = resolve(flags, env, file)
    assert (s.broker.host, s.broker.port, s.root, s.timeout_s) == expected


@pytest.mark.parametrize(
    ("flags", "env", "file", "user"),
    [
        ({}, {}, {}, "cli"),
        ({}, {"USER": "alice"}, {}, "alice"),
        ({"broker": "mqtt://ops:pw@h"}, {"USER": "alice"}, {}, "ops"),
        ({}, {"USER": "alice"}, {"user": "bob"}, "bob"),
        ({}, {"USER": "alice", "EDGEFLEET_USER": "carol"}, {"user": "bob"}, "carol"),
        ({"user": "dave"}, {"EDGEFLEET_USER": "carol"}, {"user": "bob"}, "dave"),
        ({}, {"USER": "DOMAIN\\alice"}, {}, "cli"),
    ],
    ids=[
        "cli without anything else",
        "$USER",
        "the broker user beats $USER (the ACL reads replies/<broker user>/#)",
        "config file beats the fallbacks",
        "env beats file",
        "flag beats env",
        "a $USER that is no topic level falls back to cli",
    ],
)
def test_the_reply_user_falls_back_from_broker_user_to_user_to_cli(
    flags: dict[str, Any], env: dict[str, str], file: dict[str, Any], user: str
) -> None:
    s = resolve(flags, env, file)
    assert s.user == user
    assert s.reply_prefix == f"{s.root}/replies/{user}"


@pytest.mark.parametrize(
    ("flags", "env", "file", "says"),
    [
        ({"broker": "http://h"}, {}, {}, "--broker: 'http://h': scheme must be mqtt://"),
        ({}, {"EDGEFLEET_BROKER": "mqtt://"}, {}, "EDGEFLEET_BROKER: 'mqtt://' names no host"),
        ({"broker": "mqtts://h?ca=/no/such.pem"}, {}, {}, "no such file /no/such.pem"),
        ({}, {}, {"root": "a/+/b"}, "config file key 'root': 'a/+/b' is not a valid topic root"),
        ({}, {"EDGEFLEET_TIMEOUT": "soon"}, {}, "EDGEFLEET_TIMEOUT: 'soon' is not a number"),
        ({"timeout": 0.0}, {}, {}, "--timeout: timeout must be more than 0"),
        ({"user": "a/b"}, {}, {}, "--user: user 'a/b' must be 1-64 of"),
        ({}, {"EDGEFLEET_USER": "#"}, {}, "EDGEFLEET_USER: user '#' must be"),
    ],
)
def test_a_bad_setting_is_a_usage_error_naming_where_it_came_from(
    flags: dict[str, Any], env: dict[str, str], file: dict[str, Any], says: str
) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(flags, env, file)
    assert caught.value.exit_code == 2
    assert says in caught.value.lines[0]


def test_the_default_config_file_follows_xdg_config_home() -> None:
    assert default_config_path({"HOME": "/home/a"}) == Path("/home/a/.config/edgefleet/cli.toml")
    assert default_config_path({"HOME": "/h", "XDG_CONFIG_HOME": "/x"}) == Path(
        "/x/edgefleet/cli.toml"
    )


def test_a_config_file_gives_its_keys(tmp_path: Path) -> None:
    path = tmp_path / "cli.toml"
    path.write_text('broker = "mqtt://b:1884"\nroot = "r/v1"\nuser = "ops"\ntimeout = 2.5\n')
    assert read_config_file(path, explicit=True) == {
        "broker": "mqtt://b:1884",
        "root": "r/v1",
        "user": "ops",
        "timeout": 2.5,
    }


def test_a_missing_default_config_file_is_no_config(tmp_path: Path) -> None:
    assert read_config_file(tmp_path / "absent.toml", explicit=False) == {}


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "does not exist"),
        ('broker = "mqtt://b"\nbrokr = "x"\n', "unknown key(s) brokr; allowed: broker, root"),
        ("broker = \n", "not valid TOML"),
        ("timeout = true\n", "timeout must be a number of seconds"),
        ("root = 1\n", "root must be a string"),
    ],
    ids=["named but missing", "unknown key", "syntax", "bool timeout", "non-string root"],
)
def test_a_bad_config_file_is_a_usage_error_naming_the_file(
    tmp_path: Path, text: str | None, says: str
) -> None:
    path = tmp_path / "cli.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UsageError) as caught:
        read_config_file(path, explicit=True)
    assert str(path) in caught.value.lines[0]
    assert says in caught.value.lines[0]


def test_a_manifest_file_is_read_as_yaml_or_json(tmp_path: Path) -> None:
    yaml_file = tmp_path / "a.yaml"
    yaml_file.write_text("name: a\nreplicas: 2\nworkload: {runtime: simulated}\n")
    json_file = tmp_path / "a.json"
    json_file.write_text('{"name": "a", "replicas": 2, "workload": {"runtime": "simulated"}}')
    assert read_manifest(yaml_file) == read_manifest(json_file)
    assert read_manifest(yaml_file)["replicas"] == 2


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (None, "cannot read"),
        ("name: a\nreplicas: [1\n", "(line 3, column 1)"),
        ("- a\n- b\n", "manifest must be a mapping"),
        ("", "manifest text is empty"),
        ("a: &x 1\nb: *x\n", "YAML aliases"),
        (b"\xff\xfe", "cannot read"),
    ],
    ids=["missing", "syntax error with its line", "a list", "empty", "alias", "not utf-8"],
)
def test_an_unusable_manifest_file_is_a_usage_error(
    tmp_path: Path, text: str | bytes | None, says: str
) -> None:
    path = tmp_path / "m.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(UsageError) as caught:
        read_manifest(path)
    assert caught.value.exit_code == 2
    assert says in caught.value.lines[0]
    assert caught.value.lines[0].startswith("error: ")


@pytest.mark.parametrize(
    ("reply", "lines"),
    [
        (
            error_reply(
                "r1", ErrorCode.NOT_FOUND, "no app named 'x'", details={"app": "x", "apps": ["a"]}
            ),
            ["error: not_found: no app named 'x'", "  known apps: a"],
        ),
        (
            error_reply(
                "r2",
                ErrorCode.BAD_REQUEST,
                "invalid manifest: replicas: must be >= 0",
                details={"field": "manifest.replicas", "reason": "must be >= 0"},
            ),
            [
                "error: bad_request: invalid manifest: replicas: must be >= 0",
                "  field: manifest.replicas",
            ],
        ),
        (
            error_reply(
                "r3",
                ErrorCode.CONFLICT,
                "app d runs in daemon mode",
                details={"app": "d", "mode": "daemon"},
            ),
            ["error: conflict: app d runs in daemon mode"],
        ),
        (
            error_reply("r4", ErrorCode.NOT_FOUND, "no app named 'x'", details={"apps": []}),
            ["error: not_found: no app named 'x'", "  known apps: none"],
        ),
    ],
    ids=["lists what exists", "adds only what the message lacks", "no noise", "nothing exists"],
)
def test_a_refusal_becomes_one_error_line_plus_the_details_that_help(
    reply: CommandReply, lines: list[str]
) -> None:
    assert refusal_lines(reply) == lines
