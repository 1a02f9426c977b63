"""The agent's trust checks, run before admission: is this desired document signed by a
key the gateway trusts, for this node, and newer than what it holds? Pure: the trust
anchor, the held document and the payload come in as values; a verdict goes out. The
service persists what a verdict changes (a rotated key) in the local store."""
