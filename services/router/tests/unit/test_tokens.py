"""Token counting: offline loading from the shipped files, encodings per model, chat prompt counts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading

import pytest

from switchboard_router.domain import Endpoint
from switchboard_router.tokens import (
    INLINE_CHARS,
    chat_chars,
    encoding_name_for,
    in_worker,
    input_chars,
)

# OpenAI cookbook, "How to count tokens with tiktoken": 129 prompt tokens for gpt-4 / gpt-3.5-turbo
# and 124 for gpt-4o for these messages, as the API reports them.
COOKBOOK = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates "
                                  "corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth "
                                                          "to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about "
                                                               "how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the "
                                "client deliverable."},
]


def test_counts_offline_in_a_fresh_process(tmp_path):
    """No tiktoken cache, no route to the download URL: the shipped files must be enough."""
    script = textwrap.dedent("""
        from switchboard_router.tokens import Tokenizer
        t = Tokenizer.load()
        print(t.encoding("gpt-4o").encode_ordinary("hello world"),
              t.encoding("gpt-4").encode_ordinary("hello world"),
              t.count("gpt-4", "tiktoken is great!"))
    """)
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "empty-cache"),
           "DATA_GYM_CACHE_DIR": str(tmp_path / "empty-cache"),
           "HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9", "NO_PROXY": ""}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout.strip()
    # Token ids as tiktoken's own o200k_base / cl100k_base give them.
    assert out == "[24912, 2375] [15339, 1917] 6"
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").iterdir())


@pytest.mark.parametrize(("model", "encoding"), [
    ("gpt-4o", "o200k_base"), ("gpt-4o-mini-2024-07-18", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
    ("o1", "o200k_base"), ("o3-mini", "o200k_base"), ("o4-mini", "o200k_base"), ("gpt-5", "o200k_base"),
    ("openai/gpt-4o", "o200k_base"), ("gpt-4", "cl100k_base"), ("gpt-4-turbo", "cl100k_base"),
    ("gpt-3.5-turbo-0125", "cl100k_base"), ("text-embedding-3-small", "cl100k_base"),
    ("llama-3.1-8b-instant", "o200k_base"), ("mistral-large-latest", "o200k_base"),
])
def test_encoding_for_model(model, encoding):
    assert encoding_name_for(model) == encoding


def test_chat_prompt_counts_match_the_cookbook(tokenizer):
    assert tokenizer.count_chat("gpt-4", COOKBOOK) == 129
    assert tokenizer.count_chat("gpt-3.5-turbo", COOKBOOK) == 129
    assert tokenizer.count_chat("gpt-4o", COOKBOOK) == 124


def test_prompts_of_every_endpoint(tokenizer):
    assert tokenizer.count_prompt(Endpoint.COMPLETIONS, "gpt-4", {"prompt": "hello world"}) == 2
    assert tokenizer.count_prompt(Endpoint.EMBEDDINGS, "gpt-4", {"input": ["hello world", [1, 2, 3]]}) == 5
    assert tokenizer.count_prompt(Endpoint.MODERATIONS, "gpt-4", {"input": "x"}) == 0
    text, count, cut = tokenizer.truncate("gpt-4o", "one two three four", 2)
    assert (text, count, cut) == ("one two", 2, True)


def test_counts_without_a_python_int_per_token_match_tiktoken(tokenizer):
    text = "Special tokens are plain text here: <|endoftext|> and <|endofprompt|>. Ünïcödé, 日本語, 123456"
    for model in ("gpt-4o", "gpt-4"):
        assert tokenizer.count(model, text) == len(tokenizer.encoding(model).encode_ordinary(text))
    assert tokenizer.count("gpt-4o", "") == 0


async def test_large_inputs_are_tokenized_off_the_event_loop(tokenizer):
    loop_thread = threading.get_ident()
    seen: list[int] = []
    nice: list[int] = []

    def count(text: str) -> int:
        seen.append(threading.get_ident())
        nice.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return tokenizer.count("gpt-4o", text)

    small = "word " * 100
    large = "word " * (INLINE_CHARS // 5 + 1)
    assert await in_worker(len(small), count, small) == tokenizer.count("gpt-4o", small)
    assert await in_worker(len(large), count, large) == tokenizer.count("gpt-4o", large)
    assert seen[0] == loop_thread  # a thread hop costs more than counting a short text
    assert seen[1] != loop_thread
    assert nice[1] > nice[0]  # the worker yields the CPU to the loop's thread on a busy machine


def test_sizes_of_inputs(tokenizer):
    assert input_chars("abc") == 3 and input_chars(["ab", "c"]) == 3
    assert input_chars([1, 2, 3]) == 3 and input_chars([[1, 2], [3]]) == 3 and input_chars(None) == 0
    messages = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert chat_chars(messages) == len("user") + len("hello")
    assert chat_chars(messages, [{"a": 1}]) == chat_chars(messages) + len('[{"a":1}]')
