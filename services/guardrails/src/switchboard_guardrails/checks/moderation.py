"""The `moderation` check: OpenAI's /v1/moderations (through the gateway, or any compatible base
URL) where one is configured, in OpenAI's category names; keyword lists as a warn-only signal
where it is not (nothing offline measured here is a usable harm classifier)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal, cast

import aiohttp
import orjson
import regex
from pydantic import Field

from switchboard_common.errors import ServiceUnavailable

from switchboard_guardrails.checks.base import Check, Detector, Options, Scope, Toolkit
from switchboard_guardrails.checks.patterns import keyword_source
from switchboard_guardrails.domain import Action, Match

Category = Literal["harassment", "harassment/threatening", "hate", "hate/threatening", "illicit",
                   "illicit/violent", "self-harm", "self-harm/intent", "self-harm/instructions",
                   "sexual", "sexual/minors", "violence", "violence/graphic"]
CATEGORIES: tuple[str, ...] = Category.__args__  # type: ignore[attr-defined]
# A warn signal only: phrases that mostly mean the category, never a verdict on their own.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "harassment/threatening": ("i will kill you", "i'm going to kill you", "you will regret this",
                               "i know where you live", "watch your back"),
    "self-harm": ("kill myself", "end my life", "want to die", "hurt myself", "suicide"),
    "self-harm/instructions": ("how to kill myself", "painless way to die", "how many pills to overdose"),
    "violence": ("shoot up the", "blow up the", "stab him", "stab her", "murder them", "massacre"),
    "illicit": ("buy cocaine", "cook meth", "launder money", "make a fake id", "counterfeit money"),
    "illicit/violent": ("build a bomb", "make a pipe bomb", "make explosives", "untraceable gun"),
}


class ModerationOptions(Options):
    categories: list[Category] = Field(default_factory=lambda: cast(list[Category], list(CATEGORIES)),
                                       min_length=1)
    # A category counts when its score reaches this; default: when OpenAI flags it.
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] | None = None


class ModerationClient:
    """POST {base_url}/moderations with every text of a request in one call."""

    def __init__(self, base_url: str, api_key: str, model: str, timeout_seconds: float) -> None:
        self._url = base_url.rstrip("/") + "/moderations"
        self._headers = {"authorization": f"Bearer {api_key}", "content-type": "application/json"}
        self._model = model
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def classify(self, texts: Sequence[str]) -> list[dict]:
        """One result per text: {"flagged", "categories", "category_scores"} as OpenAI sends them."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        body = orjson.dumps({"model": self._model, "input": list(texts)})
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as response:
                payload = await response.read()
                if response.status != 200:
                    raise ServiceUnavailable(f"moderation answered {response.status}",
                                             code="moderation_unavailable")
        except (aiohttp.ClientError, TimeoutError):
            raise ServiceUnavailable("moderation is unreachable", code="moderation_unavailable") from None
        results = orjson.loads(payload).get("results")
        if not isinstance(results, list) or len(results) != len(texts):
            raise ServiceUnavailable("moderation answered an unexpected shape",
                                     code="moderation_unavailable")
        return results

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class ModerationDetector(Detector):
    scope = Scope.REQUEST  # one call for every text of the request

    def __init__(self, client: ModerationClient | None, options: ModerationOptions) -> None:
        super().__init__("moderation")
        self._client = client
        self._categories = tuple(options.categories)
        self._threshold = options.threshold
        words = {c: KEYWORDS[c] for c in self._categories if c in KEYWORDS}
        self._keywords = [(c, regex.compile(keyword_source(w), regex.IGNORECASE)) for c, w in words.items()]

    def find(self, text: str) -> list[Match]:
        """The keyword signal alone (warn-only)."""
        found = []
        for category, pattern in self._keywords:
            hit = pattern.search(text)
            if hit:
                found.append(Match(self.check, hit.start(), hit.end(), entity=category, score=0.0,
                                   warn_only=True))
        return found

    async def find_all(self, texts: Sequence[str],
                       third_party: Sequence[bool] = ()) -> list[list[Match]]:
        # Who wrote a text does not change this check (only the injection checks tell).
        if self._client is None or not texts:
            return [self.find(text) for text in texts]
        results = await self._client.classify(texts)
        return [self._flagged(text, result) for text, result in zip(texts, results, strict=True)]

    def _flagged(self, text: str, result: dict) -> list[Match]:
        flags, scores = result.get("categories") or {}, result.get("category_scores") or {}
        found = []
        for category in self._categories:
            score = float(scores.get(category) or 0.0)
            hit = score >= self._threshold if self._threshold is not None else bool(flags.get(category))
            if hit:
                found.append(Match(self.check, 0, len(text), entity=category, score=score))
        return found


class ModerationCheck(Check):
    name = "moderation"
    actions = frozenset({Action.BLOCK, Action.WARN})
    options = ModerationOptions

    def check_rule(self, options: ModerationOptions, action: Action, toolkit: Toolkit) -> str | None:
        if action is Action.BLOCK and toolkit.moderation is None:
            return ("moderation can block only through /v1/moderations (set "
                    "SWITCHBOARD_GUARDRAILS_MODERATION_BASE_URL); without it its keyword lists only warn")
        return None

    def build(self, options: ModerationOptions, action: Action, toolkit: Toolkit) -> Detector:
        return ModerationDetector(toolkit.moderation, options)
