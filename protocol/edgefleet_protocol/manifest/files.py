"""Reading manifests: YAML or JSON text and files, refused with a dotted field path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticCustomError

from edgefleet_protocol.base import FORBID_UNKNOWN
from edgefleet_protocol.codec import from_validation_error, validate
from edgefleet_protocol.commands import manifest_from_text
from edgefleet_protocol.errors import ProtocolError
from edgefleet_protocol.manifest.app import (
    AppManifest,
)
from edgefleet_protocol.manifest.rules import (
    MANIFEST_SUFFIXES,
    MAX_MANIFEST_BYTES,
)


class ManifestError(ProtocolError):
    """A manifest that cannot be read or is invalid. ``field`` is the dotted path inside the
    manifest (or ``source`` itself for unreadable text); ``str()`` names the source too."""

    def __init__(self, source: str, field: str, reason: str) -> None:
        super().__init__(field, reason)
        self.source = source
        self.args = (f"{source}: {field}: {reason}",)

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.reason}"


def load_manifest(text: str | bytes, *, source: str = "manifest") -> AppManifest:
    """Parse YAML or JSON text into a validated :class:`AppManifest`.

    Raises :class:`ManifestError` (a :class:`ProtocolError`): ``field`` is the dotted path
    of the first problem (``placement.max_per_node``), or ``source`` when the text itself
    is not a readable mapping.
    """
    if isinstance(text, bytes):
        if len(text) > MAX_MANIFEST_BYTES:
            raise ManifestError(source, source, f"{len(text)} bytes exceeds {MAX_MANIFEST_BYTES}")
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(source, source, f"is not UTF-8 (byte {exc.start})") from None
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        raise ManifestError(source, source, f"is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        # The same parser as the ``deploy`` command: YAML without aliases, JSON values only.
        data = manifest_from_text(text)
    except ValueError as exc:
        raise ManifestError(source, source, str(exc).removeprefix("manifest ")) from None
    try:
        return validate(AppManifest, data, forbid_unknown=True)
    except ProtocolError as exc:
        raise ManifestError(source, _path_of(exc), exc.reason) from None


def manifest_problems(text: str | bytes, *, source: str = "manifest") -> list[ManifestError]:
    """Every problem of a manifest, not only the first (``edgefleet validate``): the text
    (size, encoding, YAML) is one problem at most; then each field pydantic refuses, in
    its order. An empty list means :func:`load_manifest` accepts it."""
    try:
        load_manifest(text, source=source)
    except ManifestError as exc:
        first = exc
        if first.field == source:
            return [first]  # unreadable text: nothing more to look at
    else:
        return []
    raw = text.decode("utf-8") if isinstance(text, bytes) else text
    data = manifest_from_text(raw)
    try:
        AppManifest.model_validate(data, context={FORBID_UNKNOWN: True})
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            one = from_validation_error(
                ValidationError.from_exception_data(exc.title, [_line_error(error)])
            )
            problems.append(ManifestError(source, _path_of(one), one.reason))
        return problems
    return [first]  # refused by a rule outside the model (never expected)


def _line_error(error: Any) -> Any:
    """One error of ``ValidationError.errors()`` back in the shape ``from_exception_data``
    takes, so the one-error formatting of the codec applies to each.

    Rebuilt as a custom error of the same type carrying the message pydantic already
    rendered: ``from_exception_data`` only knows pydantic's own types, and our cross-field
    rules (``manifest_rule``, rules.field_error) are not among them, so rebuilding by type
    raised KeyError out of ``edgefleet validate``.
    """
    return {
        "type": PydanticCustomError(error["type"], error["msg"]),
        "loc": error["loc"],
        "input": error.get("input"),
    }


_UNKNOWN = re.compile(r"unknown field\(s\) ([^;,]+)")


def _path_of(exc: ProtocolError) -> str:
    # An unknown key is refused by the model that holds it, so pydantic's path stops at that
    # model ("payload" for the root); point at the key itself, which is what to fix.
    unknown = _UNKNOWN.match(exc.reason)
    if unknown is None:
        return exc.field
    key = unknown.group(1)
    return key if exc.field == "payload" else f"{exc.field}.{key}"


def manifest_files(path: str | Path) -> list[Path]:
    """The manifest files at ``path``: the file itself, or a directory's ``*.yaml``,
    ``*.yml`` and ``*.json`` files (not recursive), sorted by name."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ManifestError(str(path), "path", "does not exist")
    return sorted(p for p in path.iterdir() if p.suffix in MANIFEST_SUFFIXES and p.is_file())


def load_manifests(path_or_dir: str | Path) -> list[AppManifest]:
    """Every manifest of a file or directory, in file-name order.

    Raises the first :class:`ManifestError`, whose ``source`` is the file; two files that
    define the same app name are an error (the second one is named).
    """
    manifests: list[AppManifest] = []
    defined_in: dict[str, Path] = {}
    for file in manifest_files(path_or_dir):
        try:
            raw = file.read_bytes()
        except OSError as exc:
            raise ManifestError(str(file), str(file), f"cannot be read ({exc.strerror})") from None
        manifest = load_manifest(raw, source=str(file))
        earlier = defined_in.setdefault(manifest.name, file)
        if earlier != file:
            raise ManifestError(
                str(file), "name", f"app {manifest.name!r} is already defined in {earlier}"
            )
        manifests.append(manifest)
    return manifests
