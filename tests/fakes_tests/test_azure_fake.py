"""The fake Azure OpenAI resource checked by the openai SDK's own Azure client (classic API) and
plain client (v1 API): paths, api-version, keys, and Azure's stream annotations."""

from __future__ import annotations

import httpx
import openai
import pytest
from aiohttp import web

from tests.fakes.azure_fake import AzureApp


@pytest.fixture
async def endpoint():
    runner = web.AppRunner(AzureApp().application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    await runner.cleanup()


async def test_the_azure_client_reaches_a_deployment(endpoint):
    client = openai.AsyncAzureOpenAI(azure_endpoint=endpoint, api_key="az-key", api_version="2024-10-21",
                                     max_retries=0)
    reply = await client.chat.completions.create(model="my-gpt", messages=[{"role": "user", "content": "hi"}])
    assert reply.model == "my-gpt" and reply.choices[0].message.content == "Echo: hi"
    chunks = [c async for c in await client.chat.completions.create(
        model="my-gpt", stream=True, messages=[{"role": "user", "content": "trigger_filter me"}])]
    assert chunks[0].choices == [] and chunks[0].model_extra["prompt_filter_results"]
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    bad = openai.AsyncAzureOpenAI(azure_endpoint=endpoint, api_key="az-key", api_version="1999-01-01",
                                  max_retries=0)
    with pytest.raises(openai.BadRequestError):
        await bad.chat.completions.create(model="my-gpt", messages=[{"role": "user", "content": "hi"}])


async def test_the_v1_api_takes_the_key_as_bearer(endpoint):
    client = openai.AsyncOpenAI(base_url=f"{endpoint}/openai/v1", api_key="az-key", max_retries=0)
    reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "v1"}])
    assert reply.choices[0].message.content == "Echo: v1"
    async with httpx.AsyncClient() as http:
        keyless = await http.post(f"{endpoint}/openai/v1/chat/completions",
                                  json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "401"
