"""Training and evaluation of the guardrails checks on sets that ship in PyPI wheels: run by
`make guardrails-train` and `make eval`, never by the service."""
