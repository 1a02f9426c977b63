"""edgefleet's edge agent: runs on each gateway, applies its desired state, reports back.
Rooms: ``core`` (pure decisions), ``runtimes`` (Docker, processes, simulated), ``service``
(the MQTT loop and wiring), ``simulate`` (a fleet in one process); ``store`` and
``settings`` beside them.
"""

__version__ = "0.1.0"
