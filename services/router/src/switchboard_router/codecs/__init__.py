"""Wire formats as pure functions of bytes: the SSE framing now; the provider codecs (OpenAI,
Anthropic, Gemini, Bedrock's event stream) join it here as they are written."""
