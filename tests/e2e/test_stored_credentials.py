"""Provider keys added through /api/credentials, through the real stack: admin keys only, no
restart, sealed by the router (AES-256-GCM) before auth stores them, every router replica
following each change over NATS, and the secret in no answer, log or database file."""

from __future__ import annotations

import json
import sqlite3
import time

import httpx
import pytest
from click.testing import CliRunner
from switchboard.gateway.v1 import gateway_pb2

from switchboard_cli.main import cli
from tests.e2e.credentials_stack import credentials_stack, router_replica
from tests.e2e.test_http_edge import assert_openai_error, post
from tests.e2e.test_usage_billing import create_key
from tests.fakes.openai_upstream import run_fake_in_thread

GOOD, NEXT, REVOKED = "sk-vault-good-key-000001", "sk-vault-next-key-000002", "sk-vault-revoked-000003"
SECRETS = (GOOD, NEXT, REVOKED)


@pytest.fixture
def vault_stack(tmp_path):
    fake = run_fake_in_thread(api_keys={GOOD, NEXT})
    config = {
        "providers": {"local": {"type": "local"},
                      # No key in the file: all from /api/credentials.
                      "vault": {"type": "openai", "base_url": fake.base_url, "api_keys": []}},
        "models": [{"name": "switchboard-local", "deployments": [{"provider": "local"}]},
                   {"name": "vault-model", "deployments": [{"provider": "vault", "model": "gpt-4o-mini"}]}],
    }
    try:
        with credentials_stack(tmp_path, config) as stack:
            yield stack
    finally:
        fake.stop()


@pytest.fixture
def second_router(vault_stack, tmp_path):
    with router_replica(vault_stack, tmp_path) as stub:
        yield stub


def api(stack, method: str, path: str, key: str | None = None, **kw) -> httpx.Response:
    return httpx.request(method, stack.edge_url + path, timeout=15, **kw,
                         headers={"authorization": f"Bearer {key or stack.master_key}"})


def chat(stack) -> httpx.Response:
    return post(stack, {"model": "vault-model", "messages": [{"role": "user", "content": "hi"}]})


def hints_on(stub, master_key: str) -> list[str]:
    stats = stub.GetRoutingStats(gateway_pb2.GetRoutingStatsRequest(), timeout=10,
                                 metadata=[("authorization", f"Bearer {master_key}")])
    return sorted(k.hint for k in stats.provider_keys if k.provider == "vault")


def wait_for(check, seconds: float = 20.0):
    """Until `check()` is truthy (a replica applying a NATS event), failing after `seconds`."""
    deadline = time.monotonic() + seconds
    while not (value := check()):
        assert time.monotonic() < deadline, "the change did not arrive"
        time.sleep(0.1)
    return value


