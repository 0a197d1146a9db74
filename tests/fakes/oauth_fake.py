"""A fake OAuth 2.0 authorization server on loopback: RFC 8628 device flow with PKCE (RFC 7636
S256), the refresh_token grant with rotation, the client_credentials grant, RFC 7009 revocation.

    python -m tests.fakes.oauth_fake --host 127.0.0.1 --port 0 --port-file PATH \\
        --client-id ID [--client-secret S] [--tokens-file PATH] [--expires-in SECONDS]
    with fake_process("tests.fakes.oauth_fake", tmp, "--client-id", "cli") as url: ...

Endpoints as real servers have them:
- `POST /device/code` (client_id, scope, code_challenge, code_challenge_method=S256) →
  device_code, user_code, verification_uri(_complete), expires_in, interval.
- `POST /token`, grant_type `urn:ietf:params:oauth:grant-type:device_code`: each poll of a device
  code takes the next answer of the device script (default `authorization_pending`, `slow_down`,
  then the tokens), as `400 {"error": ...}` (slow_down as the status `--slow-down-status` says: RFC
  8628 uses 400, Qwen's server 429); the code_verifier must match the challenge (S256), else
  `invalid_grant`. `access_denied` and `expired_token` can be scripted too.
- `POST /token`, grant_type `refresh_token`: a new access token and a new refresh token; the old
  refresh token is revoked at once (rotation), so using it again is `400 invalid_grant`.
- `POST /token`, grant_type `client_credentials` (RFC 6749 §4.4): a confidential client only
  (`unauthorized_client` for a public one); an access token and no refresh token (§4.4.3).
- `POST /revoke`: the token (refresh or access) stops working; 200 whatever it was (RFC 7009).
The client authenticates with HTTP Basic (or client_secret in the form) when it has a secret,
else by client_id alone (a public client). Access tokens expire after `expires_in` seconds.

For tests, not OAuth's: `GET /_fake/stats` (refresh and poll counts, poll and refresh times,
revocations), `GET /_fake/issued` (every token handed out, for scans that must not find them),
`POST /_fake/config` (JSON: expires_in, refresh_delay_seconds, device_script, slow_down_status,
unlisted_access_tokens: issue access tokens the provider will not take, as one for another
audience),
`POST /_fake/revoke-refresh-tokens` (every refresh token revoked: a dead credential),
`POST /_fake/revoke-access-tokens` (every access token ends before its expiry, as a provider's
revocation or key rollover does: the provider then answers 401 to them). With
`--tokens-file`, the access tokens in force (each with its expiry) are written there on every
change, one `token expires_at` a line, for the OpenAI fake to accept exactly those.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import secrets
import signal
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCRIPT = ("authorization_pending", "slow_down", "token")


class AuthorizationServer:
    def __init__(self, client_id: str, client_secret: str | None, tokens_file: Path | None,
                 expires_in: float, base_url: str = "") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.tokens_file = tokens_file
        self.expires_in = expires_in
        self.base_url = base_url
        self.refresh_delay = 0.0
        self.device_script = list(DEFAULT_SCRIPT)
        self.slow_down_status = 400
        self.unlisted_access_tokens = False
        self.devices: dict[str, dict[str, Any]] = {}
        self.access: dict[str, float] = {}  # access token -> expires_at
        self.refresh: dict[str, bool] = {}  # refresh token -> still valid
        self.stats: dict[str, Any] = {"refreshes": 0, "refresh_attempts": 0, "refused_refreshes": 0,
                                      "polls": [], "revocations": 0, "device_codes": 0,
                                      "pkce_verified": 0, "refreshed_at": [],
                                      "client_credentials_grants": 0}
        self.issued: list[str] = []  # every token handed out, for tests that scan for them

    def application(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/device/code", self._device_code)
        app.router.add_post("/token", self._token)
        app.router.add_post("/revoke", self._revoke)
        app.router.add_get("/_fake/stats", self._stats)
        app.router.add_get("/_fake/issued", self._issued)
        app.router.add_post("/_fake/config", self._config)
        app.router.add_post("/_fake/revoke-refresh-tokens", self._revoke_all)
        app.router.add_post("/_fake/revoke-access-tokens", self._revoke_access)
        return app

    # --- OAuth -----------------------------------------------------------------------------------

    def _client(self, request: web.Request, form: dict[str, str]) -> web.Response | None:
        """Client authentication (RFC 6749 §2.3): Basic, or the form; a public client by id."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        if client_id != self.client_id or (self.client_secret is not None and secret != self.client_secret):
            return _error(401, "invalid_client", "Client authentication failed.")
        return None

    async def _device_code(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        refused = self._client(request, form)  # type: ignore[arg-type]
        if refused is not None:
            return refused
        challenge, method = form.get("code_challenge"), form.get("code_challenge_method")
        if challenge is not None and method != "S256":
            return _error(400, "invalid_request", "Only code_challenge_method S256 is supported.")
        device_code = secrets.token_urlsafe(24)
        user_code = f"{secrets.token_hex(2).upper()}-{secrets.token_hex(2).upper()}"
        self.devices[device_code] = {"challenge": challenge, "scope": form.get("scope", ""),
                                     "script": list(self.device_script), "user_code": user_code}
        self.stats["device_codes"] += 1
        base = self.base_url or f"{request.scheme}://{request.host}"
        return web.json_response({
            "device_code": device_code, "user_code": user_code,
            "verification_uri": f"{base}/device", "verification_uri_complete": f"{base}/device?user_code={user_code}",
            "expires_in": 600, "interval": 5})

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        refused = self._client(request, form)
        if refused is not None:
            return refused
        grant = form.get("grant_type")
        if grant == DEVICE_GRANT:
            return self._device_poll(form)
        if grant == "refresh_token":
            return await self._refresh(form)
        if grant == "client_credentials":
            return await self._client_credentials(form)
        return _error(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported.")

    def _device_poll(self, form: dict[str, str]) -> web.Response:
        device = self.devices.get(form.get("device_code", ""))
        if device is None:
            return _error(400, "invalid_grant", "Unknown device_code.")
        if device["challenge"] is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != device["challenge"]:
                return _error(400, "invalid_grant", "PKCE verification failed: code_verifier does not match.")
            self.stats["pkce_verified"] += 1
        answer = device["script"].pop(0) if len(device["script"]) > 1 else device["script"][0]
        self.stats["polls"].append({"at": time.time(), "answer": answer})
        if answer == "token":
            del self.devices[form["device_code"]]
            return web.json_response(self._issue(device["scope"]))
        status = self.slow_down_status if answer == "slow_down" else 400
        return _error(status, answer, {"authorization_pending": "The user has not approved yet.",
                                       "slow_down": "Polling too fast.",
                                       "access_denied": "The user denied the request.",
                                       "expired_token": "The device code expired."}.get(answer, answer))

    async def _refresh(self, form: dict[str, str]) -> web.Response:
        self.stats["refresh_attempts"] += 1
        token = form.get("refresh_token", "")
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)  # a slow server widens any race
        if not self.refresh.get(token):
            self.stats["refused_refreshes"] += 1
            return _error(400, "invalid_grant", "The refresh token is invalid or was revoked.")
        self.refresh[token] = False  # rotation: the old one is revoked as the new one is issued
        self.stats["refreshes"] += 1
        self.stats["refreshed_at"].append(time.time())
        return web.json_response(self._issue(form.get("scope", "")))

    async def _client_credentials(self, form: dict[str, str]) -> web.Response:
        if self.client_secret is None:  # RFC 6749 §4.4: confidential clients only
            return _error(400, "unauthorized_client", "A public client cannot use client_credentials.")
        if self.refresh_delay:
            await asyncio.sleep(self.refresh_delay)
        self.stats["client_credentials_grants"] += 1
        self.stats["refreshed_at"].append(time.time())
        answer = self._issue(form.get("scope", ""))
        self.refresh.pop(answer.pop("refresh_token"))  # §4.4.3: no refresh token
        self.issued.pop()
        return web.json_response(answer)

    def _issue(self, scope: str) -> dict[str, Any]:
        access, refresh = "at-" + secrets.token_urlsafe(24), "rt-" + secrets.token_urlsafe(24)
        if not self.unlisted_access_tokens:
            self.access[access] = time.time() + self.expires_in
        self.refresh[refresh] = True
        self.issued += [access, refresh]
        self._write_tokens()
        return {"access_token": access, "token_type": "Bearer", "expires_in": self.expires_in,
                "refresh_token": refresh, "scope": scope}

    async def _revoke(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        refused = self._client(request, form)
        if refused is not None:
            return refused
        token = form.get("token", "")
        if token in self.refresh:
            self.refresh[token] = False
        self.access.pop(token, None)
        self.stats["revocations"] += 1
        self._write_tokens()
        return web.Response(status=200)

    def _write_tokens(self) -> None:
        if self.tokens_file is None:
            return
        now = time.time()
        self.access = {t: at for t, at in self.access.items() if at > now}
        tmp = self.tokens_file.with_suffix(".tmp")
        tmp.write_text("".join(f"{t} {at}\n" for t, at in self.access.items()))
        os.replace(tmp, self.tokens_file)

    # --- for tests -------------------------------------------------------------------------------

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({**self.stats, "valid_refresh_tokens": sum(self.refresh.values())})

    async def _issued(self, request: web.Request) -> web.Response:
        return web.json_response({"tokens": self.issued})

    async def _config(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.expires_in = float(body.get("expires_in", self.expires_in))
        self.refresh_delay = float(body.get("refresh_delay_seconds", self.refresh_delay))
        self.device_script = list(body.get("device_script", self.device_script))
        self.slow_down_status = int(body.get("slow_down_status", self.slow_down_status))
        self.unlisted_access_tokens = bool(body.get("unlisted_access_tokens", self.unlisted_access_tokens))
        return web.json_response({"ok": True})

    async def _revoke_all(self, request: web.Request) -> web.Response:
        self.refresh = dict.fromkeys(self.refresh, False)
        return web.json_response({"ok": True})


    async def _revoke_access(self, request: web.Request) -> web.Response:
        self.access.clear()
        self._write_tokens()
        return web.json_response({"ok": True})


def _error(status: int, error: str, description: str) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status,
                             headers={"Cache-Control": "no-store"})


async def _serve(args: argparse.Namespace) -> None:
    server = AuthorizationServer(args.client_id, args.client_secret,
                                 Path(args.tokens_file) if args.tokens_file else None, args.expires_in)
    runner = web.AppRunner(server.application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]
    if args.port_file:
        tmp = Path(f"{args.port_file}.tmp")
        tmp.write_text(str(port))  # noqa: ASYNC240 - once, before serving
        os.replace(tmp, args.port_file)
    print(f"listening on http://{args.host}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.oauth_fake",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", help="a confidential client's secret (default: a public client)")
    parser.add_argument("--tokens-file", help="write the access tokens in force here")
    parser.add_argument("--expires-in", type=float, default=3600.0, help="access tokens' lifetime")
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
