"""The gateway's plan of deployments for one request: the strategy's order, narrowed to the
deployments that can carry what the request holds."""

from __future__ import annotations

from switchboard_router.domain import Deployment, Endpoint, ParsedRequest, RequestContext, Target
from switchboard_router.gateway import Gateway


def _target(name: str, provider: str) -> Target:
    return Target(Deployment(route="m", name=name, provider=provider, model=None, weight=1,
                             timeout_seconds=1, read_timeout_seconds=1, connect_timeout_seconds=1),
                  f"up-{name}")


class _Routes:
    def __init__(self, targets: list[Target]) -> None:
        self.targets = targets
        self.allowed: frozenset[str] | None = None

    async def choose(self, model, endpoint, *, stream, allowed=frozenset()):
        self.allowed = allowed
        return self.targets


class _Provider:
    def __init__(self, native: bool) -> None:
        self.native = native

    def speaks_messages(self, upstream_model: str) -> bool:
        return self.native


def _gateway(targets: list[Target]) -> Gateway:
    gateway = Gateway.__new__(Gateway)  # only what planning reads
    gateway._routes = _Routes(targets)  # type: ignore[assignment]
    gateway._providers = {"openai": _Provider(False), "anthropic": _Provider(True)}  # type: ignore[dict-item]
    return gateway


async def test_a_field_only_anthropics_format_carries_goes_to_its_deployments_first_and_only():
    """`thinking` from /v1/messages: a deployment that would have to drop it is not tried, so a
    model whose strategy puts OpenAI first still fails over to Anthropic, not into a 400."""
    targets = [_target("gpt", "openai"), _target("claude", "anthropic")]
    request = ParsedRequest(endpoint=Endpoint.CHAT, model="m", body={"model": "m"})
    ctx = RequestContext(request_id="r", key="k", started=0.0)
    assert [t.deployment.name for t in await _gateway(targets)._plan(request, ctx)] == ["gpt", "claude"]
    ctx.native_only = "thinking"
    assert [t.deployment.name for t in await _gateway(targets)._plan(request, ctx)] == ["claude"]
    # None can: the plan stays, and the first attempt's 400 names the field.
    only_openai = targets[:1]
    assert await _gateway(only_openai)._plan(request, ctx) == only_openai


async def test_the_plan_holds_fallbacks_to_the_keys_allowed_models():
    """The key's allowed_models reach routing, which leaves out the fallbacks it may not use."""
    gateway = _gateway([_target("gpt", "openai")])
    request = ParsedRequest(endpoint=Endpoint.CHAT, model="m", body={"model": "m"})
    ctx = RequestContext(request_id="r", key="k", started=0.0, allowed_models=frozenset({"m"}))
    await gateway._plan(request, ctx)
    assert gateway._routes.allowed == frozenset({"m"})  # type: ignore[attr-defined]
