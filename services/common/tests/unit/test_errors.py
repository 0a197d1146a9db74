"""Error messages stay small enough for a gRPC trailer, whatever value a client sends."""

from __future__ import annotations

from switchboard_common.errors import (
    CLIP_CHARS,
    MAX_MESSAGE_CHARS,
    InvalidRequest,
    NotFound,
    clip,
)


def test_clip_keeps_short_values_and_says_how_much_it_cut():
    assert clip("gpt-4o") == "gpt-4o"
    assert clip(5) == "5"
    cut = clip("m" * 150_000)
    assert cut.startswith("m" * CLIP_CHARS) and cut.endswith(f"({150_000 - CLIP_CHARS} more characters)")
    assert len(cut) < CLIP_CHARS + 40


def test_a_huge_echoed_value_is_clipped_where_it_is_quoted():
    # Raisers quote what they echo; a 150 KB model name made a trailer Envoy refused (502).
    err = NotFound(f"The model '{'m' * 150_000}' does not exist or is not served by this gateway.",
                   param="model")
    assert len(err.message) < 400
    assert err.message.endswith("' does not exist or is not served by this gateway.")
    assert "more characters" in err.message
    assert dict(err.trailing_metadata())["x-error-param"] == "model"


def test_every_message_and_param_is_capped():
    err = InvalidRequest("x" * 100_000 + " unquoted", param="p" * 100_000)
    assert len(err.message) <= MAX_MESSAGE_CHARS + 40
    assert len(err.param) < 300
    assert len(str(err)) == len(err.message)
    assert sum(len(k) + len(v) for k, v in err.trailing_metadata()) < 1000
    assert err.to_openai()["error"]["message"] == err.message


def test_ordinary_messages_are_untouched():
    message = "Invalid value: 'robot'. Supported values are: 'user' and 'system'."
    assert InvalidRequest(message, param="messages[0].role").message == message


def test_a_param_holding_any_character_can_travel_as_a_trailer():
    for key in ("caf\u00e9", "a\nb", "\x00", "\U0001f600", "tab\there"):
        value = dict(InvalidRequest("Invalid 'logit_bias'.", param=f"logit_bias.{key}")
                     .trailing_metadata())["x-error-param"]
        assert value.isascii() and value.isprintable() and value.startswith("logit_bias.")
    assert dict(InvalidRequest("x", param="messages[0].role").trailing_metadata())[
        "x-error-param"] == "messages[0].role"
