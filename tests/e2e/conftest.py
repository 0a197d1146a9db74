"""The real stack for end-to-end tests: Envoy, the five services as processes, NATS, SQLite or
PostgreSQL, and the fake OpenAI upstream as its own process. Started once per test session."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from switchboard_common.testing.infra import (
    POSTGRES_VARIABLE,
    postgres_admin_url,
    reachable,
    scratch_database,
    unreachable_reason,
)

from switchboard_stack import Stack, StackConfig

from tests.fakes import bedrock_fake
from tests.fakes.process import FakeDidNotStart, fake_process

REPO = Path(__file__).resolve().parents[2]
PROVIDER_KEY = "sk-fake-upstream"
# The other faked providers' keys (fake_providers), which must stay out of the logs as well.
OTHER_PROVIDER_KEYS = ("sk-ant-fake-upstream", "azure-fake-key", "AIza-fake-upstream",
                       bedrock_fake.SECRET_KEY)
# Anything shaped like a Switchboard key: the current format and the one before it (key_format.py).
KEY_SHAPES = re.compile(rb"sk-sb-[0-9A-Za-z]{49}|sk-sb-[A-Za-z0-9_-]{43}")


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log(tmp_path_factory):
    """After the whole e2e suite (every stack stopped, so their logs are complete): no log file
    any test's processes wrote holds an issued key secret (anything of a key's shape), a master
    key or the provider key."""
    yield
    base = tmp_path_factory.getbasetemp()
    logs = sorted(p for p in base.rglob("*.log*") if p.is_file())
    masters = {p.read_text().strip() for p in base.rglob("master-key") if p.is_file()}
    found = []
    for log in logs:
        text = log.read_bytes()
        found += [(log.name, "a key secret") for _ in KEY_SHAPES.findall(text)[:1]]
        found += [(log.name, "a master key") for m in masters if m and m.encode() in text][:1]
        found += [(log.name, "a provider key") for k in (PROVIDER_KEY, *OTHER_PROVIDER_KEYS)
                  if k.encode() in text][:1]
    assert not found, f"secrets in logs under {base}: {found}"


def _fake_process(tmp_path_factory, module: str, *args: str):
    """A fake provider API in its own process; yields its root URL."""
    try:
        with fake_process(module, tmp_path_factory.mktemp("fake"), *args) as url:
            yield url
    except FakeDidNotStart as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def fake_openai(tmp_path_factory):
    """The fake OpenAI API in its own process; yields its base URL (ending in /v1)."""
    for url in _fake_process(tmp_path_factory, "tests.fakes.openai_upstream"):
        yield url + "/v1"


@pytest.fixture(scope="session")
def fake_providers(tmp_path_factory):
    """The fake Anthropic, Azure OpenAI, Gemini/Vertex and Bedrock APIs, and the variables that
    enable their presets (Vertex: a throwaway service account whose token_uri is the fake's;
    Bedrock: AWS access keys, which the router's SigV4 signer reads through botocore's chain)."""
    anthropic = _fake_process(tmp_path_factory, "tests.fakes.anthropic_fake")
    azure = _fake_process(tmp_path_factory, "tests.fakes.azure_fake")
    bedrock = _fake_process(tmp_path_factory, "tests.fakes.bedrock_fake")
    account = tmp_path_factory.mktemp("vertex")
    public_key = account / "public.pem"
    private_pem = _throwaway_rsa_key(public_key)
    gemini = _fake_process(tmp_path_factory, "tests.fakes.gemini_fake", "--vertex-key", str(public_key))
    anthropic_key, azure_key, gemini_key, _ = OTHER_PROVIDER_KEYS
    gemini_url = next(gemini)
    key_file = account / "service-account.json"
    key_file.write_text(json.dumps({
        "type": "service_account", "project_id": "sb-test-project", "private_key_id": "k1",
        "private_key": private_pem, "client_email": "gateway@sb-test-project.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": gemini_url + "/token"}))
    yield {"ANTHROPIC_API_KEY": anthropic_key, "ANTHROPIC_BASE_URL": next(anthropic),
           "AZURE_OPENAI_API_KEY": azure_key, "AZURE_OPENAI_ENDPOINT": next(azure),
           "AZURE_OPENAI_DEPLOYMENTS": "gpt-4o-mini",
           "GEMINI_API_KEY": gemini_key, "GEMINI_BASE_URL": gemini_url,
           "GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "GOOGLE_CLOUD_LOCATION": "us-central1",
           "VERTEX_BASE_URL": gemini_url,
           "AWS_ACCESS_KEY_ID": bedrock_fake.ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": bedrock_fake.SECRET_KEY,
           "AWS_REGION": bedrock_fake.REGION, "BEDROCK_BASE_URL": next(bedrock)}
    for fake in (anthropic, azure, gemini, bedrock):
        next(fake, None)


def _throwaway_rsa_key(public_path: Path) -> str:
    """A fresh RSA key pair: the public half written for the fake, the private half (PEM) returned."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


# Many tests inject provider failures (error-500, error-429) into the one fake every stack shares:
# on the shared stacks they must not open a circuit or start a cooldown under the next test, and
# each test there sees one attempt per deployment.
# Breakers and cooldowns are tested on stacks of their own (test_routing_resilience.py).
SHARED_ROUTING = {"ROUTING_FAILURE_THRESHOLD": "1000000",
                  "ROUTING_MAX_THROTTLE_COOLDOWN_SECONDS": "0",
                  "ROUTING_RETRIES": "0"}


def _start_stack(data_dir: Path, fake_base_url: str, extra_env: dict[str, str] | None = None) -> Stack:
    env = {"OPENAI_API_KEY": PROVIDER_KEY, "OPENAI_BASE_URL": fake_base_url,
           "SWITCHBOARD_LOG_LEVEL": "INFO", **SHARED_ROUTING, **(extra_env or {})}
    # Each stack gets its own NATS: billing's durable consumer must not share a stream with
    # another stack's billing, or each would take the other's usage events.
    stack = Stack(StackConfig.ephemeral(data_dir, env=env, own_nats=True))
    stack.start()
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory, fake_openai, fake_providers):
    """The suite on SQLite files in a fresh data directory, every faked provider enabled."""
    s = _start_stack(tmp_path_factory.mktemp("stack-sqlite"), fake_openai, fake_providers)
    yield s
    s.stop()


@pytest.fixture(scope="session")
def pg_stack(tmp_path_factory, fake_openai):
    """The suite with auth and billing on PostgreSQL; skipped with a reason when none is reachable."""
    admin_url = postgres_admin_url()
    if not reachable(admin_url):
        pytest.skip(unreachable_reason("PostgreSQL", admin_url, POSTGRES_VARIABLE))
    with scratch_database(admin_url, "sb_e2e") as url:
        s = _start_stack(tmp_path_factory.mktemp("stack-pg"), fake_openai, {
            "SWITCHBOARD_AUTH_DATABASE_URL": url, "SWITCHBOARD_BILLING_DATABASE_URL": url})
        yield s
        s.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def any_stack(request):
    """Runs a test once on each database the machine offers."""
    return request.getfixturevalue("stack" if request.param == "sqlite" else "pg_stack")
