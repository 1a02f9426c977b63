"""The orchestrator's shell: the MQTT loop, intake of node messages, command handling and
publishing. The only orchestrator room that talks to the broker; it calls the pure rooms
(fleet, placement, scaling, reconcile) and the store.
"""
