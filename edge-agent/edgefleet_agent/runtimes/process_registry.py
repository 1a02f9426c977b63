"""``processes.json``: what the process runtime started, so a restarted agent adopts it.

Written atomically (temp file, fsync, rename, fsync of the directory), so a power cut
leaves either the old or the new registry, never half of one. A registry that cannot be
read is moved aside (``processes.json.corrupt-<time>``) and reported, not silently lost:
its processes keep running and an operator can still find them.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from edgefleet_agent.runtimes.process_policy import ProcessRecord

log = logging.getLogger(__name__)


class RegistryFile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    v: int = 1
    node: str
    processes: dict[str, ProcessRecord]


def load_registry(path: Path, node: str) -> dict[str, ProcessRecord]:
    try:
        os.chmod(path, 0o600)  # a registry written 0644 by an older agent
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        registry = RegistryFile.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
        os.replace(path, aside)
        log.error("process registry %s is unreadable (%s); moved to %s", path, exc, aside)
        return {}
    if registry.node != node:
        # Same state dir, other node id: those processes belong to another identity.
        log.warning("process registry %s belongs to node %s, not %s", path, registry.node, node)
        return {}
    return dict(registry.processes)


def save_registry(path: Path, node: str, records: dict[str, ProcessRecord]) -> None:
    data = RegistryFile(node=node, processes=records).model_dump_json(indent=1)
    # A temp name of this writer's own: a second writer (another thread or process) can
    # never rename this one's file away from under it.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    # 0600 whatever the umask: the registry names commands, and it outlives the processes.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "w", encoding="utf-8") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
