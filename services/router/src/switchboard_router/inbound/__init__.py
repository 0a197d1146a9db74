"""Other vendors' inbound APIs, served by translating them to Chat Completions: the gateway's one
request path (admission, limits, budgets, guardrails, usage) then serves them for any model."""
