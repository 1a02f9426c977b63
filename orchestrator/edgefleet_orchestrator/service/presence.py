"""The orchestrator's own presence, and what it does when it finds a rival.

Two orchestrators on one broker (and root) used to kick each other off about five times a
second, silently: they share a client id (on the production broker, the user name). Each
orchestrator now carries a random ``instance`` in its retained ``orchestrator/status``
(and in its will), watches that topic, and asks :func:`judge` about every status of
another instance:

* an **online** status of an instance that started earlier: this one is the second, so it
  stops with :class:`RivalOrchestrator` (the CLI exits 1 with the message);
* a **retained** status of an earlier instance, found on a *re*connect after this one had
  already announced itself: the other wrote the topic since, so it was connected in between
  — the same-client-id case, where the two never see each other online, only each other's
  wills after every takeover; this one yields too;
* the will of a previous run found at start (``supersede``, routine after every crash) and
  anything else (``reassert``: a later instance's status, a late will arriving live): this
  one says ``online`` again, so the retained status is its own.

Documents are republished only after the status check (:meth:`Presence.check`), so a second
orchestrator found at connect publishes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Literal

from edgefleet_protocol import OrchestratorStatus, ProtocolError, TopicKind, Topics, decode
from edgefleet_protocol.session import InboundMessage, Publication, Session

log = logging.getLogger("edgefleet.orchestrator")

Verdict = Literal["ignore", "supersede", "reassert", "yield"]


class RivalOrchestrator(Exception):
    """Another orchestrator serves this broker and root; this one must stop."""


def judge(
    mine: OrchestratorStatus, other: OrchestratorStatus, *, retained: bool, announced: bool
) -> Verdict:
    """What this orchestrator (``mine``) does about ``other``'s status. ``announced``: this
    one had published ``online`` on an earlier connection (see the module docstring)."""
    if other.instance is None or other.instance == mine.instance:
        return "ignore"
    older = (other.since, other.instance) < (mine.since, mine.instance or "")
    if older and (other.state == "online" or (retained and announced)):
        return "yield"
    if older and retained and other.state == "offline":
        return "supersede"  # the will of a previous run, found at start: routine
    return "reassert"


class Presence:
    """Publishes this orchestrator's status and judges every other one it sees."""

    def __init__(
        self, topics: Topics, *, since: float, version: str, sealing_key: str | None = None
    ) -> None:
        self.sealing_key = sealing_key
        self.instance = uuid.uuid4().hex[:16]
        self._topics = topics
        self._session: Session | None = None
        self._since = since
        self._version = version
        self._announced_on: int | None = None  # the connection number of the first online
        self._seen = asyncio.Event()
        self._seen_on = 0  # the connection number on which a status was last seen
        self.rival: str | None = None

    def status(self, state: Literal["online", "offline"]) -> OrchestratorStatus:
        return OrchestratorStatus(
            state=state, since=self._since, version=self._version, instance=self.instance,
            sealing_key=self.sealing_key,
        )  # fmt: skip

    def publication(self, state: Literal["online", "offline"]) -> Publication:
        topic = self._topics.orchestrator_status()
        return Publication.of(TopicKind.ORCHESTRATOR_STATUS, topic, self.status(state))

    def bind(self, session: Session) -> None:
        """The session this presence speaks on (created after it: the will is ours)."""
        self._session = session

    @property
    def session(self) -> Session:
        assert self._session is not None, "Presence.bind(session) first"
        return self._session

    async def announce(self) -> None:
        await self.session.publish(self.publication("online"))
        if self._announced_on is None:
            self._announced_on = self.session.stats.connects

    async def check(self, timeout_s: float) -> bool:
        """After a (re)connect: wait up to ``timeout_s`` until a status has come in on this
        connection (the retained one, else our own ``online`` coming back); ``False`` when
        a rival was found (publish nothing more)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._seen_on < self.session.stats.connects and self.rival is None:
                    self._seen.clear()
                    await self._seen.wait()
        return self.rival is None

    async def on_status(self, message: InboundMessage) -> None:
        """Judge one status message. Raises :class:`RivalOrchestrator` to stop this one."""
        self._seen_on = self.session.stats.connects
        self._seen.set()
        if not message.payload:
            return
        try:
            other = decode(OrchestratorStatus, message.payload)
        except ProtocolError:
            return  # only orchestrators may write it (ACL); nothing to judge
        announced = (
            self._announced_on is not None and self._announced_on < self.session.stats.connects
        )
        verdict = judge(self.status("online"), other, retained=message.retain, announced=announced)
        if verdict == "supersede":
            log.info("the previous run's will (instance %s) was retained; online again",
                     other.instance)  # fmt: skip
            await self.session.publish(self.publication("online"))
        elif verdict == "reassert":
            log.warning(
                "another orchestrator instance %s wrote our status; reasserting", other.instance
            )
            await self.session.publish(self.publication("online"))
        elif verdict == "yield":
            self.rival = (
                f"another orchestrator (instance {other.instance}, version {other.version or '?'},"
                f" started at {other.since:.0f}) serves {self._topics.root} on this broker;"
                " this one stops. If that one has crashed, its will marks it offline within"
                " 1.5 x its keepalive: start this one again then."
            )
            raise RivalOrchestrator(self.rival)
