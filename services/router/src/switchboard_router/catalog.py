"""Vendors that speak OpenAI's wire format: data, not code (base URL, key variable, quirks).

A provider in switchboard.yaml names one with `vendor: groq`; whatever it leaves out (type, base_url,
api_key) comes from here, and `<VENDOR>_BASE_URL` / the key variable in the environment fill it in.
Adding a vendor is adding a line.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Vendor:
    base_url: str
    key_env: str | None  # None: no key needed (self-hosted servers)
    base_url_env: str
    type: str = "openai"  # the adapter (wire format) it speaks
    # Whether it accepts stream_options.include_usage. Where unsure we do not send it and count
    # the stream's tokens ourselves instead of risking a 400.
    stream_usage: bool = True
    owned_by: str = ""


def _v(name: str, base_url: str, key_env: str | None, **quirks) -> tuple[str, Vendor]:
    return name, Vendor(base_url=base_url, key_env=key_env, base_url_env=f"{name.upper()}_BASE_URL",
                        owned_by=name, **quirks)


VENDORS: dict[str, Vendor] = dict([
    # https://platform.openai.com/docs/api-reference
    _v("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
    # https://console.groq.com/docs/openai
    _v("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY"),
    # https://docs.together.ai/docs/openai-api-compatibility
    _v("together", "https://api.together.xyz/v1", "TOGETHER_API_KEY"),
    # https://api-docs.deepseek.com/
    _v("deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY"),
    # https://docs.mistral.ai/api/ (reports usage on the last chunk without being asked)
    _v("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", stream_usage=False),
    # https://docs.x.ai/docs/api-reference
    _v("xai", "https://api.x.ai/v1", "XAI_API_KEY"),
    # https://docs.fireworks.ai/tools-sdks/openai-compatibility
    _v("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY"),
    # https://openrouter.ai/docs/api-reference/overview
    _v("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY"),
    # https://docs.perplexity.ai/api-reference/chat-completions (usage on every chunk)
    _v("perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY", stream_usage=False),
    # https://inference-docs.cerebras.ai/resources/openai
    _v("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    # Self-hosted OpenAI-compatible servers: no key.
    _v("ollama", "http://127.0.0.1:11434/v1", None),  # https://ollama.com/blog/openai-compatibility
    _v("vllm", "http://127.0.0.1:8000/v1", None),  # https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html
    _v("lmstudio", "http://127.0.0.1:1234/v1", None),
])
