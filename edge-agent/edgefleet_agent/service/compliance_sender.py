"""Publishing the node's compliance report (retained): on every connect, after every
converge pass and after every refused document, when anything but its timestamp changed.
The decisions are in :func:`edgefleet_agent.core.compliance.compliance_report`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from edgefleet_protocol import ComplianceReport, TopicKind

from edgefleet_agent import __version__
from edgefleet_agent.core.compliance import compliance_report
from edgefleet_agent.service.converge import Converger
from edgefleet_agent.service.intake import DesiredIntake
from edgefleet_agent.settings import AgentSettings


class CompliancePublisher:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        intake: DesiredIntake,
        converger: Converger,
        publish: Callable[[TopicKind, ComplianceReport], Awaitable[bool]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._intake = intake
        self._converger = converger
        self._publish = publish
        self._clock = clock
        self._last: dict[str, Any] | None = None

    def report(self) -> ComplianceReport:
        s, intake = self._settings, self._intake
        trust = intake.trust
        return compliance_report(
            node=s.node,
            site=s.site,
            region=s.region,
            agent_version=__version__,
            policy=intake.policy,
            key_id=trust.current.key_id if trust is not None else None,
            signed=trust is not None,
            held=self._converger.desired,
            running=[o.name for o in self._converger.owned],
            last_refusal=intake.last_refusal,
            now=self._clock(),
        )

    async def publish(self, *, force: bool = False) -> None:
        report = self.report()
        # Not the refusal's own time either: a flood of the same bad document would
        # otherwise republish the retained report once per document (issue #12 defect 7).
        key = report.model_dump(exclude={"ts": True, "last_refusal": {"ts"}})
        if not force and key == self._last:
            return
        if await self._publish(TopicKind.NODE_COMPLIANCE, report):
            self._last = key
