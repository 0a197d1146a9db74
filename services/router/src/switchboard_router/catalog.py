"""Provider presets: data, not code (wire format, base URL, key variable, auth header, quirks).

A provider in switchboard.yaml names one with `vendor: groq`; whatever it leaves out (type, base_url,
api_key) comes from here, and `<VENDOR>_BASE_URL` / the key variable in the environment fill it in.
A preset whose key variable is set (a keyless server: whose `<VENDOR>_BASE_URL` is set) is enabled
even when the file does not name it, with `<vendor>/<model>` routed to it (config.py).
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
    auth_header: str = "authorization"  # the header that carries the key (Bearer for authorization)
    api_version: str | None = None  # the default of Azure's api-version / anthropic-version
    api_version_env: str | None = None  # the variable the provider's own SDK reads it from
    models: tuple[str, ...] = ()  # listed by /v1/models as "<vendor>/<model>" when enabled
    alt_key_envs: tuple[str, ...] = ()  # other variables its SDK reads the key from, before key_env
    # A variable naming the models to list (comma-separated): Azure's deployments, which are the
    # customer's own, so none is listed unless named.
    models_env: str | None = None
    project_env: str | None = None  # Vertex AI's project and location, as google-genai reads them
    location_env: str | None = None


def _v(name: str, base_url: str, key_env: str | None, *, base_url_env: str | None = None,
       **quirks) -> tuple[str, Vendor]:
    return name, Vendor(base_url=base_url, key_env=key_env,
                        base_url_env=base_url_env or f"{name.upper()}_BASE_URL", owned_by=name, **quirks)


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
    # https://docs.anyscale.com/endpoints (stream_options not documented: we count ourselves)
    _v("anyscale", "https://api.endpoints.anyscale.com/v1", "ANYSCALE_API_KEY", stream_usage=False),
    # https://inference-docs.cerebras.ai/resources/openai
    _v("cerebras", "https://api.cerebras.ai/v1", "CEREBRAS_API_KEY"),
    # https://www.alibabacloud.com/help/en/model-studio/compatibility-of-openai-with-dashscope
    # (international endpoint; mainland China: https://dashscope.aliyuncs.com/compatible-mode/v1)
    _v("qwen", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_API_KEY"),
    # Self-hosted OpenAI-compatible servers: no key.
    _v("ollama", "http://127.0.0.1:11434/v1", None),  # https://ollama.com/blog/openai-compatibility
    _v("vllm", "http://127.0.0.1:8000/v1", None),  # https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html
    # https://lmstudio.ai/docs/app/api/endpoints/openai
    _v("lmstudio", "http://127.0.0.1:1234/v1", None, stream_usage=False),
    # Other wire formats.
    # https://docs.anthropic.com/en/api/messages ; ANTHROPIC_BASE_URL as the anthropic SDK reads it
    _v("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", type="anthropic",
       auth_header="x-api-key", api_version="2023-06-01",
       models=("claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5", "claude-3-5-haiku-latest")),
    # https://learn.microsoft.com/azure/ai-services/openai/reference ; the openai SDK's variables.
    # api_version "v1" selects the v1 API path (/openai/v1/..., no api-version). /v1/models lists
    # the deployments AZURE_OPENAI_DEPLOYMENTS names as azure/<deployment>.
    _v("azure", "", "AZURE_OPENAI_API_KEY", type="azure", base_url_env="AZURE_OPENAI_ENDPOINT",
       auth_header="api-key", api_version="2024-10-21", api_version_env="OPENAI_API_VERSION",
       models_env="AZURE_OPENAI_DEPLOYMENTS"),
    # https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html ; enabled
    # by a Bedrock API key or by AWS credentials (adapter's ambient_credentials); {region} from
    # `region` / AWS_REGION / AWS_DEFAULT_REGION.
    _v("bedrock", "https://bedrock-runtime.{region}.amazonaws.com", "AWS_BEARER_TOKEN_BEDROCK",
       type="bedrock",
       models=("anthropic.claude-3-5-haiku-20241022-v1:0", "anthropic.claude-3-7-sonnet-20250219-v1:0",
               "amazon.nova-pro-v1:0", "amazon.nova-lite-v1:0", "meta.llama3-1-70b-instruct-v1:0")),
    # https://ai.google.dev/api ; google-genai reads GOOGLE_API_KEY before GEMINI_API_KEY.
    # api_version v1beta (default) or v1, whose published types lack tools and system instructions.
    _v("gemini", "https://generativelanguage.googleapis.com", "GEMINI_API_KEY", type="gemini",
       alt_key_envs=("GOOGLE_API_KEY",),
       models=("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")),
    # https://cloud.google.com/vertex-ai/generative-ai/docs/reference/rest ; the "key" is a
    # google-auth credentials file's path, or an access token (GOOGLE_OAUTH_ACCESS_TOKEN, read
    # first, as Google's Terraform provider reads it): codecs/google_credentials.py.
    # api_version v1 (default) or v1beta1.
    _v("vertex", "https://aiplatform.googleapis.com", "GOOGLE_APPLICATION_CREDENTIALS", type="vertex",
       alt_key_envs=("GOOGLE_OAUTH_ACCESS_TOKEN",),
       project_env="GOOGLE_CLOUD_PROJECT", location_env="GOOGLE_CLOUD_LOCATION",
       models=("gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite")),
])
