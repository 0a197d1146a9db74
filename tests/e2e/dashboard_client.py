"""A browser's part in the dashboard tests, with httpx: a cookie jar, forms posted with the page's
CSRF token, redirects followed. tests/e2e/test_dashboard.py uses it; the Chromium test drives the
same flows through a real browser."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SECRET = re.compile(r'<code id="secret">([^<]+)</code>')


def csrf(html: str) -> str:
    found = CSRF.search(html)
    assert found, f"no CSRF token on the page: {html[:500]}"
    return found[1]


def key_ids(html: str) -> set[str]:
    """The key ids of the keys table's rows."""
    table = html.split('<table id="keys">', 1)[1].split("</table>", 1)[0]
    return set(re.findall(r'<tr data-key-id="([^"]+)"', table))


class Browser:
    def __init__(self, edge_url: str) -> None:
        self.http = httpx.Client(base_url=edge_url, follow_redirects=True, timeout=15)

    def close(self) -> None:
        self.http.close()

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def submit(self, page: httpx.Response, action: str, **fields: str) -> httpx.Response:
        """Post a form of `page` (its CSRF token included) as the browser would."""
        return self.http.post(action, data={"csrf_token": csrf(page.text), **fields})

    def login(self, key: str) -> httpx.Response:
        return self.submit(self.get("/ui/login"), "/ui/login", api_key=key)
