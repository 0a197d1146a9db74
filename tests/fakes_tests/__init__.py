"""Tests of the fakes themselves, so e2e failures can be trusted to be the gateway's."""
