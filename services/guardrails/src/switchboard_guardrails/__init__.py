"""The guardrails service: policies, and the checks that apply them to requests and streamed output."""
