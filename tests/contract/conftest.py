"""Fixtures: the generated descriptor set, refused when missing or older than the protos."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2

from tests.contract import protoset


@pytest.fixture(scope="session")
def fds() -> descriptor_pb2.FileDescriptorSet:
    # A stale descriptor set would test yesterday's protos and pass: fail loudly instead.
    if reason := protoset.stale_reason():
        pytest.fail(reason)
    return protoset.load()
