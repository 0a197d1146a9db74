"""The operator CLI (`switchboard`) against the real stack, through the edge only: a key's whole
life, tenants, pages, JSON that parses, and errors (the API's and bad arguments) with their exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from click.testing import CliRunner, Result

from switchboard_cli.main import cli
from tests.e2e.test_keys_lifecycle import chat, wait_until


def switchboard(stack, *args: str, key: str | None = None) -> Result:
    """`switchboard ARGS` in this process, configured the way the README says: the environment."""
    env = {"SWITCHBOARD_URL": stack.edge_url, "SWITCHBOARD_API_KEY": key or stack.master_key,
           "SWITCHBOARD_MASTER_KEY": None, "SWITCHBOARD_DATA_DIR": str(stack.data_dir)}
    return CliRunner().invoke(cli, list(args), env=env)


def succeeds(result: Result) -> Result:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return result


def as_json(result: Result):
    return json.loads(succeeds(result).stdout)


def chat_with(stack, secret: str, model: str) -> httpx.Response:
    return httpx.post(stack.edge_url + "/v1/chat/completions", timeout=10,
                      headers={"authorization": f"Bearer {secret}"},
                      json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_a_key_from_creation_to_revocation(stack):
    tenant = as_json(switchboard(stack, "tenants", "create", "--name", "CLI e2e", "--id", "cli-e2e",
                                 "--parallel", "16", "--json"))
    assert tenant["default_rate_limits"] == {"max_parallel_requests": 16}
    assert "cli-e2e" in {t["tenant_id"] for t in as_json(switchboard(stack, "tenants", "list", "--json"))}
    assert "cli-e2e" in succeeds(switchboard(stack, "tenants", "list")).stdout

    created = switchboard(stack, "keys", "create", "--name", "cli-app", "--tenant", "cli-e2e",
                          "--rpm", "60", "--tpm", "100000", "--models", "switchboard-*",
                          "--expires", "30d", "--metadata", "team=ops", "--json")
    answer = as_json(created)
    key, secret = answer["key"], answer["secret"]
    assert "shown only this once" in created.stderr and secret not in created.stderr
    assert key["rate_limits"] == {"requests_per_minute": 60, "tokens_per_minute": 100000}
    assert key["effective_rate_limits"] == {"requests_per_minute": 60, "tokens_per_minute": 100000,
                                            "max_parallel_requests": 16}
    assert key["allowed_models"] == ["switchboard-*"] and key["metadata"] == {"team": "ops"}
    expires = datetime.fromisoformat(key["expires_at"].replace("Z", "+00:00"))
    assert timedelta(days=30) - timedelta(minutes=1) < expires - datetime.now(UTC) <= timedelta(days=30)
    assert chat(stack, secret).status_code == 200
    assert chat_with(stack, secret, "gpt-4o-mini").status_code == 403  # not in --models

    listed = succeeds(switchboard(stack, "keys", "list", "--tenant", "cli-e2e")).stdout
    assert key["key_id"] in listed and "rpm 60, tpm 100,000, parallel 16" in listed
    assert [k["key_id"] for k in as_json(switchboard(stack, "keys", "list", "--tenant", "cli-e2e",
                                                     "--name-prefix", "cli-", "--json"))] == [key["key_id"]]
    shown = succeeds(switchboard(stack, "keys", "show", key["key_id"])).stdout
    assert "cli-app" in shown and key["key_hint"] in shown and secret not in shown

    updated = as_json(switchboard(stack, "keys", "update", key["key_id"], "--name", "cli-app-2",
                                  "--rpm", "120", "--tpm", "0", "--json"))
    assert updated["name"] == "cli-app-2" and updated["rate_limits"] == {"requests_per_minute": 120}

    rotated = as_json(switchboard(stack, "keys", "rotate", key["key_id"], "--grace", "1h", "--json"))
    new = rotated["secret"]
    assert new != secret and rotated["key"]["previous_secret_expires_at"]
    assert chat(stack, new).status_code == 200
    assert chat(stack, secret).status_code == 200  # the old secret, within its grace period

    revoked = as_json(switchboard(stack, "keys", "revoke", key["key_id"], "--yes", "--json"))
    assert revoked["revoked_at"]
    assert wait_until(lambda: chat(stack, new).status_code == 401)
    assert chat(stack, secret).status_code == 401
    assert key["key_id"] in {k["key_id"] for k in as_json(switchboard(
        stack, "keys", "list", "--tenant", "cli-e2e", "--revoked", "--json"))}
    assert succeeds(switchboard(stack, "tenants", "delete", "cli-e2e", "--yes")).stdout.startswith(
        "Deleted tenant cli-e2e")


def test_list_gathers_every_page(stack):
    succeeds(switchboard(stack, "tenants", "create", "--name", "CLI pages", "--id", "cli-pages"))
    made = [as_json(switchboard(stack, "keys", "create", "--name", f"p{i}", "--tenant", "cli-pages",
                                "--json"))["key"]["key_id"] for i in range(3)]
    listed = as_json(switchboard(stack, "keys", "list", "--tenant", "cli-pages", "--page-size", "2", "--json"))
    assert sorted(k["key_id"] for k in listed) == sorted(made)


def test_errors_have_the_apis_message_and_bad_arguments_exit_2(stack):
    bad = switchboard(stack, "keys", "create", "--name", "x", "--expires", "3x")
    assert bad.exit_code == 2
    assert "Invalid value for '--expires': '3x' is neither a duration nor a date" in bad.stderr

    missing = switchboard(stack, "keys", "show", "key_nope")
    assert missing.exit_code == 1
    assert missing.stderr.strip() == "Error: No key 'key_nope'. (HTTP 404, key_not_found)"

    refused = switchboard(stack, "keys", "create", "--name", "x", "--models", "gpt-*-mini")
    assert refused.exit_code == 1 and "allowed_models[0]" in refused.stderr

    member = as_json(switchboard(stack, "keys", "create", "--name", "cli-member", "--json"))["secret"]
    denied = switchboard(stack, "tenants", "create", "--name", "nope", key=member)
    assert denied.exit_code == 1 and denied.stdout == "" and member not in denied.output


def test_models_and_health(stack):
    models = {m["id"] for m in as_json(switchboard(stack, "models", "list", "--json"))}
    assert {"switchboard-local", "gpt-4o-mini"} <= models
    assert as_json(switchboard(stack, "health", "--json")) == {"url": stack.edge_url, "ready": True, "edge": "up"}


def test_routing_stats_count_the_requests_just_served(stack):
    def local_requests() -> int:
        stats = as_json(switchboard(stack, "routing", "stats", "--model", "switchboard-local", "--json"))
        assert {d["model"] for d in stats["deployments"]} == {"switchboard-local"}
        return sum(int(d.get("requests", 0)) for d in stats["deployments"])

    before = local_requests()
    for _ in range(3):
        assert chat_with(stack, stack.master_key, "switchboard-local").status_code == 200
    # One router in this stack, so its counts are the whole gateway's.
    assert local_requests() == before + 3
    table = succeeds(switchboard(stack, "routing", "stats")).stdout
    assert table.startswith("strategy: ") and "switchboard-local" in table and "CIRCUIT" in table


def test_the_installed_command(stack):
    """`make venv` puts `switchboard` on the venv's PATH; it finds `make run`'s master key itself."""
    command = Path(sys.executable).parent / "switchboard"
    assert command.exists(), f"{command} is missing: `make venv` installs it"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SWITCHBOARD_")}
    env |= {"SWITCHBOARD_URL": f"{stack.edge_url}/v1", "SWITCHBOARD_DATA_DIR": str(stack.data_dir)}
    if not (stack.data_dir / "master-key").exists():  # the suite runs with SWITCHBOARD_MASTER_KEY set
        env["SWITCHBOARD_MASTER_KEY"] = stack.master_key
    done = subprocess.run([str(command), "models", "list"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["MODEL", "OWNED", "BY"] and "switchboard-local" in done.stdout


def test_budgets_and_usage_export(stack, tmp_path):
    key = as_json(switchboard(stack, "keys", "create", "--name", "cli-money", "--json"))
    key_id, secret = key["key"]["key_id"], key["secret"]
    budget = as_json(switchboard(stack, "budgets", "set", "--key", key_id, "--daily-usd", "2.5",
                                 "--monthly-tokens", "1000000", "--alert", "90", "--json"))
    periods = {b["period"]: b for b in budget["limits"]}
    assert periods["BUDGET_PERIOD_DAILY"]["limit_micros_usd"] == 2_500_000
    assert periods["BUDGET_PERIOD_MONTHLY"]["limit_tokens"] == 1_000_000
    assert budget["alert_thresholds_percent"] == [90]
    table = succeeds(switchboard(stack, "budgets", "show", "--key", key_id)).stdout
    assert "daily" in table and "$2.5" in table and "1,000,000 tokens" in table
    assert "Give exactly one" in switchboard(stack, "budgets", "show").output

    assert chat_with(stack, secret, "switchboard-local").status_code == 200
    wait_until(lambda: len(httpx.get(stack.edge_url + "/api/billing/usage", timeout=10,
                                     params={"key_id": key_id},
                                     headers={"authorization": f"Bearer {stack.master_key}"}
                                     ).json()["records"]) == 1)
    out = tmp_path / "usage.jsonl"
    succeeds(switchboard(stack, "usage", "export", "--format", "jsonl", "--key", key_id,
                         "--output", str(out)))
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["key_id"] == key_id and record["model"] == "switchboard-local"
    csv_text = succeeds(switchboard(stack, "usage", "export", "--key", key_id)).stdout
    header, row = csv_text.strip().splitlines()  # the header and the one record
    assert header.split(",")[:3] == ["request_id", "occurred_at", "key_id"]
    assert record["request_id"] in row
    # The key's own budget, as the key itself sees it.
    assert as_json(switchboard(stack, "budgets", "show", "--key", key_id, "--json",
                               key=secret))["exists"] is True


def test_guardrails_and_memory_commands_against_the_real_services(stack, tmp_path):
    policy = as_json(switchboard(stack, "guardrails", "create", "--name", "cli-no-pii",
                                 "--input", "pii:redact", "--json"))
    assert policy["input_rules"][0]["action"] == "ACTION_REDACT"
    assert policy["policy_id"] in succeeds(switchboard(stack, "guardrails", "list")).stdout
    succeeds(switchboard(stack, "guardrails", "delete", policy["policy_id"], "--yes"))

    succeeds(switchboard(stack, "memory", "collections", "create", "cli-docs"))
    doc = tmp_path / "leave.md"
    doc.write_text("# Leave\n\nParental leave is 16 weeks at full pay.", encoding="utf-8")
    assert "succeeded" in succeeds(switchboard(stack, "memory", "collections", "add", "cli-docs",
                                               str(doc))).stdout
    hits = as_json(switchboard(stack, "memory", "collections", "query", "cli-docs",
                               "parental leave", "--json"))
    assert hits["chunks"][0]["chunk_id"] == "leave.md#0"
    succeeds(switchboard(stack, "memory", "collections", "delete", "cli-docs", "--yes"))
