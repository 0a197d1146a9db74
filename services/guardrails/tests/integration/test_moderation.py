"""The moderation check against an OpenAI-shaped /v1/moderations on a real port (the gateway
serves that route; this fake answers in OpenAI's shape and checks what it is sent), and its
keyword lists as a warn-only signal when no endpoint is configured."""

from __future__ import annotations

from dataclasses import replace

import pytest
from aiohttp import web

from switchboard_common.errors import ServiceUnavailable

from switchboard_guardrails import checks, scanning
from switchboard_guardrails.checks.moderation import CATEGORIES, ModerationClient
from switchboard_guardrails.domain import Action, Rule
from switchboard_guardrails.scanning import CompiledRule

KEY = "sk-sb-moderation-test"


def result(flagged: set[str]) -> dict:
    return {"flagged": bool(flagged), "categories": {c: c in flagged for c in CATEGORIES},
            "category_scores": {c: 0.97 if c in flagged else 0.01 for c in CATEGORIES}}


@pytest.fixture
async def moderations():
    seen: list[dict] = []

    async def handle(request: web.Request) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return web.json_response({"error": {"message": "bad key", "type": "invalid_request_error",
                                                "param": None, "code": "invalid_api_key"}}, status=401)
        body = await request.json()
        assert set(body) == {"model", "input"} and isinstance(body["input"], list)
        seen.append(body)
        return web.json_response({"id": "modr-1", "model": body["model"], "results": [
            result({"violence", "violence/graphic"} if "fight" in text else set()) for text in body["input"]]})

    app = web.Application()
    app.router.add_post("/v1/moderations", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}/v1", seen
    await runner.cleanup()


def compiled(toolkit, rule: Rule) -> list[CompiledRule]:
    assert checks.validate(rule, "input_rules[0]", toolkit) is not None
    return [CompiledRule("pol_m", rule, checks.build(rule, toolkit))]


async def test_the_endpoint_decides_with_one_call_per_request(toolkit, moderations):
    url, seen = moderations
    client = ModerationClient(url, KEY, "omni-moderation-latest", 5)
    with_endpoint = replace(toolkit, moderation=client)
    rules = compiled(with_endpoint, Rule("moderation", Action.BLOCK, {"categories": ["violence"]}))
    verdict = await scanning.check_input(rules, [{"role": "user", "content": "hello"},
                                                 {"role": "user", "content": "describe the fight"}])
    await client.close()
    assert verdict.action is Action.BLOCK
    assert [(f.message_index, f.entity) for f in verdict.findings] == [(1, "violence")]
    assert seen == [{"model": "omni-moderation-latest", "input": ["hello", "describe the fight"]}]


async def test_an_unreachable_endpoint_is_a_503_not_a_pass(toolkit, moderations):
    url, _ = moderations
    client = ModerationClient(url, "sk-wrong", "omni-moderation-latest", 5)
    rules = compiled(replace(toolkit, moderation=client), Rule("moderation", Action.BLOCK))
    with pytest.raises(ServiceUnavailable):
        await scanning.check_input(rules, [{"role": "user", "content": "hi"}])
    await client.close()


async def test_without_an_endpoint_keywords_only_warn(toolkit):
    rules = compiled(toolkit, Rule("moderation", Action.WARN))
    verdict = await scanning.check_input(rules, [{"role": "user", "content": "how do I build a bomb"}])
    assert verdict.action is Action.WARN
    assert [(f.entity, f.action) for f in verdict.findings] == [("illicit/violent", Action.WARN)]


def test_without_an_endpoint_a_blocking_moderation_rule_is_refused(toolkit):
    with pytest.raises(Exception, match="MODERATION_BASE_URL"):
        checks.validate(Rule("moderation", Action.BLOCK), "input_rules[0]", toolkit)
