"""edgefleet's control plane. Rooms, bottom up: ``placement`` and ``fleet`` (pure), then
``scaling`` and ``reconcile`` (pure), ``store`` (state), ``service`` (the MQTT shell) and
``cli`` (``edgefleet orchestrator run``); ``demo`` stands beside them.
"""

__version__ = "0.1.0"
