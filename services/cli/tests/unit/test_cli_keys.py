"""`switchboard keys`: what each command sends to the API, and what it prints (tables, JSON, the
secret once)."""

from __future__ import annotations

import json

from cli_fakes import CALLER_KEY, KEY, SECRET, api_error, paged

KEY_PATH = f"/api/keys/{KEY['key_id']}"


def test_create_sends_the_limits_models_and_expiry_and_prints_the_secret_once(run, gateway):
    gateway.answers[("POST", "/api/keys")] = (200, {"key": KEY, "secret": SECRET})
    result = run("keys", "create", "--name", "app", "--rpm", "60", "--tpm", "100000",
                 "--models", "gpt-4o*", "--expires", "30d")
    assert result.exit_code == 0, result.output
    assert gateway.body() == {"name": "app", "allowed_models": ["gpt-4o*"], "expires_in_seconds": 2592000,
                              "rate_limits": {"requests_per_minute": 60, "tokens_per_minute": 100000}}
    request = gateway.requests[-1]
    assert request.headers["authorization"] == f"Bearer {CALLER_KEY}"
    assert request.url == "http://127.0.0.1:8080/api/keys"  # the `make run` edge by default
    assert result.stdout.count(SECRET) == 1 and f"Secret: {SECRET}" in result.stdout
    assert "shown only this once" in result.stderr and KEY["key_hint"] in result.stderr
    assert SECRET not in result.stderr
    assert "key_fde11b9516de1d7204fd97ca" in result.stdout and "rpm 60, tpm 100,000, tpd 2,000,000" in result.stdout


def test_create_with_every_field(run, gateway):
    gateway.answers[("POST", "/api/keys")] = (200, {"key": KEY, "secret": SECRET})
    result = run("keys", "create", "--name", "app", "--tenant", "acme", "--user", "ana", "--role",
                 "tenant_admin", "--models", "gpt-4o*,anthropic/*", "--models", "switchboard-local",
                 "--tpd", "2000000", "--parallel", "8", "--expires", "2027-01-31",
                 "--metadata", "team=search", "--metadata", "env=prod")
    assert result.exit_code == 0, result.output
    assert gateway.body() == {
        "name": "app", "tenant_id": "acme", "user_id": "ana", "role": "tenant_admin",
        "allowed_models": ["gpt-4o*", "anthropic/*", "switchboard-local"],
        "rate_limits": {"tokens_per_day": 2000000, "max_parallel_requests": 8},
        "expires_at": "2027-01-31T00:00:00Z", "metadata": {"team": "search", "env": "prod"}}


def test_create_json_is_the_api_answer_and_parses(run, gateway):
    gateway.answers[("POST", "/api/keys")] = (200, {"key": KEY, "secret": SECRET})
    for args in (("--json", "keys", "create", "--name", "app"), ("keys", "create", "--name", "app", "--json")):
        result = run(*args)
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout) == {"key": KEY, "secret": SECRET}
        assert "shown only this once" in result.stderr  # on stderr: `| jq -r .secret` stays clean


def test_bad_arguments_exit_2_with_a_message_and_send_nothing(run, gateway):
    for args, message in [
        (("keys", "create", "--name", "app", "--expires", "3x"), "'3x' is neither a duration nor a date"),
        (("keys", "create", "--name", "app", "--rpm", "0"), "'--rpm': 0 is not in the range x>=1"),
        (("keys", "create", "--name", "app", "--rpm", "many"), "'many' is not a valid integer"),
        (("keys", "create", "--name", "app", "--role", "owner"), "'owner' is not one of"),
        (("keys", "create", "--name", "app", "--expires", "never"), "leave --expires out"),
        (("keys", "create", "--name", "app", "--metadata", "team"), "is not KEY=VALUE"),
        (("keys", "create"), "Missing option '--name'"),
        (("keys", "rotate", KEY["key_id"], "--grace", "soon"), "'soon' is not a duration"),
        (("keys", "update", KEY["key_id"]), "nothing to update"),
        (("keys", "list", "--page-size", "5000"), "5000 is not in the range 1<=x<=1000"),
    ]:
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    assert gateway.requests == []


