"""Horizontal autoscaling: how many replicas an app's metric asks for, and whether to act.

Who calls it: the reconcile pass (:mod:`edgefleet_orchestrator.scaling.counts`), once per pass for
every app with ``autoscale``. Pure: the observation, the current count, what the autoscaler
remembers and ``now`` come in; a :class:`Verdict` comes out. The pass then caps a scale-up
to what placement can place (:func:`cap_to_placed`) and writes the count into the manifest
(manifests stay authoritative), and the shell publishes one event per change.

The rules, in the order :func:`decide` applies them:

1. A count outside ``min``..``max`` (the bounds were just changed) is clamped at once.
2. No running replica reports the metric: hold (``no-data``), saying which metrics the
   replicas do report, so a typo in the metric name is visible in the app status.
3. ``ratio = observed / target``; inside ``1 ± tolerance`` hold (``steady``): a metric
   that wobbles around its target never moves the count.
4. Otherwise ``wanted = ceil(replicas x ratio)`` within ``min``..``max`` (the HPA rule).
5. A scale-up waits ``scale_up_cooldown_s`` after the last change. A scale-down waits until
   the metric has asked for fewer replicas for ``scale_down_cooldown_s`` without a break
   *and* that long has passed since the last change: a short lull shrinks nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from edgefleet_protocol.manifest import Autoscale

from edgefleet_orchestrator.fleet.registry import NodeRecord
from edgefleet_orchestrator.placement.model import Assignment

State = Literal["steady", "scaled-up", "scaled-down", "cooldown", "limited", "no-data"]

_CEIL_SLACK = 1e-9
"""``ceil(2 x 1.5)`` must be 3, not 4 because of a float's last bit."""


@dataclass(frozen=True, slots=True)
class ScaleMemory:
    """What the autoscaler remembers of one app between evaluations.

    ``last_scaled_at``/``last_direction`` are durable (the store keeps them, so a restart
    does not reopen a cooldown). ``below_since`` — since when the metric has asked for fewer
    replicas without a break — and ``last_state`` are not: after a restart a lull must be
    seen again in full before anything shrinks.
    """

    last_scaled_at: float | None = None
    last_direction: Literal["up", "down"] | None = None
    below_since: float | None = None
    last_state: State | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """The metric averaged over the running replicas that report it."""

    value: float | None
    samples: int
    running: int
    reported_metrics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Verdict:
    """One evaluation: ``current`` replicas now, ``replicas`` to run, ``wanted`` by the
    metric (within bounds), and why."""

    current: int
    replicas: int
    wanted: int
    state: State
    reason: str
    observed: float | None
    samples: int
    limited_by: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return self.replicas != self.current


def metric_value(usage_metric: str, usage: object) -> float | None:
    """The value of ``usage_metric`` in one workload's usage (builtin fields first)."""
    if usage_metric in ("cpu_pct", "memory_pct"):
        value = getattr(usage, usage_metric, None)
        return float(value) if isinstance(value, int | float) else None
    metrics = getattr(usage, "metrics", {})
    value = metrics.get(usage_metric) if isinstance(metrics, Mapping) else None
    return float(value) if isinstance(value, int | float) else None


SERVICE_METRIC = "service."
"""Prefix of the metrics consumers' proxies measure for a service, e.g.
``service.connections_per_s``: the sum over online nodes of ``proxy.<service>.<stat>``
(node metrics), per running replica of the app that offers the service."""


def observe_service(
    metric: str,
    service: str | None,
    assignments: Sequence[Assignment],
    nodes: Mapping[str, NodeRecord],
) -> Observation:
    """A ``service.*`` metric: what every consumer's proxy sends to ``service``, shared
    over the app's running replicas (no data while no proxy reports or nothing runs)."""
    running = sum(1 for a in assignments if _runs(a, nodes))
    name = f"proxy.{service}.{metric.removeprefix(SERVICE_METRIC)}"
    values = [
        value
        for record in nodes.values()
        if record.state == "online" and (value := record.telemetry.metrics.get(name)) is not None
    ]
    if service is None or not values or not running:
        return Observation(None, 0, running, ())
    return Observation(sum(values) / running, running, running, (metric,))


def _runs(a: Assignment, nodes: Mapping[str, NodeRecord]) -> bool:
    record = nodes.get(a.node)
    if record is None or record.state != "online" or record.reported is None:
        return False
    report = record.reported.workloads.get(a.replica)
    return report is not None and report.state == "running"


def observe(
    metric: str, assignments: Sequence[Assignment], nodes: Mapping[str, NodeRecord]
) -> Observation:
    """Average ``metric`` over the replicas in ``assignments`` that run on an online node
    (their agent's word) and report it in that node's telemetry."""
    values: list[float] = []
    running = 0
    seen: set[str] = set()
    for a in assignments:
        record = nodes.get(a.node)
        if record is None or record.state != "online" or record.reported is None:
            continue
        report = record.reported.workloads.get(a.replica)
        if report is None or report.state != "running":
            continue
        running += 1
        usage = record.telemetry.workloads.get(a.replica)
        if usage is None:
            continue
        seen.update(k for k in ("cpu_pct", "memory_pct") if getattr(usage, k) is not None)
        seen.update(usage.metrics)
        value = metric_value(metric, usage)
        if value is not None:
            values.append(value)
    average = sum(values) / len(values) if values else None
    return Observation(average, len(values), running, tuple(sorted(seen)))


