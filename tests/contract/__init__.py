"""Tests of the contracts between services: protos, REST bindings, events, deploy manifests."""
