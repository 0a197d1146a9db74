"""The pages behind the login: keys, usage, budgets, guardrail policies and routing health.

Each calls the admin API through the edge with the session's key, so what a page shows is what
that key may see: a tenant admin's pages hold its tenant only, because auth and billing scope the
answers, not because this code filters them.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from switchboard_dashboard import chart
from switchboard_dashboard.api import ApiError, segment
from switchboard_dashboard.web import API, render, session_of

LIST_SIZE = 100  # keys and policies shown per page (the API pages beyond; the page says so)
CHART_HOURS = 24
ROLES = ("member", "tenant_admin", "admin")


async def _call(request: web.Request, method: str, path: str, **kw: Any) -> Any:
    return await request.app[API].call(session_of(request).api_key, method, path, **kw)


async def _active_keys(request: web.Request) -> dict[str, Any]:
    return await _call(request, "GET", "/api/keys", params={"page_size": LIST_SIZE, "revoked": "false"})


async def keys(request: web.Request) -> web.Response:
    page = await _active_keys(request)
    return render(request, "keys.html", page_name="keys", keys=page.get("keys", []),
                  more=bool(page.get("next_page_token")), roles=ROLES)


async def create_key(request: web.Request) -> web.Response:
    form = await request.post()
    body: dict[str, Any] = {"name": str(form.get("name", "")).strip()}
    for field in ("tenant_id", "role"):
        if value := str(form.get(field, "")).strip():
            body[field] = value
    made = await _call(request, "POST", "/api/keys", body=body)
    return _show_secret_once(request, made["key"]["key_id"], made["secret"])


async def rotate_key(request: web.Request) -> web.Response:
    key_id = request.match_info["key_id"]
    made = await _call(request, "POST", f"/api/keys/{segment(key_id)}/rotate", body={})
    return _show_secret_once(request, key_id, made["secret"])


def _show_secret_once(request: web.Request, key_id: str, secret: str) -> web.Response:
    # Post/redirect/get: the secret waits in the session for the next page only, so neither a
    # reload of that page nor the browser's history shows it again.
    session = session_of(request)
    session.flash_key_id, session.flash_secret = key_id, secret
    raise web.HTTPSeeOther(f"{request.app.router['key_secret'].url_for()}")


async def key_secret(request: web.Request) -> web.Response:
    key_id, secret = session_of(request).take_flash()
    return render(request, "key_secret.html", page_name="keys", key_id=key_id, secret=secret)


async def revoke_key(request: web.Request) -> web.Response:
    await _call(request, "DELETE", f"/api/keys/{segment(request.match_info['key_id'])}")
    raise web.HTTPSeeOther(f"{request.app.router['keys'].url_for()}")


async def usage(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    start = (now - timedelta(hours=CHART_HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    window = {"start_time": start.strftime("%Y-%m-%dT%H:%M:%SZ")}
    by_hour, by_provider, by_key = await asyncio.gather(*(
        _call(request, "GET", "/api/billing/spend", params={**window, "group_by": group})
        for group in ("hour,model", "provider", "key")))
    buckets = chart.hours(now, CHART_HOURS)
    groups = by_hour.get("groups", [])
    return render(request, "usage.html", page_name="usage", totals=by_hour.get("totals", {}),
                  charts=[chart.build(groups, buckets, metric) for metric in ("requests", "total_tokens", "cost")],
                  providers=by_provider.get("groups", []), by_key=by_key.get("groups", []),
                  since=window["start_time"])


def _alerts(limit: dict[str, Any], thresholds: list[int]) -> dict[str, Any]:
    """How much of a dollar limit is spent, and which alert thresholds that crosses."""
    cap = limit.get("limit_micros_usd")
    if not cap:
        return {"percent": None, "crossed": []}
    percent = 100.0 * limit.get("spent_micros_usd", 0) / cap
    return {"percent": percent, "crossed": [t for t in thresholds if percent >= t]}


def _budget_view(owner: str, budget: dict[str, Any]) -> dict[str, Any]:
    thresholds = list(budget.get("alert_thresholds_percent", []))
    limits = [{**limit, "period": str(limit.get("period", "")).removeprefix("BUDGET_PERIOD_").lower(),
               **_alerts(limit, thresholds)} for limit in budget.get("limits", [])]
    return {"owner": owner, "thresholds": thresholds, "limits": limits,
            "webhook": bool(budget.get("webhook_url"))}


async def budgets(request: web.Request) -> web.Response:
    listed_keys, tenants = await asyncio.gather(
        _active_keys(request), _call(request, "GET", "/api/tenants", params={"page_size": LIST_SIZE}))
    key_list = listed_keys.get("keys", [])
    tenant_ids = [t["tenant_id"] for t in tenants.get("tenants", [])]
    answers = await asyncio.gather(
        *(_call(request, "GET", f"/api/billing/budget/{segment(k['key_id'])}") for k in key_list),
        *(_call(request, "GET", "/api/billing/budget", params={"tenant_id": t}) for t in tenant_ids),
        return_exceptions=True)
    owners = [f"key {k['name'] or k['key_id']} ({k['key_id']})" for k in key_list] + [
        f"tenant {t}" for t in tenant_ids]
    shown, failed = [], 0
    for owner, answer in zip(owners, answers, strict=True):
        if isinstance(answer, ApiError):
            failed += 1
        elif isinstance(answer, BaseException):
            raise answer
        elif answer.get("exists"):
            shown.append(_budget_view(owner, answer))
    return render(request, "budgets.html", page_name="budgets", budgets=shown, failed=failed)


async def guardrails(request: web.Request) -> web.Response:
    page = await _call(request, "GET", "/api/guardrails/policies", params={"page_size": LIST_SIZE})
    return render(request, "guardrails.html", page_name="guardrails", policies=page.get("policies", []),
                  more=bool(page.get("next_page_token")))


async def routing(request: web.Request) -> web.Response:
    stats = await _call(request, "GET", "/api/routing/stats")
    return render(request, "routing.html", page_name="routing", stats=stats)


def add_routes(router: web.UrlDispatcher, prefix: str) -> None:
    router.add_get(f"{prefix}/keys", keys, name="keys")
    router.add_post(f"{prefix}/keys", create_key)
    router.add_get(f"{prefix}/keys/created", key_secret, name="key_secret")
    router.add_post(f"{prefix}/keys/{{key_id}}/rotate", rotate_key)
    router.add_post(f"{prefix}/keys/{{key_id}}/revoke", revoke_key)
    router.add_get(f"{prefix}/usage", usage)
    router.add_get(f"{prefix}/budgets", budgets)
    router.add_get(f"{prefix}/guardrails", guardrails)
    router.add_get(f"{prefix}/routing", routing)
