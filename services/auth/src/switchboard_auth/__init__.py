"""Switchboard auth: tenants, virtual keys stored as keyed hashes, and admission verdicts."""
