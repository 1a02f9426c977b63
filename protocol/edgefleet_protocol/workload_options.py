"""The workload options real gateways need, beside the basic spec: volumes, devices, Linux
capabilities, run-as user and the class of data a workload handles.

They are fields of :class:`edgefleet_protocol.workload.WorkloadSpec` with empty defaults,
so specs that do not use them keep their hashes. Whether a workload may use them is not
decided here: compliance policies (:mod:`edgefleet_protocol.policy`) do that, at the
orchestrator's admission and again on the gateway.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated

from pydantic import AfterValidator, Field

from edgefleet_protocol.base import StrictSpec

_NAMED_VOLUME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
_CAPABILITY = re.compile(r"^(CAP_)?[A-Z][A-Z0-9_]{1,31}$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$|^[0-9]{1,10}$")
_DATA_CLASS = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def absolute_path(value: str) -> str:
    """A normalised absolute path without ``..`` (policies compare paths by prefix)."""
    if not value.startswith("/") or "\x00" in value or len(value) > 4096:
        raise ValueError(f"{value!r} must be an absolute path")
    if ".." in value.split("/"):
        raise ValueError(f"{value!r} must not contain '..'")
    return posixpath.normpath(value)


AbsolutePath = Annotated[str, AfterValidator(absolute_path)]


def _volume_source(value: str) -> str:
    if value.startswith("/"):
        return absolute_path(value)
    if not _NAMED_VOLUME.match(value):
        raise ValueError(
            f"{value!r} is neither an absolute host path nor a volume name ([a-zA-Z0-9_.-])"
        )
    return value


def _capability(value: str) -> str:
    if not _CAPABILITY.match(value):
        raise ValueError(f"{value!r} is not a Linux capability name such as NET_ADMIN")
    return value.removeprefix("CAP_")


def _user(value: str) -> str:
    name, _, group = value.partition(":")
    if not _USER.match(name) or (group and not _USER.match(group)):
        raise ValueError(f"{value!r} must be USER or USER:GROUP (names or numeric ids)")
    return value


def _data_class(value: str) -> str:
    if not _DATA_CLASS.match(value):
        raise ValueError(f"{value!r} must be a lower-case identifier such as personal")
    return value


Capability = Annotated[str, AfterValidator(_capability)]
RunAsUser = Annotated[str, AfterValidator(_user)]
DataClass = Annotated[str, AfterValidator(_data_class)]


class Volume(StrictSpec):
    """A Docker volume: ``source`` is a host path (starts with ``/``) or a named volume."""

    source: Annotated[str, AfterValidator(_volume_source)]
    target: AbsolutePath
    read_only: bool = False

    @property
    def host_path(self) -> bool:
        return self.source.startswith("/")


class Device(StrictSpec):
    """A host device given to a container (a serial adapter, ``/dev/ttyUSB0``)."""

    host: AbsolutePath
    container: AbsolutePath | None = None
    permissions: str = Field(default="rwm", pattern=r"^[rwm]{1,3}$")


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


class SecretRef(StrictSpec):
    """A sealed secret the workload gets in its environment as ``env``.

    Manifests name the secret (``edgefleet secret set NAME``); the orchestrator fills
    ``sealed`` per node (a box only that node's key opens, see
    :mod:`edgefleet_protocol.sealing`). ``sealed`` is not part of the spec hash.
    """

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    env: Annotated[str, AfterValidator(_env_name)]
    sealed: str | None = Field(default=None, max_length=128 * 1024)
