"""An OAuth key's 401 in the key ring: its token marked rejected and the call retried once with
the same key; a 401 on that retry marks the key invalid and the call moves on (to the next key,
or to all_keys_exhausted). A plain key's 401 still ends it at once."""

from __future__ import annotations

import pytest

from switchboard_router.keyring import AllKeysExhausted, Key, KeyRing


class TokenCodec:
    """An OAuth key's codec as the ring sees it: told when the provider refused its token."""

    def __init__(self) -> None:
        self.rejections = 0

    def token_rejected(self) -> None:
        self.rejections += 1


def ring(*keys: Key) -> KeyRing:
    return KeyRing("corp", list(keys), clock=lambda: 1000.0)


def oauth_key(name: str) -> Key:
    return Key(f"oauth:{name}", TokenCodec(), ident=name, shown=f"oauth:{name}")


def test_a_401_retries_the_same_oauth_key_once_with_its_token_rejected():
    key = oauth_key("pcred_a")
    r = ring(key)
    attempts = r.attempts()
    assert next(attempts) is key
    assert r.refused(key, 401, None)
    assert key.codec.rejections == 1 and not key.invalid
    assert next(attempts) is key  # the retry, whose authorize() refreshes the token
    assert key.requests == 2
    # The retry succeeded: the key stays usable for the next call.
    assert next(r.attempts()) is key
    assert [h.state for h in r.health()] == ["ready"]


def test_a_second_401_marks_the_oauth_key_invalid_and_moves_on():
    key, other = oauth_key("pcred_a"), Key("sk-" + "b" * 20, "plain-codec", ident="config-0")
    r = ring(key, other)
    attempts = r.attempts()
    first = next(attempts)
    assert first is key  # round robin starts with the first
    assert r.refused(key, 401, None)
    assert next(attempts) is key
    assert r.refused(key, 401, None)  # the refreshed token was refused too
    assert next(attempts) is other
    assert key.invalid and key.codec.rejections == 2
    assert {h.hint: h.state for h in r.health()}["oauth:pcred_a"] == "invalid"


def test_a_lone_oauth_key_refused_twice_is_all_keys_exhausted_without_a_third_try():
    key = oauth_key("pcred_a")
    r = ring(key)
    attempts = r.attempts()
    next(attempts)
    r.refused(key, 401, None)
    next(attempts)
    r.refused(key, 401, None)
    with pytest.raises(AllKeysExhausted) as caught:
        next(attempts)
    assert caught.value.code == "all_keys_exhausted" and "rejected by the provider" in caught.value.message
    assert key.requests == 2


def test_a_403_or_a_plain_keys_401_is_not_retried():
    key, plain = oauth_key("pcred_a"), Key("sk-" + "p" * 20, "plain-codec")
    for k, status in ((key, 403), (plain, 401)):
        r = ring(k)
        attempts = r.attempts()
        next(attempts)
        assert r.refused(k, status, None)
        with pytest.raises(AllKeysExhausted):
            next(attempts)
        assert k.invalid and k.requests == 1
    assert key.codec.rejections == 0


def test_concurrent_calls_each_get_their_own_retry():
    key = oauth_key("pcred_a")
    r = ring(key)
    calls = [r.attempts() for _ in range(3)]
    assert all(next(c) is key for c in calls)
    for c in calls:  # each call hears its 401 and asks for its next attempt at once
        assert r.refused(key, 401, None)
        assert next(c) is key
    assert key.retries_due == 0 and not key.invalid and key.requests == 6
