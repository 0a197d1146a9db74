"""Switchboard's router: the public gateway API behind the Envoy edge."""