def test_an_api_error_is_its_message_and_exit_1(run, gateway):
    gateway.answers[("POST", "/api/keys")] = (400, api_error(
        "allowed_models[0]: '*' is allowed only at the end.", param="allowed_models[0]",
        code="invalid_value"))
    result = run("keys", "create", "--name", "app", "--models", "gpt-*-mini")
    assert result.exit_code == 1
    assert result.stderr.strip() == ("Error: allowed_models[0]: '*' is allowed only at the end. "
                                     "(HTTP 400, invalid_value)")
    assert result.stdout == ""


def test_list_follows_every_page_with_the_filters(run, gateway):
    keys = [{**KEY, "key_id": f"key_{i:02d}", "name": f"svc-{i}"} for i in range(5)]
    gateway.answers[("GET", "/api/keys")] = paged(keys, "keys")
    result = run("keys", "list", "--tenant", "acme", "--user", "ana", "--name-prefix", "svc-",
                 "--revoked", "--page-size", "2", "--json")
    assert result.exit_code == 0, result.output
    assert [k["key_id"] for k in json.loads(result.stdout)] == [k["key_id"] for k in keys]
    assert len(gateway.requests) == 3
    params = gateway.requests[0].url.params
    assert dict(params) == {"tenant_id": "acme", "user_id": "ana", "name_prefix": "svc-",
                            "revoked": "true", "page_size": "2"}
    assert gateway.requests[1].url.params["page_token"] == "2"


def test_list_limit_stops_early_and_not_revoked_is_false(run, gateway):
    keys = [{**KEY, "key_id": f"key_{i:02d}"} for i in range(5)]
    gateway.answers[("GET", "/api/keys")] = paged(keys, "keys")
    result = run("keys", "list", "--not-revoked", "--limit", "3", "--page-size", "2", "--json")
    assert [k["key_id"] for k in json.loads(result.stdout)] == ["key_00", "key_01", "key_02"]
    assert [r.url.params["page_size"] for r in gateway.requests] == ["2", "1"]
    assert gateway.requests[0].url.params["revoked"] == "false"
    run("keys", "list")
    assert "revoked" not in gateway.requests[-1].url.params  # neither flag: both kinds


