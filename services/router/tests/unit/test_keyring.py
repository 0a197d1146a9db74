"""A provider's key ring: which key each attempt uses and what a refusal does to it, on a fake clock."""

from __future__ import annotations

import pytest

from switchboard_router import config, keyring
from switchboard_router.keyring import AllKeysExhausted, Key, KeyRing, StoredKey, hint


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ring(*specs, strategy="round_robin", clock=None):
    clock = clock or Clock()
    keys = [Key(s, f"codec-{s}", weight=w, rpm=rpm, now=clock.now) for s, w, rpm in specs]
    return KeyRing("openai", keys, strategy=strategy, clock=clock), clock


def first_keys(r: KeyRing, n: int) -> list[str]:
    """The first key of each of n requests that succeed with it."""
    return [next(r.attempts()).secret for _ in range(n)]


def test_round_robin_spreads_by_weight_interleaved():
    r, _ = ring(("a" * 16, 1, None), ("b" * 16, 1, None), ("c" * 16, 2, None))
    picks = first_keys(r, 8)
    assert sorted(picks) == sorted(["a" * 16] * 2 + ["b" * 16] * 2 + ["c" * 16] * 4)
    assert picks[:4].count("c" * 16) == 2  # smooth: never all of one key's share in a row


def test_a_request_tries_each_usable_key_once_then_is_exhausted():
    r, clock = ring(("k1" * 8, 1, None), ("k2" * 8, 1, None), ("k3" * 8, 1, None))
    attempts = r.attempts()
    first = next(attempts)
    assert r.refused(first, 429, "7")
    second = next(attempts)
    assert r.refused(second, 401, None)
    third = next(attempts)
    assert len({first.secret, second.secret, third.secret}) == 3
    assert r.refused(third, 403, None)
    with pytest.raises(AllKeysExhausted) as exc:
        next(attempts)
    err = exc.value
    assert (err.http_status, err.code, err.retry_after) == (503, "all_keys_exhausted", 7)
    assert "'openai'" in err.message and "k1" not in err.message and "k3" not in err.message
    # The next request is refused without an attempt, until the throttled key has cooled.
    with pytest.raises(AllKeysExhausted):
        next(r.attempts())
    clock.now += 7
    assert next(r.attempts()).secret == first.secret
    states = {h.hint: h.state for h in r.health()}
    assert sorted(states.values()) == ["invalid", "invalid", "ready"]


def test_a_refusal_about_the_request_is_not_the_keys():
    r, _ = ring(("k1" * 8, 1, None), ("k2" * 8, 1, None))
    key = next(r.attempts())
    assert not r.refused(key, 400, None) and not r.refused(key, 500, None)
    assert [h.state for h in r.health()] == ["ready", "ready"]


def test_only_invalid_keys_give_no_retry_after():
    r, _ = ring(("k1" * 8, 1, None),)
    attempts = r.attempts()
    r.refused(next(attempts), 401, None)
    with pytest.raises(AllKeysExhausted) as exc:
        next(attempts)
    assert exc.value.retry_after is None and "rejected by the provider" in exc.value.message


def test_retry_after_forms_and_bounds():
    r, clock = ring(("k1" * 8, 1, None),)
    key = r.keys[0]
    for header, seconds in [(None, 30.0), ("", 30.0), ("2.5", 2.5), ("-3", 0.0), ("nan", 30.0),
                            ("garbage", 30.0), ("99999999", 86400.0)]:
        r.refused(key, 429, header)
        assert key.cooling_until - clock.now == pytest.approx(seconds), header


def test_least_recently_throttled_prefers_the_key_throttled_longest_ago():
    r, clock = ring(("k1" * 8, 1, None), ("k2" * 8, 1, None), ("k3" * 8, 1, None),
                    strategy="least_recently_throttled")
    k1, k2, k3 = r.keys
    r.refused(k1, 429, "1")
    clock.now += 1
    r.refused(k2, 429, "1")
    clock.now += 2  # both cooled; k3 never throttled
    assert first_keys(r, 3) == [k3.secret] * 3
    r.refused(k3, 429, "0")
    assert next(r.attempts()) is k1  # throttled longest ago


def test_a_keys_own_rpm_skips_it_until_its_bucket_refills():
    r, clock = ring(("k1" * 8, 1, 2), ("k2" * 8, 1, None))
    k1, k2 = r.keys
    picks = first_keys(r, 6)
    assert picks.count(k1.secret) == 2  # its two requests of this minute, then k2 alone
    assert r.health()[0].state == "rate_limited"
    clock.now += 30  # one request's worth refilled
    assert r.health()[0].state == "ready"


def test_hints_never_show_the_key():
    assert hint("sk-proj-abcdefghijklmnop1234") == "sk-…1234"
    assert hint("shortkey1") == "…y1"
    assert hint("abc") == "…"


