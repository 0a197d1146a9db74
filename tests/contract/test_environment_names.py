"""No false alarms: every SWITCHBOARD_* name the launcher, the manifests or a neighbour sets is
known to every service (each warns at start about the names it does not know)."""

from __future__ import annotations

import os

import pytest
from switchboard_auth.settings import AuthSettings
from switchboard_billing.settings import BillingSettings
from switchboard_guardrails.settings import GuardrailsSettings
from switchboard_memory.settings import MemorySettings
from switchboard_router.settings import RouterSettings

from switchboard_common.settings import KNOWN_ELSEWHERE, SERVICES, SUITE_PREFIX, unknown_variables
from switchboard_stack import Stack, StackConfig
from tests.contract import kustomize

SETTINGS = {"router": RouterSettings, "auth": AuthSettings, "billing": BillingSettings,
            "guardrails": GuardrailsSettings, "memory": MemorySettings}


def _manifest_names() -> set[str]:
    """Every name the rendered overlays set for the services: ConfigMap keys and the services'
    containers' env entries (not billing's init container: switchboard_common.usage_stream reads its own)."""
    names: set[str] = set()
    for overlay in kustomize.OVERLAYS:
        for doc in kustomize.render(overlay):
            if doc["kind"] == "ConfigMap":
                names |= set(doc.get("data", {}))
            pod = doc.get("spec", {}).get("template", {}).get("spec")
            for c in pod["containers"] if pod else []:
                names |= {e["name"] for e in c.get("env", [])}
    return {n for n in names if n.startswith(SUITE_PREFIX)}


def _launcher_env(monkeypatch, tmp_path, name: str) -> dict[str, str]:
    monkeypatch.setattr(os, "environ", {})  # only what the launcher itself sets
    stack = Stack(StackConfig.ephemeral(tmp_path))
    stack.master_key = "sk-test"
    return {**stack._service_env(), **stack._own_env(name)}


def test_the_service_list_is_the_services():
    assert set(SERVICES) == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_make_run_sets_nothing_a_service_does_not_know(monkeypatch, tmp_path, name):
    assert unknown_variables(SETTINGS[name], _launcher_env(monkeypatch, tmp_path, name)) == []


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_manifests_set_nothing_a_service_does_not_know(name):
    names = _manifest_names()
    assert names, "no SWITCHBOARD_* names found in deploy/k8s"
    assert unknown_variables(SETTINGS[name], dict.fromkeys(names, "x")) == []


def test_suite_wide_names_in_another_services_prefix_are_listed():
    # SWITCHBOARD_AUTH_TARGET is the router's auth_target, but auth judges SWITCHBOARD_AUTH_*:
    # such names must be in the one list, or auth would call them unknown.
    prefixes = {f"{SUITE_PREFIX}{s.upper()}_": s for s in SERVICES}
    missing = []
    for owner, cls in SETTINGS.items():
        for field in cls.model_fields:
            name = f"{SUITE_PREFIX}{field.upper()}"
            judge = next((s for p, s in prefixes.items() if name.startswith(p)), None)
            if judge and judge != owner and name not in KNOWN_ELSEWHERE and unknown_variables(
                    SETTINGS[judge], {name: "x"}):
                missing.append(f"{name} ({owner}.{field})")
    assert missing == []
