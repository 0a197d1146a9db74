"""The other commands (tenants, models, health), the registry, and what every command shares: where
the key comes from, errors from the API or the network, and the caller's key never printed."""

from __future__ import annotations

import json

import httpx
from cli_fakes import CALLER_KEY, KEY, TENANT, api_error, paged

from switchboard_cli.commands import COMMANDS
from switchboard_cli.main import cli


def test_help_lists_every_registered_command(run):
    result = run("--help")
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command.name in cli.commands and f"  {command.name} " in result.stdout
    assert "SWITCHBOARD_API_KEY" in result.stdout and "master-key" in result.stdout


def test_tenants_create_update_list_show_delete(run, gateway):
    gateway.answers[("POST", "/api/tenants")] = (200, TENANT)
    created = run("tenants", "create", "--name", "Acme", "--id", "acme", "--rpm", "120", "--tpm", "50000")
    assert created.exit_code == 0, created.output
    assert gateway.body() == {"name": "Acme", "tenant_id": "acme",
                              "default_rate_limits": {"requests_per_minute": 120, "tokens_per_minute": 50000}}
    assert "rpm 120" in created.stdout

    gateway.answers[("PATCH", "/api/tenants/acme")] = (200, {**TENANT, "name": "Acme Inc"})
    assert run("tenants", "update", "acme", "--name", "Acme Inc", "--rpm", "0").exit_code == 0
    assert gateway.body() == {"name": "Acme Inc", "default_rate_limits": {"requests_per_minute": 0}}
    assert run("tenants", "update", "acme").exit_code == 2  # nothing named

    tenants = [{**TENANT, "tenant_id": f"t{i}"} for i in range(3)]
    gateway.answers[("GET", "/api/tenants")] = paged(tenants, "tenants")
    listed = run("tenants", "list", "--page-size", "2", "--json")
    assert [t["tenant_id"] for t in json.loads(listed.stdout)] == ["t0", "t1", "t2"]
    table = run("tenants", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "DEFAULT", "LIMITS", "CREATED"] and len(table) == 5

    gateway.answers[("GET", "/api/tenants/acme")] = (200, TENANT)
    assert json.loads(run("tenants", "show", "acme", "--json").stdout) == TENANT

    gateway.answers[("DELETE", "/api/tenants/acme")] = (409, api_error(
        "Tenant 'acme' still has 2 unrevoked keys: revoke them first.", code="tenant_not_empty"))
    refused = run("tenants", "delete", "acme", "--yes")
    assert refused.exit_code == 1 and "still has 2 unrevoked keys" in refused.stderr
    gateway.answers[("DELETE", "/api/tenants/acme")] = (200, TENANT)
    assert run("tenants", "delete", "acme", "--yes").stdout == "Deleted tenant acme (Acme).\n"


def test_models_list_and_show(run, gateway):
    models = [{"id": "switchboard-local", "object": "model", "created": 1796127864, "owned_by": "switchboard"},
              {"id": "openai/gpt-4o", "object": "model", "created": 1796127864, "owned_by": "openai"}]
    gateway.answers[("GET", "/v1/models")] = (200, {"object": "list", "data": models})
    result = run("models", "list")
    assert result.exit_code == 0, result.output
    assert [line.split() for line in result.stdout.splitlines()[2:]] == [
        ["switchboard-local", "switchboard", "2026-12-01"], ["openai/gpt-4o", "openai", "2026-12-01"]]
    assert json.loads(run("models", "list", "--json").stdout) == models
    gateway.answers[("GET", "/v1/models/openai/gpt-4o")] = (200, models[1])
    shown = run("models", "show", "openai/gpt-4o")
    assert shown.exit_code == 0 and "openai/gpt-4o" in shown.stdout


def test_health(run, gateway):
    gateway.answers[("GET", "/healthz")] = (200, "")
    ready = run("health", "--json")
    assert ready.exit_code == 0
    assert json.loads(ready.stdout) == {"url": "http://127.0.0.1:8080", "ready": True, "edge": "up"}
    assert "authorization" not in gateway.requests[-1].headers  # health needs no key

    gateway.answers[("GET", "/healthz")] = (503, "")
    gateway.answers[("GET", "/livez")] = (200, "ok\n")
    degraded = run("health")
    assert degraded.exit_code == 1 and "edge at http://127.0.0.1:8080 is up, but a service" in degraded.stdout
    gateway.answers[("GET", "/livez")] = (503, "")
    assert "does not answer its liveness check" in run("health").stdout

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
    gateway.answers[("GET", "/healthz")] = refuse
    unreachable = run("health", "--json")  # a monitor still gets JSON
    assert unreachable.exit_code == 1
    assert json.loads(unreachable.stdout) == {"url": "http://127.0.0.1:8080", "ready": False,
                                              "edge": "unreachable"}
    assert "Connection refused" in run("health").stdout


def test_health_needs_no_key(run, gateway):
    gateway.answers[("GET", "/healthz")] = (200, "")
    assert run("health", env={"SWITCHBOARD_API_KEY": None}).exit_code == 0


