"""Auth's store of provider credentials the routers sealed: it keeps the bytes as given, refuses
what would not fit, and announces every change."""

from __future__ import annotations

import pytest
from switchboard_common.errors import Conflict, InvalidRequest, NotFound

from switchboard_auth.domain import utc_now
from switchboard_auth.sealed_credentials import SealedCredential, SealedCredentials

BLOB = b"sb1\x00\x01\x02\x03" + bytes(range(40))


def credential(cid="pcred_1", provider="openai", sealed=BLOB, **fields) -> SealedCredential:
    values = {"hint": "sk-\u20261234", "weight": 1, "rpm": None, **fields}
    return SealedCredential(credential_id=cid, provider=provider, sealed=sealed, created_at=utc_now(),
                            updated_at=utc_now(), **values)


@pytest.fixture
def store(world):
    announced: list[tuple[str, str]] = []

    async def announce(credential_id: str, provider: str) -> None:
        announced.append((credential_id, provider))

    s = SealedCredentials(world.repo.engine, announce)
    s.announced = announced
    return s


async def test_put_list_replace_delete_and_every_change_announced(store):
    await store.put(credential(), create=True)
    await store.put(credential("pcred_2", "anthropic", rpm=60), create=True)
    with pytest.raises(Conflict):
        await store.put(credential(), create=True)
    assert [c.credential_id for c in await store.list()] == ["pcred_1", "pcred_2"]
    assert [c.sealed for c in await store.list("openai")] == [BLOB]
    replaced = await store.put(credential(sealed=b"sb1new-ciphertext-bytes-000000000000", hint="sk-\u20269999"),
                               create=False)
    assert (replaced.sealed, replaced.hint) == (b"sb1new-ciphertext-bytes-000000000000", "sk-\u20269999")
    with pytest.raises(NotFound):
        await store.put(credential("pcred_absent"), create=False)
    removed = await store.delete("pcred_2")
    assert removed.rpm == 60 and [c.credential_id for c in await store.list()] == ["pcred_1"]
    with pytest.raises(NotFound):
        await store.delete("pcred_2")
    assert store.announced == [("pcred_1", "openai"), ("pcred_2", "anthropic"), ("pcred_1", "openai"),
                               ("pcred_2", "anthropic")]


@pytest.mark.parametrize(("fields", "param"), [
    ({"cid": ""}, "credential_id"), ({"provider": "x" * 129}, "provider"), ({"sealed": b""}, "sealed"),
    ({"sealed": b"x" * 16_385}, "sealed"), ({"weight": 0}, "weight"), ({"rpm": 0}, "weight"),
])
async def test_what_would_not_fit_is_refused(store, fields, param):
    with pytest.raises(InvalidRequest) as exc:
        await store.put(credential(**fields), create=True)
    assert exc.value.param == param and store.announced == []