def test_list_table(run, gateway):
    revoked = {**KEY, "key_id": "key_revoked", "name": "old", "revoked_at": "2026-12-01T13:00:00Z"}
    expired = {**KEY, "key_id": "key_expired", "name": "brief", "expires_at": "2026-01-01T00:00:00Z",
               "allowed_models": [], "effective_rate_limits": {}}
    gateway.answers[("GET", "/api/keys")] = paged([KEY, revoked, expired], "keys")
    result = run("keys", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ID", "NAME", "TENANT", "ROLE", "HINT", "MODELS", "LIMITS", "EXPIRES", "STATUS"]
    row = {line.split()[0]: line for line in lines[2:]}
    assert row[KEY["key_id"]].split()[-1] == "active" and "2099-12-31 00:00 UTC" in row[KEY["key_id"]]
    assert row["key_revoked"].split()[-1] == "revoked"
    assert row["key_expired"].split()[-1] == "expired" and "every model" in row["key_expired"]
    assert all(line == line.rstrip() for line in lines)  # no padding left at a line's end


def test_list_of_nothing(run, gateway):
    gateway.answers[("GET", "/api/keys")] = paged([], "keys")
    assert run("keys", "list").stdout == "No keys.\n"
    assert json.loads(run("keys", "list", "--json").stdout) == []


def test_show_prints_every_field_but_no_secret(run, gateway):
    gateway.answers[("GET", KEY_PATH)] = (200, {**KEY, "previous_secret_expires_at": "2026-12-01T13:24:44Z"})
    result = run("keys", "show", KEY["key_id"])
    assert result.exit_code == 0, result.output
    fields = {line[:18].strip(): line[18:].strip() for line in result.stdout.splitlines()}
    assert fields["ID"] == KEY["key_id"] and fields["User"] == "ana" and fields["Role"] == "member"
    assert fields["Hint"] == "sk-sb-ev...0hOH" and fields["Models"] == "gpt-4o*"
    assert fields["Limits"] == "rpm 60, tpm 100,000, tpd 2,000,000"
    assert fields["Expires"] == "2099-12-31 00:00:00 UTC" and fields["Metadata"] == "team=search"
    assert fields["Previous secret"] == "works until 2026-12-01 13:24:44 UTC"
    assert "Secret" not in fields and "sk-sb-evojs" not in result.output


def test_names_from_the_api_are_printed_as_they_are(run, gateway):
    """Rich markup in a value (a key named "[red]x[/red]") is text, not styling."""
    gateway.answers[("GET", KEY_PATH)] = (200, {**KEY, "name": "[bold red]x[/bold red]"})
    assert "[bold red]x[/bold red]" in run("keys", "show", KEY["key_id"]).stdout


def test_ids_are_one_path_segment(run, gateway):
    run("keys", "show", "../tenants/x?y")
    assert gateway.requests[-1].url.raw_path == b"/api/keys/..%2Ftenants%2Fx%3Fy"


def test_update_sends_only_what_is_named(run, gateway):
    gateway.answers[("PATCH", KEY_PATH)] = (200, KEY)
    result = run("keys", "update", KEY["key_id"], "--name", "app-2", "--rpm", "0", "--tpm", "5000",
                 "--models", "*", "--expires", "never", "--metadata", "team=", "--json")
    assert result.exit_code == 0, result.output
    assert gateway.body() == {"name": "app-2", "allowed_models": ["*"],
                              "rate_limits": {"requests_per_minute": 0, "tokens_per_minute": 5000},
                              "expires_at": "1970-01-01T00:00:00Z", "metadata": {"team": ""}}
    assert json.loads(result.stdout) == KEY
    run("keys", "update", KEY["key_id"], "--expires", "12h")
    assert gateway.body() == {"expires_in_seconds": 43200}


def test_rotate_with_a_grace_period(run, gateway):
    rotated = {"key": {**KEY, "previous_secret_expires_at": "2026-12-01T13:24:44Z"}, "secret": SECRET,
               "previous_secret_expires_at": "2026-12-01T13:24:44Z"}
    gateway.answers[("POST", f"{KEY_PATH}/rotate")] = (200, rotated)
    result = run("keys", "rotate", KEY["key_id"], "--grace", "1h")
    assert result.exit_code == 0, result.output
    assert gateway.body() == {"grace_period_seconds": 3600}
    assert result.stdout.count(SECRET) == 1 and "works until 2026-12-01 13:24:44 UTC" in result.stdout
    assert "shown only this once" in result.stderr
    run("keys", "rotate", KEY["key_id"])
    assert gateway.body() == {}  # no grace: the old secret stops at once


def test_revoke_asks_first_and_off_a_terminal_needs_yes(run, gateway):
    gateway.answers[("DELETE", KEY_PATH)] = (200, {**KEY, "revoked_at": "2026-12-01T13:00:00Z"})
    refused = run("keys", "revoke", KEY["key_id"])
    assert refused.exit_code == 2 and "pass --yes" in refused.stderr and gateway.requests == []
    result = run("keys", "revoke", KEY["key_id"], "--yes")
    assert result.exit_code == 0, result.output
    assert gateway.requests[-1].method == "DELETE" and "revoked" in result.stdout


def test_revoke_on_a_terminal_goes_ahead_only_when_confirmed(run, gateway, monkeypatch):
    monkeypatch.setattr("switchboard_cli.output.on_terminal", lambda: True)
    gateway.answers[("DELETE", KEY_PATH)] = (200, {**KEY, "revoked_at": "2026-12-01T13:00:00Z"})
    declined = run("keys", "revoke", KEY["key_id"], input="n\n")
    assert declined.exit_code == 1 and "Revoke key key_fde11b9516de1d7204fd97ca?" in declined.output
    assert gateway.requests == []
    confirmed = run("keys", "revoke", KEY["key_id"], input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    assert [r.method for r in gateway.requests] == ["DELETE"]
