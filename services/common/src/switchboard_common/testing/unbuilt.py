"""The scenarios every service passes while its RPCs are not built yet, written once.

A service's test module sets `SERVICE` (its proto service descriptor) and imports these names,
so pytest collects them there: the process starts and serves health and reflection, every RPC
answers an honest 501 naming what is missing and the service's README, and SIGTERM exits cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from google.protobuf.descriptor import ServiceDescriptor

from switchboard_common.testing.processes import (ServiceProcess, call_expecting_error,
                                                  reflected_services, running_service)

Running = tuple[ServiceProcess, grpc.Channel]


def _name(service: ServiceDescriptor) -> str:
    return service.file.package.split(".")[1]  # switchboard.<name>.v1


@contextmanager
def _running(service: ServiceDescriptor, data_dir: Path) -> Iterator[Running]:
    with (running_service(_name(service), service.full_name, data_dir) as process,
          grpc.insecure_channel(process.target) as channel):
        yield process, channel


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "method" in metafunc.fixturenames:
        methods = list(metafunc.module.SERVICE.methods)
        metafunc.parametrize("method", methods, ids=[m.name for m in methods])


@pytest.fixture(scope="module")
def service(request, tmp_path_factory) -> Iterator[Running]:
    """One running service shared by a module's read-only tests."""
    descriptor = request.module.SERVICE
    with _running(descriptor, tmp_path_factory.mktemp(_name(descriptor))) as running:
        yield running


@pytest.fixture
def own_service(request, tmp_path) -> Iterator[Running]:
    """A running service for one test that stops it."""
    with _running(request.module.SERVICE, tmp_path) as running:
        yield running


def test_reflection_lists_the_service(request, service):
    _, channel = service
    names = reflected_services(channel)
    assert request.module.SERVICE.full_name in names
    assert "grpc.health.v1.Health" in names


def test_every_rpc_answers_501_naming_what_is_missing(request, service, method):
    _, channel = service
    error = call_expecting_error(channel, method)
    # (key, value) pairs at run time; the stubs call them _Metadatum with bytes values.
    trailers: dict[str, Any] = dict(cast(Any, error.trailing_metadata()) or ())
    details = error.details() or ""
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED
    assert trailers.get("x-http-status") == "501"
    assert trailers.get("x-error-type") == "not_implemented"
    assert "not built yet" in details
    assert f"services/{_name(request.module.SERVICE)}/README.md" in details


def test_sigterm_exits_cleanly(own_service):
    process, _ = own_service
    assert process.stop(timeout=8) == 0, process.logs()
    events = [e["event"] for e in process.events()]
    assert [e for e in events if e in ("serving", "draining", "stopped")] == [
        "serving", "draining", "stopped"]