def decide(
    spec: Autoscale,
    *,
    current: int,
    observation: Observation,
    memory: ScaleMemory,
    now: float,
) -> tuple[Verdict, ScaleMemory]:
    """The verdict for one app, and the memory to carry to :func:`settle` (which records
    the change, if the pass keeps one after capping it to capacity)."""
    low, high = spec.min, spec.max
    bounded = min(max(current, low), high)
    if bounded != current:
        reason = f"{current} replicas is outside autoscale bounds {low}..{high}"
        state: State = "scaled-up" if bounded > current else "scaled-down"
        return Verdict(current, bounded, bounded, state, reason, observation.value, 0), memory

    value, samples = observation.value, observation.samples
    if value is None:
        verdict = Verdict(
            current, current, current, "no-data", _no_data(spec, observation), None, 0
        )
        return verdict, replace(memory, below_since=None)

    ratio = value / spec.target
    seen = f"{spec.metric} {value:.4g} (average of {_replicas(samples)}) vs target {spec.target:g}"
    if abs(ratio - 1.0) <= spec.tolerance:
        reason = f"{seen}: within the ±{spec.tolerance:.0%} band"
        return Verdict(current, current, current, "steady", reason, value, samples), replace(
            memory, below_since=None
        )

    asked = max(0, math.ceil(current * ratio - _CEIL_SLACK))
    wanted = min(max(asked, low), high)
    ask = f"{seen} asks for {asked} replicas"
    if wanted != asked:
        ask += f", held to {'max' if asked > high else 'min'} {wanted}"
    if wanted == current:
        return Verdict(current, current, wanted, "steady", ask, value, samples), replace(
            memory, below_since=None
        )

    last = memory.last_scaled_at
    if wanted > current:
        memory = replace(memory, below_since=None)
        wait = 0.0 if last is None else last + spec.scale_up_cooldown_s - now
        if wait > 0:
            reason = f"{ask}; scale-up cooldown: {wait:.0f} s left"
            return Verdict(current, current, wanted, "cooldown", reason, value, samples), memory
        reason = f"{ask}: scaling up {current} -> {wanted}"
        return Verdict(current, wanted, wanted, "scaled-up", reason, value, samples), memory

    below = memory.below_since if memory.below_since is not None else now
    memory = replace(memory, below_since=below)
    ready_at = max(below, below if last is None else last) + spec.scale_down_cooldown_s
    if now < ready_at:
        reason = f"{ask}; scale-down cooldown: {ready_at - now:.0f} s left"
        return Verdict(current, current, wanted, "cooldown", reason, value, samples), memory
    reason = f"{ask}: scaling down {current} -> {wanted}"
    return Verdict(current, wanted, wanted, "scaled-down", reason, value, samples), memory


def cap_to_placed(verdict: Verdict, *, placed: int, reasons: Sequence[str]) -> Verdict:
    """A scale-up limited to the ``placed`` replicas placement could find room for.

    Never below the current count (replicas that already run are not the autoscaler's to
    take away because a new one does not fit) and never above the verdict.
    """
    if verdict.replicas <= verdict.current or placed >= verdict.replicas:
        return verdict
    capped = max(verdict.current, placed)
    short = verdict.replicas - capped
    ask = verdict.reason.split(": scaling up")[0]
    reason = f"{ask}; only {capped} can be placed ({short} short)"
    return replace(
        verdict, replicas=capped, state="limited", reason=reason, limited_by=tuple(reasons)
    )


def settle(memory: ScaleMemory, verdict: Verdict, now: float) -> ScaleMemory:
    """What to remember once the pass has settled the verdict: a change starts both
    cooldowns; anything else only records the state (for :func:`worth_an_event`)."""
    if not verdict.changed:
        return replace(memory, last_state=verdict.state)
    direction: Literal["up", "down"] = "up" if verdict.replicas > verdict.current else "down"
    return ScaleMemory(
        last_scaled_at=now, last_direction=direction, below_since=None, last_state=verdict.state
    )


def worth_an_event(before: ScaleMemory, verdict: Verdict) -> bool:
    """Every change is an event; so is arriving at ``limited`` or ``no-data`` (once)."""
    if verdict.changed:
        return True
    return verdict.state in ("limited", "no-data") and before.last_state != verdict.state


def _no_data(spec: Autoscale, observation: Observation) -> str:
    if observation.running == 0:
        return f"no running replica to read {spec.metric} from yet"
    reported = ", ".join(observation.reported_metrics) or "nothing"
    return (
        f"none of the {_replicas(observation.running)} running reports metric "
        f"{spec.metric!r} (they report: {reported})"
    )


def _replicas(n: int) -> str:
    return f"{n} replica{'s' if n != 1 else ''}"
