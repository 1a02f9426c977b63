"""Desired documents in: trust check, admission, persistence; called by the agent's
``inbound`` loop for every message on its ``desired`` topic.

With a trust anchor the document goes first through
:func:`edgefleet_agent.security.trust.verify` (signature, key chain, node, replay); only a
verified document reaches :func:`edgefleet_agent.core.admission.admit`. Every refusal is
an event and changes nothing. A document signed by a newly endorsed key makes it the key in
force, stored *before* the document is adopted, so a crash in between cannot leave the
gateway running a document whose key it would refuse after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from edgefleet_protocol import Desired
from edgefleet_protocol.compliance import Refusal
from edgefleet_protocol.events import DESIRED_REJECTED, KEY_ROTATED, STORE_WRITE_FAILED

from edgefleet_agent.core.admission import Accept, Notice, Reject, Unchanged, admit, notice_for
from edgefleet_agent.core.runtime import Runtime
from edgefleet_agent.security.context import Security
from edgefleet_agent.security.local_policy import local_policy_verdict
from edgefleet_agent.security.secrets import unopenable
from edgefleet_agent.security.trust import Verified, verify
from edgefleet_agent.service.converge import Converger
from edgefleet_agent.service.outbox import EventOutbox
from edgefleet_agent.settings import AgentSettings
from edgefleet_agent.store import LocalStore

if TYPE_CHECKING:
    pass

log = logging.getLogger("edgefleet.agent")


class DesiredIntake:
    def __init__(
        self,
        settings: AgentSettings,
        *,
        runtimes: Mapping[str, Runtime],
        store: LocalStore,
        converger: Converger,
        events: EventOutbox,
        security: Security,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.runtimes = runtimes
        self.store = store
        self.converger = converger
        self.events = events
        self.security = security
        self.trust = security.trust
        self.policy = security.policy
        self.last_refusal: Refusal | None = None
        self._clock = clock

    async def on_desired(self, payload: bytes) -> bool:
        """Admit one document; ``True`` when one was accepted (a pass should run)."""
        held = self.converger.desired
        s = self.settings
        verified: Verified | None = None
        if self.trust is not None:
            checked = verify(
                payload,
                state=self.trust,
                node=s.node,
                site=s.site,
                held=held,
                max_bytes=s.max_payload_bytes,
            )
            if not isinstance(checked, Verified):
                await self._notify(notice_for(checked))
                return False
            verified = checked
        verdict = admit(
            payload,
            node=s.node,
            site=s.site,
            runtimes=self.runtimes,
            current_generation=held.generation if held else None,
            max_bytes=s.max_payload_bytes,
        )
        if isinstance(verdict, Accept):
            refused = self._refusal(verdict.desired)
            if refused is not None:
                await self._notify(notice_for(refused))
                return False
        accepted = isinstance(verdict, Accept)
        if isinstance(verdict, Accept):
            if verified is not None and verified.rotated:
                await self._adopt_key(verified)
            problem = self.converger.accept(verdict.desired)
            if problem is not None:
                failed = f"could not persist generation {verdict.desired.generation}: {problem}"
                await self.events.emit("error", "store-write-failed", failed)
        elif isinstance(verdict, Unchanged):
            log.debug("desired generation %d unchanged", verdict.generation)
        await self._notify(notice_for(verdict))
        return accepted

    def _refusal(self, desired: Desired) -> Reject | None:
        """The gateway's own last word on a document admission accepts: its policy, then
        whether every sealed secret opens with this node's key."""
        if self.policy is not None:
            refused = local_policy_verdict(desired, self.policy, region=self.settings.region)
            if refused is not None:
                return refused
        problems = unopenable(desired, self.security.sealing_key)
        if problems:
            return Reject("secrets", "; ".join(problems)[:3500])
        return None

    async def _notify(self, notice: Notice | None) -> None:
        if notice is not None and notice.kind == DESIRED_REJECTED.name:
            field, reason = notice.details.get("field", ""), notice.details.get("reason", "")
            self.last_refusal = Refusal(ts=self._clock(), field=str(field)[:128],
                                        reason=str(reason)[:4096])  # fmt: skip
        if notice is not None:
            await self.events.emit(notice.level, notice.kind, notice.message, **notice.details)

    async def _adopt_key(self, verified: Verified) -> None:
        assert self.trust is not None
        old = self.trust.current.key_id
        try:
            self.store.save_trust(verified.key, root=self.trust.anchor.root.key_id)
        except OSError as exc:
            await self.events.emit("error", STORE_WRITE_FAILED, f"could not persist key: {exc}")
        self.trust = replace(self.trust, current=verified.key)
        await self.events.emit(
            "info",
            KEY_ROTATED,
            f"orchestrator key {verified.key.key_id} now in force (was {old})",
            key_id=verified.key.key_id,
            previous=old,
        )
