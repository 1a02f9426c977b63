"""Service discovery: the endpoint catalog, decided purely.

Which replicas of a service-declaring app are endpoints right now (healthy, on an online
node, with an address their agent reported), their weights from node load, and which
retained ``services/{service}`` messages must change. The service shell
(:mod:`edgefleet_orchestrator.service.services`) publishes what :mod:`.catalog` decides.
"""
