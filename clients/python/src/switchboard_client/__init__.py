"""Switchboard's Python gRPC client: typed stubs of every `switchboard.*.v1` API (importable as
`switchboard.gateway.v1.gateway_pb2` and friends) and a small sync and async client."""

from switchboard_client._requests import SwitchboardError
from switchboard_client.aio import AsyncSwitchboard
from switchboard_client.client import Switchboard

__all__ = ["AsyncSwitchboard", "Switchboard", "SwitchboardError"]
