"""Workload options (protocol/workload_options.py) refused and normalised exactly: paths,
volume sources, capabilities, users, data classes, devices, secret references. Each was a
surviving mutant of `make mutate`: the runtime tests exercise them through docker, which
no mutant run can afford."""

from __future__ import annotations

from typing import Any

import pytest
from edgefleet_protocol.workload_options import (
    AbsolutePath,
    Capability,
    DataClass,
    Device,
    RunAsUser,
    SecretRef,
    Volume,
)
from pydantic import TypeAdapter, ValidationError


def reason(kind: Any, value: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        TypeAdapter(kind).validate_python(value)
    return str(caught.value.errors()[0]["msg"]).removeprefix("Value error, ")


def test_an_absolute_path_is_normalised_and_everything_else_refused() -> None:
    path: TypeAdapter[str] = TypeAdapter(AbsolutePath)
    assert path.validate_python("/srv//data/./x/") == "/srv/data/x"
    assert path.validate_python("/" + "a" * 4095) == "/" + "a" * 4095
    for bad in ("relative/x", "/a\0b", "/" + "a" * 4096):
        assert reason(AbsolutePath, bad) == f"{bad!r} must be an absolute path"
    assert reason(AbsolutePath, "/a/../b") == "'/a/../b' must not contain '..'"
    assert path.validate_python("/a/..b/c") == "/a/..b/c"  # only a whole '..' level


def test_a_volume_source_is_a_host_path_or_a_volume_name() -> None:
    host = Volume.model_validate({"source": "/srv//x", "target": "/data"})
    assert (host.source, host.host_path, host.read_only) == ("/srv/x", True, False)
    named = Volume.model_validate({"source": "cache.v1", "target": "/data", "read_only": True})
    assert (named.source, named.host_path, named.read_only) == ("cache.v1", False, True)
    assert reason(Volume, {"source": "-bad", "target": "/d"}) == (
        "'-bad' is neither an absolute host path nor a volume name ([a-zA-Z0-9_.-])"
    )
    assert (
        reason(Volume, {"source": "/a/../b", "target": "/d"}) == "'/a/../b' must not contain '..'"
    )


def test_capabilities_users_and_data_classes() -> None:
    cap: TypeAdapter[str] = TypeAdapter(Capability)
    assert (cap.validate_python("CAP_NET_ADMIN"), cap.validate_python("SYS_TIME")) == (
        "NET_ADMIN", "SYS_TIME",
    )  # fmt: skip
    assert reason(Capability, "net_admin") == (
        "'net_admin' is not a Linux capability name such as NET_ADMIN"
    )
    user: TypeAdapter[str] = TypeAdapter(RunAsUser)
    for ok in ("app", "1000", "app:staff", "1000:1000", "_svc-1"):
        assert user.validate_python(ok) == ok
    for bad in ("App", "app:Staff", "a b"):
        assert (
            reason(RunAsUser, bad) == f"{bad!r} must be USER or USER:GROUP (names or numeric ids)"
        )
    assert TypeAdapter(DataClass).validate_python("personal") == "personal"
    assert reason(DataClass, "Personal") == (
        "'Personal' must be a lower-case identifier such as personal"
    )


def test_a_device_defaults_to_rwm_and_takes_only_r_w_m() -> None:
    device = Device.model_validate({"host": "/dev/ttyUSB0"})
    assert (device.container, device.permissions) == (None, "rwm")
    assert Device.model_validate({"host": "/dev/x", "permissions": "r"}).permissions == "r"
    for bad in ("", "rx", "rwmr"):
        with pytest.raises(ValidationError):
            Device.model_validate({"host": "/dev/x", "permissions": bad})


def test_a_secret_reference_names_a_secret_and_an_environment_variable() -> None:
    ref = SecretRef.model_validate({"name": "db-pass", "env": "DB_PASS", "sealed": "x" * 131072})
    assert (ref.name, ref.env, len(ref.sealed or "")) == ("db-pass", "DB_PASS", 131072)
    assert reason(SecretRef, {"name": "db", "env": "1X"}) == (
        "'1X' is not an environment variable name"
    )
    for bad in ({"name": "Db", "env": "X"}, {"name": "db", "env": "X", "sealed": "x" * 131073}):
        with pytest.raises(ValidationError):
            SecretRef.model_validate(bad)
