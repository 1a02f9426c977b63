"""edgefleet's operator tool: the ``edgefleet`` command, its MQTT client and views, and the
broker-config generator. A client of the public MQTT contract only: it imports the
protocol package and never the orchestrator or the agent.
"""

__version__ = "0.1.0"
