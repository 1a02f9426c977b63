"""Custom metrics from workloads: one small file per workload, read each telemetry tick.

The mechanism (documented in ``edge-agent/README.md``): for process and simulated workloads
the agent sets ``EDGEFLEET_METRICS_FILE=<state-dir>/metrics/<workload>.json`` in the
workload's environment. A workload that wants to publish numbers writes a flat JSON object
there, e.g. ``{"queue_depth": 12, "temp_c": 41.5}`` — ideally to a temp file renamed over
it, so the agent never reads half a file. The agent reads it every telemetry tick and the
values travel as ``workloads.<name>.metrics`` under the usual deadbands. Nothing to
install, no socket to keep open, works from any language and from shell scripts.

(Docker workloads: a bind mount of that file at ``/run/edgefleet/metrics.json`` is future
work; the spec has no volume field yet.)
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger("edgefleet.agent.metrics")

METRICS_ENV = "EDGEFLEET_METRICS_FILE"
MAX_FILE_BYTES = 16 * 1024
MAX_METRICS = 32
METRIC_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,63}")


class MetricsFileError(ValueError):
    """A metrics file that cannot be used; the message says why."""


def parse_metrics(raw: bytes) -> dict[str, float]:
    """A flat JSON object of finite numbers, or :class:`MetricsFileError`."""
    if len(raw) > MAX_FILE_BYTES:
        raise MetricsFileError(f"{len(raw)} bytes exceeds the limit of {MAX_FILE_BYTES}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MetricsFileError(f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise MetricsFileError(f"must be a JSON object, got {type(data).__name__}")
    if len(data) > MAX_METRICS:
        raise MetricsFileError(f"{len(data)} metrics exceeds the limit of {MAX_METRICS}")
    metrics: dict[str, float] = {}
    for name, value in data.items():
        if METRIC_NAME.fullmatch(name) is None:
            raise MetricsFileError(f"metric name {name!r} must match {METRIC_NAME.pattern}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise MetricsFileError(f"metric {name!r} must be a number, got {value!r}")
        if not math.isfinite(value):
            raise MetricsFileError(f"metric {name!r} must be finite, got {value!r}")
        metrics[name] = float(value)
    return metrics


class MetricsInbox:
    """Reads the metrics files of running workloads. A bad read keeps the last good values
    (a writer caught mid-write) and is logged once per distinct problem."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._last_good: dict[str, dict[str, float]] = {}
        self._last_error: dict[str, str] = {}

    def path_for(self, workload: str) -> Path:
        return self.directory / f"{workload}.json"

    def read(self, workloads: Iterable[str]) -> dict[str, dict[str, float]]:
        found: dict[str, dict[str, float]] = {}
        names = set(workloads)
        for name in names:
            try:
                raw = self.path_for(name).read_bytes()
            except FileNotFoundError:
                self._last_good.pop(name, None)
                continue
            except OSError as exc:
                self._complain(name, f"cannot read: {exc.strerror}")
                continue
            try:
                self._last_good[name] = parse_metrics(raw)
                self._last_error.pop(name, None)
            except MetricsFileError as exc:
                self._complain(name, str(exc))
            if name in self._last_good:
                found[name] = self._last_good[name]
        for gone in set(self._last_good) - names:
            del self._last_good[gone]
        return found

    def _complain(self, name: str, problem: str) -> None:
        if self._last_error.get(name) != problem:
            log.warning("metrics file of %s ignored: %s", name, problem)
            self._last_error[name] = problem
