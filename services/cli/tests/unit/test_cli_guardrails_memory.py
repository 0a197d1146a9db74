"""`switchboard guardrails` and `switchboard memory` against the fake edge: the bodies they send,
the answers they show, and bad arguments refused before any request."""

from __future__ import annotations

import json

from cli_fakes import KEY, SECRET, TENANT, paged

POLICY = {"policy_id": "pol_1", "name": "no-pii", "tenant_id": "default",
          "input_rules": [{"check": "pii", "action": "ACTION_REDACT", "options": {}}],
          "output_rules": [{"check": "keywords", "action": "ACTION_BLOCK",
                            "options": {"keywords": ["x"]}}],
          "fail_mode": "FAIL_MODE_UNSPECIFIED", "created_at": "2026-12-01T12:00:00Z",
          "updated_at": "2026-12-01T12:00:00Z"}
SESSION = {"session_id": "s1", "tenant_id": "acme", "key_id": "key_1", "turn_count": 1,
           "updated_at": "2026-12-01T12:00:00Z",
           "messages": [{"role": "user", "content": "My name is Alice"},
                        {"role": "assistant", "content": "Hello Alice"}]}
COLLECTION = {"name": "docs", "tenant_id": "acme", "documents": "2", "chunks": "3",
              "embedding_model": "paraphrase-MiniLM-L3-v2", "chunk_tokens": 256,
              "chunk_overlap_tokens": 32}


def test_guardrails_policies_from_create_to_delete(run, gateway):
    gateway.answers[("POST", "/api/guardrails/policies")] = (200, POLICY)
    made = run("guardrails", "create", "--name", "no-pii", "--input", "pii:redact",
               "--output", 'keywords:block:{"keywords": ["x"]}', "--fail-mode", "closed")
    assert made.exit_code == 0, made.output
    assert gateway.body() == {"name": "no-pii", "input_rules": [{"check": "pii", "action": "redact"}],
                              "output_rules": [{"check": "keywords", "action": "block",
                                                "options": {"keywords": ["x"]}}],
                              "fail_mode": "closed"}
    assert "pii:redact" in made.stdout and "pol_1" in made.stdout

    bad = run("guardrails", "create", "--name", "x", "--input", "keywords:block:{nope")
    assert bad.exit_code == 2 and "not JSON" in bad.output

    gateway.answers[("GET", "/api/guardrails/policies")] = paged([POLICY, {**POLICY, "policy_id": "pol_2"}],
                                                                 "policies")
    listed = json.loads(run("guardrails", "list", "--page-size", "1", "--json").stdout)
    assert [p["policy_id"] for p in listed] == ["pol_1", "pol_2"]

    gateway.answers[("PATCH", "/api/guardrails/policies/pol_1")] = (200, POLICY)
    assert run("guardrails", "update", "pol_1", "--no-output", "--fail-mode", "open").exit_code == 0
    assert gateway.body() == {"output_rules": [], "fail_mode": "open"}
    assert run("guardrails", "update", "pol_1").exit_code == 2

    gateway.answers[("DELETE", "/api/guardrails/policies/pol_1")] = (200, {})
    assert run("guardrails", "delete", "pol_1", "--yes").stdout == "Deleted guardrail policy pol_1.\n"


def test_memory_sessions_list_show_delete(run, gateway):
    gateway.answers[("GET", "/api/memory/sessions")] = paged([SESSION], "sessions")
    listed = run("memory", "sessions", "list", "--key-id", "key_1")
    assert listed.exit_code == 0, listed.output
    assert "s1" in listed.stdout and gateway.requests[-1].url.params["key_id"] == "key_1"
    gateway.answers[("GET", "/api/memory/sessions/s1")] = (200, SESSION)
    shown = run("memory", "sessions", "show", "s1")
    assert "My name is Alice" in shown.stdout and "Hello Alice" in shown.stdout
    gateway.answers[("DELETE", "/api/memory/sessions/s1")] = (200, {"turns_deleted": 1})
    assert run("memory", "sessions", "delete", "s1", "--yes").stdout == "Deleted session s1 (1 turns).\n"


def test_memory_collections_create_add_query(run, gateway, tmp_path):
    gateway.answers[("POST", "/api/memory/collections")] = (200, COLLECTION)
    assert run("memory", "collections", "create", "docs", "--chunk-tokens", "256").exit_code == 0
    assert gateway.body() == {"name": "docs", "chunk_tokens": 256}

    doc = tmp_path / "leave.md"
    doc.write_text("# Leave\n\nParental leave is 16 weeks.", encoding="utf-8")
    gateway.answers[("POST", "/api/memory/collections/docs/documents")] = (200, {
        "chunks_added": "1", "ingestion": {"ingestion_id": "ing_1", "state": "INGESTION_STATE_SUCCEEDED",
                                           "documents_total": 1, "documents_done": 1}})
    added = run("memory", "collections", "add", "docs", str(doc), "--metadata", "team=hr")
    assert added.exit_code == 0, added.output
    assert gateway.body() == {"documents": [{"id": "leave.md", "text": doc.read_text(),
                                             "metadata": {"team": "hr"}}]}
    assert "succeeded, 1/1 documents, 1 chunks added" in added.stdout
    assert run("memory", "collections", "add", "docs", str(doc), "--metadata", "x").exit_code == 2

    gateway.answers[("POST", "/api/memory/collections/docs/query")] = (200, {"chunks": [
        {"chunk_id": "leave.md#0", "document_id": "leave.md", "score": 0.91,
         "text": "Parental leave is 16 weeks."}]})
    hits = run("memory", "collections", "query", "docs", "how long is leave", "--top-k", "3")
    assert gateway.body() == {"query": "how long is leave", "top_k": 3}
    assert "leave.md#0" in hits.stdout and "0.910" in hits.stdout


def test_keys_and_tenants_take_guardrail_policies(run, gateway):
    gateway.answers[("POST", "/api/keys")] = (200, {"key": {**KEY, "guardrail_policy_ids": ["pol_1"]},
                                                    "secret": SECRET})
    made = run("keys", "create", "--name", "app", "--policy", "pol_1", "--policy", "pol_2")
    assert made.exit_code == 0, made.output
    assert gateway.body()["guardrail_policy_ids"] == ["pol_1", "pol_2"]
    assert "pol_1" in made.stdout
    gateway.answers[("PATCH", f"/api/keys/{KEY['key_id']}")] = (200, KEY)
    assert run("keys", "update", KEY["key_id"], "--no-policies").exit_code == 0
    assert gateway.body() == {"clear_guardrail_policy_ids": True}
    assert run("keys", "update", KEY["key_id"], "--no-policies", "--policy", "p").exit_code == 2
    gateway.answers[("POST", "/api/tenants")] = (200, TENANT)
    assert run("tenants", "create", "--name", "Acme", "--policy", "pol_t").exit_code == 0
    assert gateway.body() == {"name": "Acme", "guardrail_policy_ids": ["pol_t"]}
    gateway.answers[("PATCH", "/api/tenants/acme")] = (200, TENANT)
    assert run("tenants", "update", "acme", "--policy", "pol_u").exit_code == 0
    assert gateway.body() == {"guardrail_policy_ids": ["pol_u"]}