def test_without_a_key_the_command_says_where_to_put_one(run, gateway):
    result = run("keys", "list", env={"SWITCHBOARD_API_KEY": None})
    assert result.exit_code == 1 and "no API key: pass --api-key or set SWITCHBOARD_API_KEY" in result.stderr
    assert gateway.requests == []


def test_the_key_comes_from_the_flag_then_the_environment_then_make_runs_data_dir(run, gateway, tmp_path):
    gateway.answers[("GET", "/api/keys")] = paged([], "keys")
    (tmp_path / "master-key").write_text("sk-sb-master-from-file\n")

    def presented(*args, **env):
        assert run(*args, "keys", "list", env=env).exit_code == 0
        return gateway.requests[-1].headers["authorization"]

    no_env = {"SWITCHBOARD_API_KEY": None, "SWITCHBOARD_DATA_DIR": str(tmp_path)}
    assert presented("--api-key", "sk-flag", **no_env) == "Bearer sk-flag"
    assert presented(**{**no_env, "SWITCHBOARD_API_KEY": "sk-api"}) == "Bearer sk-api"
    assert presented(**{**no_env, "SWITCHBOARD_MASTER_KEY": "sk-master"}) == "Bearer sk-master"
    assert presented(**no_env) == "Bearer sk-sb-master-from-file"
    assert presented("--data-dir", str(tmp_path), SWITCHBOARD_API_KEY=None) == "Bearer sk-sb-master-from-file"
    # Never to another machine: the local stack's master key stays on loopback.
    remote = run("--url", "https://gw.example.com", "keys", "list", env=no_env)
    assert remote.exit_code == 1 and "no API key" in remote.stderr


def test_the_url_from_the_flag_or_the_environment(run, gateway):
    gateway.answers[("GET", "/api/keys")] = paged([], "keys")
    run("--url", "https://gw.example.com/v1", "keys", "list")
    assert str(gateway.requests[-1].url).startswith("https://gw.example.com/api/keys?")
    run("keys", "list", env={"SWITCHBOARD_URL": "http://10.0.0.5:8080/"})
    assert str(gateway.requests[-1].url).startswith("http://10.0.0.5:8080/api/keys?")
    bad = run("--url", "gw.example.com", "keys", "list")
    assert bad.exit_code == 2 and "is not an http:// or https:// URL" in bad.stderr


def test_an_unreachable_gateway_is_one_line_and_exit_1(run, gateway):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
    gateway.answers[("GET", f"/api/keys/{KEY['key_id']}")] = refuse
    result = run("keys", "show", KEY["key_id"])
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: cannot reach the gateway at http://127.0.0.1:8080: [Errno 111] "
                                     "Connection refused (is it running? `make run` starts one on this machine)")
    assert "Traceback" not in result.output


def test_an_error_that_is_not_openai_json_is_shown_as_text(run, gateway):
    gateway.answers[("GET", "/api/keys")] = (503, "upstream connect error or disconnect/reset before headers")
    result = run("keys", "list")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: upstream connect error or disconnect/reset before headers (HTTP 503)"


def test_the_callers_key_is_never_printed(run, gateway):
    """Not even when an error message (a proxy's, say) echoes it back."""
    gateway.answers[("GET", "/api/keys")] = (401, api_error(f"Bad key {CALLER_KEY}.", code="invalid_api_key"))
    gateway.answers[("GET", "/api/tenants")] = (502, f"proxy: Authorization: Bearer {CALLER_KEY}")
    for args in (("keys", "list"), ("tenants", "list"), ("--api-key", CALLER_KEY, "keys", "list")):
        result = run(*args)
        assert result.exit_code == 1
        assert CALLER_KEY not in result.output and "[REDACTED]" in result.stderr


def test_routing_stats(run, gateway):
    stats = {"strategy": "failover", "total_requests": 14, "success_rate": 0.5, "deployments": [
        {"model": "gpt-4o", "deployment": "openai/gpt-4o", "provider": "openai", "healthy": True,
         "circuit_state": "closed", "requests": 12, "errors": 1, "success_rate": 0.9166,
         "latency_p50_ms": 210.5, "latency_p95_ms": 400.0, "ttft_p50_ms": 90.25},
        {"model": "gpt-4o", "deployment": "azure/gpt-4o", "provider": "azure", "healthy": False,
         "circuit_state": "open", "requests": 2, "errors": 2, "success_rate": 0.0,
         "last_error": "upstream_error"}]}
    gateway.answers[("GET", "/api/routing/stats")] = (200, stats)
    assert json.loads(run("routing", "stats", "--model", "gpt-4o", "--json").stdout) == stats
    assert gateway.requests[-1].url.params["model"] == "gpt-4o"
    lines = run("routing", "stats").stdout.splitlines()
    assert "model" not in gateway.requests[-1].url.params
    assert lines[0] == "strategy: failover  requests: 14  success: 50.0 %"
    rows = [line.split() for line in lines[3:]]
    assert rows == [["gpt-4o", "openai/gpt-4o", "openai", "healthy", "closed", "12", "1", "91.7", "0",
                     "210.5", "400.0", "90.2", "-"],
                    ["gpt-4o", "azure/gpt-4o", "azure", "unavailable", "open", "2", "2", "0.0", "0",
                     "0.0", "0.0", "0.0", "upstream_error"]]
