"""Failure hooks of the fake OpenAI API: errors, delays, hangs, dropped connections and huge
streams on request, and a log of how tagged requests ended (for tests of a client going away).

A request asks for them, comma-separated, in any of three places: the `x-fake-behavior` header, a
model suffix after `+` (`gpt-4o-mini+error-429`), or a `[fake:...]` marker in the last user
message. The last two survive a gateway that drops unknown headers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.fakes.openai_validation import InvalidRequest

BEHAVIOR_HEADER = "x-fake-behavior"
MODEL_SEPARATOR = "+"
_MARKER = re.compile(r"\[fake:([^\]]+)\]")
_TAG = re.compile(r"[A-Za-z0-9_-]{1,64}")

# status -> (message, type, code) as api.openai.com words them; {model} is filled in.
# https://platform.openai.com/docs/guides/error-codes
ERRORS = {
    400: ("Fake invalid request (x-fake-behavior: error-400).", "invalid_request_error", None),
    401: ("Incorrect API key provided: sk-fake. You can find your API key at "
          "https://platform.openai.com/account/api-keys.", "invalid_request_error",
          "invalid_api_key"),
    403: ("Country, region, or territory not supported", "request_forbidden",
          "unsupported_country_region_territory"),
    404: ("The model `{model}` does not exist or you do not have access to it.",
          "invalid_request_error", "model_not_found"),
    429: ("Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
          "Limit 3, Used 3, Requested 1. Please try again in 1s. Visit "
          "https://platform.openai.com/account/rate-limits to learn more.",
          "requests", "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
}
# context-too-long: OpenAI's 400 for a prompt past the model's window (a context-window fallback's
# trigger).
CONTEXT_TOO_LONG = ("This model's maximum context length is 128000 tokens. However, your messages "
                    "resulted in 131072 tokens. Please reduce the length of the messages.",
                    "invalid_request_error", "context_length_exceeded")
# A 429 tells the client when to come back, as OpenAI's does.
RETRY_HEADERS = {"retry-after": "1", "x-ratelimit-remaining-requests": "0"}


@dataclass(frozen=True)
class Behavior:
    """What to do instead of (or on top of) answering normally."""

    status: int | None = None  # error-<status>: answer with OpenAI's error for it
    delay: float = 0.0         # slow-<ms>: seconds before the response and between stream events
    hang: bool = False         # hang: never answer, until the fake closes
    abort: bool = False        # abort-mid-stream: two events (or half the body), then close
    size: int = 0              # size-<bytes>: a streamed chat answer of about this many bytes
    tag: str = ""              # tag-<name>: log how the request ended, at GET /_fake/requests/<name>
    echo_all: bool = False     # echo-all: echo every message ("role: text | ..."), to show what was sent
    flaky: int = 0             # flaky-<percent>: OpenAI's 500 for about this share of calls, at random
    too_long: bool = False     # context-too-long: OpenAI's 400 context_length_exceeded

    @classmethod
    def parse(cls, spec: str) -> Behavior:
        status, delay, hang, abort, size, tag, echo_all = None, 0.0, False, False, 0, "", False
        flaky, too_long = 0, False
        for word in filter(None, (w.strip() for w in spec.split(","))):
            kind, _, arg = word.partition("-")
            if kind == "error" and arg.isdigit() and int(arg) in ERRORS:
                status = int(arg)
            elif kind == "slow" and arg.isdigit():
                delay = int(arg) / 1000
            elif kind == "size" and arg.isdigit():
                size = int(arg)
            elif kind == "flaky" and arg.isdigit() and 0 < int(arg) <= 100:
                flaky = int(arg)
            elif kind == "tag" and _TAG.fullmatch(arg):
                tag = arg
            elif word == "hang":
                hang = True
            elif word == "abort-mid-stream":
                abort = True
            elif word == "echo-all":
                echo_all = True
            elif word == "context-too-long":
                too_long = True
            else:
                # A typo must fail loudly, not silently test the happy path.
                raise InvalidRequest(
                    f"Unknown fake behavior '{word}'; expected error-<status> (one of "
                    f"{', '.join(map(str, ERRORS))}), slow-<ms>, hang, abort-mid-stream, "
                    "size-<bytes>, flaky-<percent>, tag-<name>, echo-all or context-too-long.",
                    BEHAVIOR_HEADER)
        return cls(status, delay, hang, abort, size, tag, echo_all, flaky, too_long)


NORMAL = Behavior()


def requested_behavior(header: str, model: object, text: str) -> tuple[object, Behavior]:
    """The model name without its hook suffix, and the hooks asked for in all three places."""
    specs = [header]
    if isinstance(model, str) and MODEL_SEPARATOR in model:
        model, _, suffix = model.partition(MODEL_SEPARATOR)
        specs.append(suffix.replace(MODEL_SEPARATOR, ","))
    if "[fake:" in text:
        specs += _MARKER.findall(text)
    spec = ",".join(filter(None, specs))
    return model, (Behavior.parse(spec) if spec else NORMAL)