def test_credentials_added_rotated_and_removed_without_a_restart(vault_stack, second_router, tmp_path):
    stack, answers = vault_stack, []
    # Nothing stored yet: the provider has no key, said at once.
    resp = chat(stack)
    assert_openai_error(resp, 503, code="all_keys_exhausted")
    assert "'vault' has no API key" in resp.json()["error"]["message"]

    # Admin keys only; the body is read strictly.
    _, member = create_key(stack)
    assert api(stack, "POST", "/api/credentials", key=member,
               json={"provider": "vault", "secret": GOOD}).status_code == 403
    assert api(stack, "GET", "/api/credentials", key=member).status_code == 403
    bad = api(stack, "POST", "/api/credentials", json={"provider": "vault", "secret": GOOD, "label": "x"})
    assert_openai_error(bad, 400, param="label")
    unknown = api(stack, "POST", "/api/credentials", json={"provider": "nope", "secret": GOOD})
    assert_openai_error(unknown, 400, param="provider")

    created = api(stack, "POST", "/api/credentials", json={"provider": "vault", "secret": GOOD, "weight": 2})
    assert created.status_code == 200, created.text
    cred = created.json()
    assert (cred["provider"], cred["hint"], cred["weight"]) == ("vault", "sk-…0001", 2)
    cred_id = cred["credential_id"]
    answers += [created.text]

    # Served at once, on this replica and (through credentials.changed) on the other.
    assert chat(stack).status_code == 200
    assert wait_for(lambda: hints_on(second_router, stack.master_key)) == ["sk-…0001"]
    listed = api(stack, "GET", "/api/credentials")
    shown = api(stack, "GET", f"/api/credentials/{cred_id}")
    assert [c["credential_id"] for c in listed.json()["credentials"]] == [cred_id]
    assert shown.json()["hint"] == "sk-…0001"
    answers += [listed.text, shown.text]

    # A rotation to a key the provider refuses: invalid at once, so the request is exhausted.
    rotated = api(stack, "POST", f"/api/credentials/{cred_id}/rotate", json={"secret": REVOKED})
    assert rotated.json()["hint"] == "sk-…0003"
    assert_openai_error(chat(stack), 503, code="all_keys_exhausted")
    # Rotated again: the new key starts afresh and serves.
    again = api(stack, "POST", f"/api/credentials/{cred_id}/rotate", json={"secret": NEXT})
    assert chat(stack).status_code == 200
    assert wait_for(lambda: hints_on(second_router, stack.master_key) == ["sk-…0002"])
    answers += [rotated.text, again.text, api(stack, "GET", "/api/routing/stats").text]

    removed = api(stack, "DELETE", f"/api/credentials/{cred_id}")
    assert removed.status_code == 200 and removed.json()["credential_id"] == cred_id
    assert_openai_error(chat(stack), 503, code="all_keys_exhausted")
    assert wait_for(lambda: hints_on(second_router, stack.master_key) == [])
    assert api(stack, "GET", f"/api/credentials/{cred_id}").status_code == 404
    answers += [removed.text]

    # No admin answer holds a secret.
    assert not [s for s in SECRETS for text in answers if s in text]


def test_the_database_holds_only_ciphertext_and_no_log_a_secret(vault_stack, tmp_path):
    stack = vault_stack
    # Through the CLI: the key from a variable, or piped; shown by hint only.
    env = {"SWITCHBOARD_URL": stack.edge_url, "SWITCHBOARD_API_KEY": stack.master_key,
           "SWITCHBOARD_MASTER_KEY": None, "VAULT_KEY": GOOD}
    runner = CliRunner()
    added = runner.invoke(cli, ["credentials", "add", "vault", "--secret-env", "VAULT_KEY", "--json"], env=env)
    assert added.exit_code == 0, added.output
    piped = runner.invoke(cli, ["credentials", "add", "vault", "--rpm", "100", "--json"], env=env,
                          input=REVOKED + "\n")
    assert piped.exit_code == 0, piped.output
    listed = runner.invoke(cli, ["credentials", "list"], env=env)
    assert "sk-…0001" in listed.output and "sk-…0003" in listed.output
    removed = runner.invoke(cli, ["credentials", "remove", json.loads(piped.output)["credential_id"], "--yes"],
                            env=env)
    assert removed.exit_code == 0, removed.output
    outputs = [added.output, piped.output, listed.output, removed.output]
    assert not [s for s in SECRETS for text in outputs if s in text]
    ids = [json.loads(added.output)["credential_id"],
           api(stack, "POST", "/api/credentials", json={"provider": "vault", "secret": NEXT}).json()["credential_id"]]
    assert chat(stack).status_code == 200
    db = tmp_path / "stack" / "auth.db"
    with sqlite3.connect(db) as conn:
        rows = dict(conn.execute("SELECT credential_id, sealed FROM provider_credentials").fetchall())
    assert sorted(rows) == sorted(ids)
    assert all(blob.startswith(b"sb1") for blob in rows.values())
    stack.stop()  # every log complete, the database at rest
    files = [p for p in (tmp_path / "stack").rglob("*") if p.is_file()]
    assert db in files and any(p.suffix == ".log" or ".log" in p.name for p in files)
    found = [(p.name, s) for p in files for s in SECRETS if s.encode() in p.read_bytes()]
    assert not found, found
