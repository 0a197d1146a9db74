"""The session store: random ids and tokens, absolute expiry, a bound, a secret shown once."""

from __future__ import annotations

from switchboard_dashboard.sessions import ANONYMOUS_TTL_SECONDS, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_session_has_its_own_random_id_and_csrf_token():
    store = SessionStore(3600, 100)
    a, b = store.start("sk-a"), store.start("sk-b")
    assert a.session_id != b.session_id and a.csrf_token != b.csrf_token
    assert len(a.session_id) >= 40 and len(a.csrf_token) >= 40
    assert store.get(a.session_id) is a and store.get(b.session_id) is b
    assert store.get("guessed") is None and store.get(None) is None and store.get("") is None


def test_csrf_token_must_match_exactly():
    session = SessionStore(3600, 10).start("sk-a")
    assert session.csrf_ok(session.csrf_token)
    assert not session.csrf_ok(None)
    assert not session.csrf_ok("")
    assert not session.csrf_ok(session.csrf_token[:-1])
    assert not session.csrf_ok(SessionStore(3600, 10).start("sk-a").csrf_token)


def test_a_session_ends_at_its_expiry_and_at_logout():
    clock = Clock()
    store = SessionStore(60, 10, clock=clock)
    session = store.start("sk-a")
    clock.now += 59
    assert store.get(session.session_id) is session
    clock.now += 1
    assert store.get(session.session_id) is None
    other = store.start("sk-b")
    store.end(other.session_id)
    assert store.get(other.session_id) is None
    assert len(store) == 0


def test_a_login_forms_session_is_short_lived():
    clock = Clock()
    store = SessionStore(86400, 10, clock=clock)
    anonymous = store.start()
    assert not anonymous.logged_in
    clock.now += ANONYMOUS_TTL_SECONDS
    assert store.get(anonymous.session_id) is None


def test_the_store_is_bounded_dropping_the_oldest():
    store = SessionStore(3600, 2)
    first, second, third = store.start("1"), store.start("2"), store.start("3")
    assert len(store) == 2
    assert store.get(first.session_id) is None
    assert store.get(second.session_id) is second and store.get(third.session_id) is third


def test_login_page_loads_cannot_push_logged_in_users_out():
    store = SessionStore(3600, 3)
    users = [store.start(f"sk-{i}") for i in range(3)]
    for _ in range(50):  # a flood of login forms
        store.start()
    assert all(store.get(u.session_id) is u for u in users)
    assert len(store) == 6  # each pool at its bound


def test_a_new_secret_is_shown_once():
    session = SessionStore(3600, 2).start("sk-a")
    session.flash_key_id, session.flash_secret = "key_1", "sk-sb-new"
    assert session.take_flash() == ("key_1", "sk-sb-new")
    assert session.take_flash() == ("", "")


def test_the_key_and_tokens_stay_out_of_repr():
    session = SessionStore(3600, 2).start("sk-sb-secretvalue")
    session.flash_secret = "sk-sb-flash"
    text = repr(session)
    for secret in ("sk-sb-secretvalue", "sk-sb-flash", session.session_id, session.csrf_token):
        assert secret not in text