ENV = {"K1": "sk-one-1111111111", "K2": "sk-two-22222222222", "EMPTY": ""}


def _provider(entries, **extra):
    return config.parse({"providers": {"p": {"type": "openai", "base_url": "http://x/v1",
                                             "api_keys": entries, **extra}}}, ENV).providers["p"]


def test_config_api_keys_from_the_environment_with_weight_and_rpm():
    spec = _provider(["${K1}", {"key": "${K2}", "weight": 3, "rpm": 60}, "${EMPTY:-}"],
                     key_selection="least_recently_throttled")
    assert [(k.secret, k.weight, k.rpm) for k in spec.api_keys] == [
        ("sk-one-1111111111", 1, None), ("sk-two-22222222222", 3, 60)]
    assert spec.enabled and spec.api_key == "sk-one-1111111111"
    assert spec.key_selection == "least_recently_throttled" and spec.key_env == "K1"
    assert "sk-one" not in repr(spec.api_keys)
    disabled = _provider(["${EMPTY:-}"])
    assert not disabled.enabled and disabled.api_keys == ()
    stored_only = _provider([])  # every key from /api/credentials
    assert stored_only.enabled and stored_only.api_keys == () and stored_only.api_key == ""


def test_a_local_provider_takes_no_keys():
    with pytest.raises(config.ConfigError, match=r"providers\.l\.api_keys: provider type 'local' takes no key"):
        config.parse({"providers": {"l": {"type": "local", "api_keys": []}}}, {})


def test_stored_keys_join_the_ring_and_keep_their_state_until_rotated():
    spec = _provider(["${K1}"])
    ring = keyring.build(spec, lambda s: f"codec:{s.api_key}")
    assert [k.codec for k in ring.keys] == ["codec:sk-one-1111111111"]
    ring = keyring.build(spec, lambda s: f"codec:{s.api_key}",
                         [StoredKey("pcred_1", "sk-stored-aaaaaaaa"), StoredKey("pcred_2", "sk-stored-bbbbbbbb")],
                         previous=ring)
    assert [k.ident for k in ring.keys] == ["config-0", "pcred_1", "pcred_2"]
    ring.refused(ring.keys[1], 401, None)
    kept = keyring.build(spec, lambda s: f"codec:{s.api_key}",
                         [StoredKey("pcred_1", "sk-stored-aaaaaaaa"), StoredKey("pcred_2", "sk-stored-cccccccc")],
                         previous=ring)
    assert [k.invalid for k in kept.keys] == [False, True, False]  # pcred_2 was rotated: fresh
    assert kept.keys[0] is ring.keys[0] and kept.keys[2].codec == "codec:sk-stored-cccccccc"


def test_a_single_key_provider_gets_a_ring_only_with_stored_keys():
    spec = config.parse({"providers": {"p": {"type": "openai", "base_url": "http://x/v1",
                                             "api_key": "sk-single-111111111"}}}, {}).providers["p"]
    assert keyring.build(spec, str) is None
    ring = keyring.build(spec, lambda s: s.api_key, [StoredKey("pcred_1", "sk-stored-aaaaaaaa")])
    assert [k.codec for k in ring.keys] == ["sk-single-111111111", "sk-stored-aaaaaaaa"]
    empty = keyring.build(_provider([]), str)
    with pytest.raises(AllKeysExhausted, match="'p' has no API key"):
        next(empty.attempts())


@pytest.mark.parametrize(("raw", "where", "says"), [
    ({"api_keys": ["${K1}"], "api_key": "${K1}"}, "providers.p.api_keys", "either api_key or api_keys"),
    ({"api_keys": ["${K1}", "${K1}"]}, "providers.p.api_keys[1]", "the same key as api_keys[0]"),
    ({"api_key": "${K1}", "key_selection": "round_robin"}, "providers.p.key_selection",
     "only for a provider with api_keys"),
    ({"api_keys": ["${K1}"] * 65}, "providers.p.api_keys", "at most 64"),
    ({"api_keys": [{"key": "${K1}", "weight": 0}]}, "providers.p.api_keys[0].weight", "greater than or equal to 1"),
    ({"api_keys": [{"key": "${K1}", "burst": 3}]}, "providers.p.api_keys[0].burst", "unknown field"),
    ({"api_keys": ["${K1}"], "key_selection": "random"}, "providers.p.key_selection", "round_robin"),
])
def test_config_refuses_what_it_would_not_apply(raw, where, says):
    with pytest.raises(config.ConfigError) as exc:
        config.parse({"providers": {"p": {"type": "openai", "base_url": "http://x/v1", **raw}}},
                     {"K1": "sk-one-1111111111"})
    text = str(exc.value)
    assert where in text and says in text, text
    assert "sk-one" not in text
