"""Switchboard billing: usage stored exactly once from JetStream and spend queries over it."""
