"""Which retained ``services/{service}`` messages to publish: the shell half of discovery.

:class:`ServiceBoard` remembers what it last published and turns the live state into the
publications that changed (:func:`edgefleet_orchestrator.discovery.catalog.changes`): a new
revision of a changed entry; for a service that is gone, its last empty entry and then the
clear (an empty retained payload), in that order. It publishes nothing itself; the service
calls it after passes and node messages, once node state has been replayed on start (so a
restarted orchestrator never blanks the catalog with an empty view).
"""

from __future__ import annotations

from edgefleet_protocol import ServiceEndpoints, TopicKind, Topics
from edgefleet_protocol.session import Publication, Session

from edgefleet_orchestrator.discovery.catalog import Clear, Publish, catalog, changes
from edgefleet_orchestrator.service.state import ControlState


class ServiceBoard:
    def __init__(self, topics: Topics) -> None:
        self._topics = topics
        self.published: dict[str, ServiceEndpoints] = {}

    def publications(self, state: ControlState, *, now: float) -> list[Publication]:
        """What changed since the last call, in publishing order (none, at the cost of a
        look at the manifests, while no app declares a service and none was published: the
        service asks after every node report)."""
        if not self.published and not any(
            app.service is not None and app.service_name is not None for app in state.apps.values()
        ):
            return []
        # The old copy of a replica moving make-before-break still serves until its
        # replacement runs: it stays an endpoint, so a one-replica service never goes empty.
        running = [*state.assignments, *(r.copy for r in state.control.retiring)]
        current = catalog(state.apps, running, state.registry.nodes)
        pubs: list[Publication] = []
        for change in changes(self.published, current, now=now):
            match change:
                case Publish(entry=entry):
                    topic = self._topics.service(entry.service)
                    pubs.append(Publication.of(TopicKind.SERVICE, topic, entry))
                    self.published[entry.service] = entry
                case Clear(service=service, last=last):
                    topic = self._topics.service(service)
                    pubs.append(Publication.of(TopicKind.SERVICE, topic, last))
                    pubs.append(Publication(topic=topic, payload=b"", retain=True))
                    del self.published[service]
        return pubs

    async def publish(self, session: Session, state: ControlState, *, now: float) -> None:
        """Publish :meth:`publications` one by one, in order (a last entry before its clear)."""
        for pub in self.publications(state, now=now):
            await session.publish(pub)
