"""What every command shares: which gateway, which key, JSON or tables; the key found once, here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import httpx

from switchboard_cli.api import Api

DEFAULT_URL = "http://127.0.0.1:8080"  # the edge `make run` starts
_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
NO_KEY = ("no API key: pass --api-key or set SWITCHBOARD_API_KEY (or SWITCHBOARD_MASTER_KEY); "
          "for a gateway on this machine, the master key `make run` keeps in <data dir>/master-key "
          "is used when present")


def gateway_url(raw: str) -> str:
    """The edge's root URL. Takes the `.../v1` base URL an OpenAI SDK is given, too."""
    url = raw.strip().rstrip("/")
    url = url.removesuffix("/v1").rstrip("/")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{raw!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"{raw!r} is not an http:// or https:// URL with a host "
                         "(e.g. http://127.0.0.1:8080)")
    return url


def local_master_key(url: str, data_dir: Path) -> str | None:
    """The master key `make run` keeps in its data directory, offered only to a gateway on loopback:
    the local stack's admin key is never sent to another machine."""
    if httpx.URL(url).host not in _LOOPBACK:
        return None
    try:
        return (data_dir / "master-key").read_text().strip() or None
    except OSError:
        return None


@dataclass
class Session:
    url: str = DEFAULT_URL
    api_key: str | None = None
    json: bool = False
    timeout: float = 30.0
    # The HTTP transport: None for the network; the unit tests put a fake gateway here.
    transport: httpx.BaseTransport | None = None

    def api(self, *, authenticated: bool = True) -> Api:
        """A client for this command, closed when the command ends."""
        if authenticated and not self.api_key:
            raise click.ClickException(NO_KEY)
        api = Api(self.url, self.api_key if authenticated else None, timeout=self.timeout,
                  transport=self.transport)
        click.get_current_context().call_on_close(api.close)
        return api
