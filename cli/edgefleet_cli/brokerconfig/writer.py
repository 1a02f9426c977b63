"""Write a generated set to disk: the only part of brokerconfig that touches files.

Rules: never overwrite a non-empty directory unless asked (a second run would otherwise
silently replace a fleet's CA and lock every gateway out); secrets are created 0600 from
the first byte (no window in which they are world-readable) and re-chmodded when the file
already existed; each file is written to a temp name and renamed into place, so a crash
never leaves half a key.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from edgefleet_cli.brokerconfig.bundle import GeneratedFile


class DirectoryNotEmptyError(RuntimeError):
    """The output directory already holds files and ``force`` was not given."""


def check_target(out_dir: Path, *, force: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DirectoryNotEmptyError(f"{out_dir} exists and is not a directory")
    if not force and out_dir.is_dir() and any(out_dir.iterdir()):
        raise DirectoryNotEmptyError(
            f"{out_dir} is not empty; pass --force to overwrite (this replaces the CA and every "
            "credential in it)"
        )


def write_file(target: Path, content: bytes, mode: int) -> None:
    """Write one file atomically with ``mode`` from its first byte (also for ``keys``)."""
    _write_one(target, content, mode)


def _write_one(target: Path, content: bytes, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = target.with_name(f".{target.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is filtered by umask; a reused tmp keeps its own
        os.write(fd, content)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, target)


def write_config_set(out_dir: Path, files: Iterable[GeneratedFile], *, force: bool) -> list[Path]:
    """Write ``files`` under ``out_dir``; returns the paths written, in order."""
    check_target(out_dir, force=force)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    written: list[Path] = []
    for generated in files:
        target = out_dir / generated.path
        _write_one(target, generated.content, generated.mode)
        written.append(target)
    return written
