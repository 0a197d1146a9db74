"""Provider adapters, named after the wire format they speak. This registry is the one place that
lists them; vendors that speak an existing format are catalog data (catalog.py), not adapters.

Every remote format is a codec module in `codecs/` exposing `codec(spec) -> Codec`, driven by the
one `RemoteProvider`; the registry names the module, imported only when a provider uses it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from switchboard_router.domain import ProviderSpec
from switchboard_router.providers.base import Provider

if TYPE_CHECKING:
    from switchboard_router.tokens import Tokenizer
    from switchboard_router.upstream import Upstream

Builder = Callable[[ProviderSpec, "Upstream", "Tokenizer"], Provider]


def _remote(codec_module: str) -> Builder:
    def build(spec: ProviderSpec, upstream: Upstream, tokenizer: Tokenizer) -> Provider:
        from switchboard_router.providers.remote import RemoteProvider

        module = importlib.import_module(f"switchboard_router.codecs.{codec_module}")
        return RemoteProvider(module.codec(spec), upstream, tokenizer, spec, module.codec)
    return build


def _local(spec: ProviderSpec, upstream: Upstream, tokenizer: Tokenizer) -> Provider:
    from switchboard_router.providers.local import LocalProvider

    return LocalProvider(tokenizer)


@dataclass(frozen=True, slots=True)
class Adapter:
    build: Builder | None  # None: the format is known but its codec is not built yet
    remote: bool  # reached over HTTP: needs a base_url
    needs_key: bool  # disabled while its api_key is empty
    owned_by: str = ""  # what /v1/models says owns its models, unless the provider says otherwise
    not_built: str = ""  # for build=None: why a provider of this type is refused at start
    # Settings only this format reads: a provider of another type that sets one is refused.
    reads_api_version: bool = False
    reads_region: bool = False  # AWS formats: `region`, else AWS_REGION / AWS_DEFAULT_REGION
    # Sets of environment variables any one of which enables it without an api_key: credentials
    # its own SDK's chain reads (AWS access keys, a profile).
    ambient_credentials: tuple[tuple[str, ...], ...] = ()
    api_versions: tuple[str, ...] = ()  # the values its api_version may take (empty: any)
    reads_project: bool = False  # Vertex AI's project and location
    # Its codec sends an OAuth access token as `Authorization: Bearer` (ProviderSpec.credential
    # "oauth"), so `oauth:` may be configured for it.
    takes_oauth: bool = False


ADAPTERS: dict[str, Adapter] = {
    "openai": Adapter(build=_remote("openai"), remote=True, needs_key=True, takes_oauth=True),
    # Entra ID tokens (Bearer) beside api-key keys.
    "azure": Adapter(build=_remote("azure"), remote=True, needs_key=True, reads_api_version=True,
                     takes_oauth=True),
    "anthropic": Adapter(build=_remote("anthropic"), remote=True, needs_key=True,
                         owned_by="anthropic", reads_api_version=True, takes_oauth=True),
    "local": Adapter(build=_local, remote=False, needs_key=False, owned_by="switchboard"),
    "gemini": Adapter(build=_remote("gemini"), remote=True, needs_key=True, owned_by="google",
                      reads_api_version=True, api_versions=("v1beta", "v1"), takes_oauth=True),
    "vertex": Adapter(build=_remote("vertex"), remote=True, needs_key=True, owned_by="google",
                      reads_api_version=True, api_versions=("v1", "v1beta1"), reads_project=True),
    # The api_key, when set, is a Bedrock API key (Bearer); otherwise SigV4 with botocore's chain.
    "bedrock": Adapter(build=_remote("bedrock"), remote=True, needs_key=True, owned_by="bedrock",
                       reads_region=True, ambient_credentials=(
                           ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"), ("AWS_PROFILE",),
                           # EKS service-account roles, ECS task roles
                           ("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"),
                           ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",),
                           ("AWS_CONTAINER_CREDENTIALS_FULL_URI",))),
}


def build(spec: ProviderSpec, upstream: Upstream, tokenizer: Tokenizer) -> Provider:
    builder = ADAPTERS[spec.type].build
    assert builder is not None, "config refuses providers whose codec is not built"
    return builder(spec, upstream, tokenizer)
