"""Provider adapters, named after the wire format they speak. This registry is the one place that
lists them; vendors that speak an existing format are catalog data (catalog.py), not adapters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard_router.providers.base import Provider

if TYPE_CHECKING:
    from switchboard_router.config import ProviderSpec
    from switchboard_router.tokens import Tokenizer
    from switchboard_router.upstream import Upstream


def _openai(spec: ProviderSpec, upstream: Upstream, tokenizer: Tokenizer) -> Provider:
    from switchboard_router.providers import openai_compatible
    from switchboard_router.providers.remote import OpenAICompatibleProvider

    wire = openai_compatible.wire(spec.base_url, spec.api_key, spec.headers, spec.stream_usage)
    return OpenAICompatibleProvider(wire, upstream)


def _local(spec: ProviderSpec, upstream: Upstream, tokenizer: Tokenizer) -> Provider:
    from switchboard_router.providers.local import LocalProvider

    return LocalProvider(tokenizer)


@dataclass(frozen=True, slots=True)
class Adapter:
    build: Callable[[ProviderSpec, Upstream, Tokenizer], Provider]
    remote: bool  # reached over HTTP: needs a base_url
    needs_key: bool  # disabled while its api_key is empty
    owned_by: str = ""  # what /v1/models says owns its models, unless the provider says otherwise


ADAPTERS: dict[str, Adapter] = {
    "openai": Adapter(build=_openai, remote=True, needs_key=True),
    "local": Adapter(build=_local, remote=False, needs_key=False, owned_by="switchboard"),
}


def build(spec: ProviderSpec, upstream: Upstream, tokenizer: Tokenizer) -> Provider:
    return ADAPTERS[spec.type].build(spec, upstream, tokenizer)
