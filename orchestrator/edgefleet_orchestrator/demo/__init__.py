"""``make demo``: a broker, the orchestrator and twelve real agents on this machine, driven
through the public MQTT API only. Processes, not imports: it never imports the service.
"""
