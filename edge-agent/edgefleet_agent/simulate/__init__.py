"""``edgefleet-agent simulate``: a fleet of real agents in one process, with device profiles,
a per-node link that can be cut, and faults on a schedule or on command.
"""
