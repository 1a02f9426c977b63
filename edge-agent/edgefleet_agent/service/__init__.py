"""The agent's shell: the MQTT loop, the converge driver and step executor, telemetry
collection, probes and health checks, and assembling an agent from its settings.
"""
