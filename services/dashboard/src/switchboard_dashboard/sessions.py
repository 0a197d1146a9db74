"""Server-side sessions: the logged-in key lives here, in memory, never in the browser.

The cookie carries only a random session id. Each session has its own CSRF token that every POST
form must echo. A session ends at its expiry (absolute, from login) or at logout; the store is
bounded, dropping the oldest session first. Login forms' sessions (no key yet) are bounded apart,
so a flood of login-page loads cannot push logged-in users out. Nothing here is logged: ids,
tokens and keys are secrets.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

COOKIE = "sb_dashboard"
# A login form's session (no key yet) lives only long enough to fill in the form.
ANONYMOUS_TTL_SECONDS = 900.0


@dataclass
class Session:
    session_id: str = field(repr=False)
    csrf_token: str = field(repr=False)
    expires_at: float
    api_key: str = field(default="", repr=False)  # "" until login
    # A new key's secret, shown on the next page only, then gone.
    flash_secret: str = field(default="", repr=False)
    flash_key_id: str = ""

    @property
    def logged_in(self) -> bool:
        return bool(self.api_key)

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf_token.encode(), (token or "").encode())

    def take_flash(self) -> tuple[str, str]:
        """(key id, secret) once; afterwards ("", "")."""
        shown = (self.flash_key_id, self.flash_secret)
        self.flash_key_id, self.flash_secret = "", ""
        return shown


class SessionStore:
    def __init__(self, ttl_seconds: float, max_sessions: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._max = max_sessions
        self._clock = clock
        # Oldest first: logged-in sessions, and login forms' sessions apart.
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._anonymous: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions) + len(self._anonymous)

    def start(self, api_key: str = "") -> Session:
        """A new session with fresh id and CSRF token; logged in when `api_key` is given."""
        pool = self._sessions if api_key else self._anonymous
        self._drop_expired(pool)
        while len(pool) >= self._max:
            pool.popitem(last=False)
        ttl = self._ttl if api_key else min(self._ttl, ANONYMOUS_TTL_SECONDS)
        session = Session(session_id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32),
                          expires_at=self._clock() + ttl, api_key=api_key)
        pool[session.session_id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        for pool in (self._sessions, self._anonymous):
            session = pool.get(session_id)
            if session is None:
                continue
            if session.expires_at <= self._clock():
                del pool[session_id]
                return None
            return session
        return None

    def end(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)
        self._anonymous.pop(session_id, None)

    def _drop_expired(self, pool: OrderedDict[str, Session]) -> None:
        now = self._clock()
        for sid in [sid for sid, s in pool.items() if s.expires_at <= now]:
            del pool[sid]
