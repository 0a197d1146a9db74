"""A provider reached over HTTP: a wire format's pure codec (codecs/) driven through the shared
upstream pool. The same driver serves every format, so timeouts, failover and stream handling
behave alike whatever the provider."""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence

import orjson

from switchboard_router.codecs.base import Codec, StreamRelay
from switchboard_router import keyring
from switchboard_router.domain import Endpoint, ProviderSpec
from switchboard_router.keyring import AllKeysExhausted, Key, KeyRing, StoredKey
from switchboard_router.oauth import TokenRefreshFailed
from switchboard_router.providers.base import Call, Reply
from switchboard_router.tokens import Tokenizer, in_worker
from switchboard_router.upstream import Attempt, Upstream, UpstreamStream


class RemoteProvider:
    def __init__(self, codec: Codec, upstream: Upstream, tokenizer: Tokenizer,
                 spec: ProviderSpec | None = None,
                 make_codec: Callable[[ProviderSpec], Codec] | None = None) -> None:
        self._codec = codec
        self.endpoints = codec.endpoints
        # Codecs whose credentials need I/O (an OAuth token to fetch or refresh, AWS credentials
        # to resolve or refresh before signing) do it here,
        # awaited before each request is built, so request() itself stays pure.
        self._authorize = getattr(codec, "authorize", None)
        self._upstream = upstream
        self._tokenizer = tokenizer
        self._spec = spec
        self._make_codec = make_codec
        # Several keys (api_keys, stored ones): each attempt uses the codec built with the key it
        # picks, and a key the provider refuses (401/403/429) gives way to the next in the call.
        self.keyring: KeyRing[Codec] | None = None
        if spec is not None and make_codec is not None:
            self.keyring = keyring.build(spec, make_codec)

    def speaks_messages(self, upstream_model: str) -> bool:
        """Whether this provider takes Anthropic's /v1/messages bodies as they are for this model."""
        speaks = getattr(self._codec, "speaks_messages", None)
        return speaks is not None and speaks(upstream_model)

    async def count_message_tokens(self, call: Call) -> bytes | None:
        """The provider's own count for a count_tokens body (call.native), as its JSON; None
        when its codec has no counting endpoint."""
        if getattr(self._codec, "count_request", None) is None:
            return None
        assert call.native is not None, "a count is asked for a native body"
        failures: list[TokenRefreshFailed] = []
        for codec, key in self._keys(failures):
            if not await self._authorized(codec, key, failures):
                continue
            url, headers, data = codec.count_request(call.native, call.upstream_model,  # type: ignore[attr-defined]
                                                     call.betas)
            status, retry_after, body = await self._upstream.post(url, headers, data, _attempt(call))
            if status >= 300:
                if self._refused(key, status, retry_after):
                    continue
                raise codec.error(status, body, retry_after)
            # A provider whose count is not in Anthropic's shape (Bedrock's CountTokens) says so.
            translate = getattr(codec, "count_answer", None)
            return translate(body) if translate is not None else body
        raise AssertionError("the key ring raises when no key is left")

    def install_stored(self, stored: Sequence[StoredKey]) -> None:
        """The keys stored through /api/credentials for this provider, now (each call replaces the
        last; the keys of switchboard.yaml stay first)."""
        assert self._spec is not None and self._make_codec is not None, "built by providers.build"
        self.keyring = keyring.build(self._spec, self._make_codec, stored, previous=self.keyring)

    def _keys(self, failures: list[TokenRefreshFailed]) -> Iterator[tuple[Codec, Key[Codec] | None]]:
        """The codec of each attempt of one call, with the key it carries (None: the one key).
        When no key is left and an OAuth key's refresh failed, that failure is the answer."""
        if self.keyring is None:
            yield self._codec, None
            return
        try:
            for key in self.keyring.attempts():
                yield key.codec, key
        except AllKeysExhausted:
            if failures:
                raise failures[-1] from None
            raise

    async def _authorized(self, codec: Codec, key: Key[Codec] | None,
                          failures: list[TokenRefreshFailed]) -> bool:
        """Its credentials made valid; False (the next key is tried) when an OAuth key's token
        could not be refreshed."""
        authorize = self._authorize if codec is self._codec else getattr(codec, "authorize", None)
        if authorize is None:
            return True
        try:
            await authorize()
        except TokenRefreshFailed as exc:
            if key is None:
                raise
            failures.append(exc)
            return False
        return True

    def _refused(self, key: Key[Codec] | None, status: int, retry_after: str | None) -> bool:
        """Whether this error answer is about the key used (so the next key is tried)."""
        return self.keyring is not None and key is not None and \
            self.keyring.refused(key, status, retry_after)

    async def send(self, call: Call) -> Reply:
        failures: list[TokenRefreshFailed] = []
        for codec, key in self._keys(failures):
            if not await self._authorized(codec, key, failures):
                continue
            url, headers, data = codec.request(call)
            status, retry_after, body = await self._upstream.post(url, headers, data, _attempt(call))
            if status >= 300:
                if self._refused(key, status, retry_after):
                    continue
                raise codec.error(status, body, retry_after)
            return await self._counted(call, codec.response(call, body))
        raise AssertionError("the key ring raises when no key is left")

    async def _counted(self, call: Call, reply: Reply) -> Reply:
        """An embeddings answer whose provider counts no tokens (Gemini, Cohere on Bedrock) gets
        the gateway's count of its input, as OpenAI's answer always carries usage (the usage
        record stays marked as an estimate: reply.usage is None)."""
        if reply.usage is not None or reply.parsed is None or "usage" in reply.parsed or \
                call.endpoint is not Endpoint.EMBEDDINGS:
            return reply
        texts = call.body.get("input")
        chars = sum(len(t) for t in texts if isinstance(t, str)) if isinstance(texts, list) else \
            len(texts) if isinstance(texts, str) else 0
        count = await in_worker(chars, self._tokenizer.count_inputs, call.upstream_model, texts)
        reply.parsed["usage"] = {"prompt_tokens": count, "total_tokens": count}
        reply.data = orjson.dumps(reply.parsed)
        return reply

    def stream(self, call: Call) -> tuple[StreamRelay, AsyncGenerator[bytes, None]]:
        model, count = call.upstream_model, self._tokenizer.count
        relay = self._codec.relay(call, lambda text: count(model, text))
        return relay, self._pieces(call, relay)

    async def _pieces(self, call: Call, relay: StreamRelay) -> AsyncGenerator[bytes, None]:
        response: UpstreamStream | None = None
        failures: list[TokenRefreshFailed] = []
        try:
            for codec, key in self._keys(failures):
                if not await self._authorized(codec, key, failures):
                    continue
                url, headers, data = codec.request(call)
                response = await self._upstream.open_stream(url, headers, data, _attempt(call))
                if response.status < 300:
                    break
                body = await response.read()
                if not self._refused(key, response.status, response.retry_after):
                    raise codec.error(response.status, body, response.retry_after)
                response.finish()
                response = None
            assert response is not None, "the key ring raises when no key is left"
            started = False
            async for read in response.reads():
                out = relay.feed(read)
                if out:
                    if not started and relay.error is not None:
                        # An error event before anything reached the client (Anthropic's
                        # overloaded_error after a 200): an error of the call, so it fails over.
                        raise relay.error
                    started = True
                    yield out
                if relay.completion.busy:  # only a long stream without usage gets here
                    await relay.completion.settle()
            tail = relay.finish()
            if tail:
                yield tail
        finally:
            if response is not None:
                response.finish()
            # The usage record, made once this closes, must read an exact count.
            await relay.completion.settle()


def _attempt(call: Call) -> Attempt:
    """This attempt's timeouts: the deployment's own, cut to what is left of the request's deadline."""
    d = call.deployment
    return Attempt(total=min(d.timeout_seconds, call.deadline - time.perf_counter()),
                   connect=d.connect_timeout_seconds, read=d.read_timeout_seconds)
