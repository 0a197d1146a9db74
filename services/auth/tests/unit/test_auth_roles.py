"""Roles and isolation: admins manage everything, a tenant admin its own tenant's keys, a member
nothing; another tenant's keys and tenants answer 404 exactly as missing ones do."""

from __future__ import annotations

import pytest

from switchboard_common.errors import Conflict, InvalidRequest, NotFound, PermissionDenied

from switchboard_auth.domain import KeyFilter, KeyPatch, NewKey, RateLimits, Role, TenantPatch


@pytest.fixture
async def two_tenants(world):
    master = await world.master()
    for tenant in ("a", "b"):
        await world.tenants.create(master, f"Tenant {tenant}", tenant)
    keys = {}
    for tenant in ("a", "b"):
        for role in (Role.TENANT_ADMIN, Role.MEMBER):
            keys[(tenant, role)] = await world.key(role, tenant_id=tenant, name=f"{tenant}-{role.value}")
    keys["admin"] = await world.key(Role.ADMIN, tenant_id="a", name="platform")
    return keys


async def _as(world, keys, who):
    return await world.principal(keys[who][1])


async def test_a_tenant_admin_manages_its_own_tenant_only(world, two_tenants):
    keys = two_tenants
    a_admin = await _as(world, keys, ("a", Role.TENANT_ADMIN))
    own = await world.keys.create(a_admin, NewKey(name="made-by-a"))
    assert own.key.tenant_id == "a" and own.key.role is Role.MEMBER
    listed = {k.key_id for k in (await world.keys.list(a_admin, KeyFilter(), None, 100)).keys}
    assert listed == {keys[("a", Role.TENANT_ADMIN)][0].key_id,
                      keys[("a", Role.MEMBER)][0].key_id, own.key.key_id}  # no admin key
    # Tenant b: every way in is a 404 or an empty page, as for a tenant that does not exist.
    b_key = keys[("b", Role.MEMBER)][0].key_id
    for action in (lambda: world.keys.get(a_admin, b_key),
                   lambda: world.keys.update(a_admin, b_key, KeyPatch(name="x")),
                   lambda: world.keys.revoke(a_admin, b_key),
                   lambda: world.keys.rotate(a_admin, b_key, None),
                   lambda: world.keys.get(a_admin, keys["admin"][0].key_id),
                   lambda: world.keys.get(a_admin, "master")):
        with pytest.raises(NotFound) as err:
            await action()
        assert err.value.message.startswith("No key '")
    assert (await world.keys.list(a_admin, KeyFilter(tenant_id="b"), None, 100)).keys == []
    with pytest.raises(InvalidRequest) as err:
        await world.keys.create(a_admin, NewKey(tenant_id="b"))
    assert (err.value.message, err.value.param) == ("No tenant 'b'.", "tenant_id")  # as if none
    with pytest.raises(NotFound):
        await world.tenants.get(a_admin, "b")
    assert [t.tenant_id for t in (await world.tenants.list(a_admin, None, 100)).tenants] == ["a"]
    assert (await world.keys.get(await world.master(), b_key)).name == "b-member"  # untouched


async def test_a_tenant_admin_cannot_make_admins_or_manage_tenants(world, two_tenants):
    a_admin = await _as(world, two_tenants, ("a", Role.TENANT_ADMIN))
    with pytest.raises(PermissionDenied) as err:
        await world.keys.create(a_admin, NewKey(role="admin"))
    assert (err.value.param, err.value.code) == ("role", "role_not_allowed")
    member = two_tenants[("a", Role.MEMBER)][0].key_id
    with pytest.raises(PermissionDenied):
        await world.keys.update(a_admin, member, KeyPatch(role="admin"))
    peer = await world.keys.update(a_admin, member, KeyPatch(role="tenant_admin"))
    assert peer.role is Role.TENANT_ADMIN
    for action in (lambda: world.tenants.create(a_admin, "c", "c"),
                   lambda: world.tenants.update(a_admin, "a", TenantPatch(name="x")),
                   lambda: world.tenants.delete(a_admin, "a")):
        with pytest.raises(PermissionDenied):
            await action()
    assert (await world.tenants.get(a_admin, "a")).name == "Tenant a"


async def test_a_member_manages_nothing(world, two_tenants):
    member = await _as(world, two_tenants, ("a", Role.MEMBER))
    for action in (lambda: world.keys.create(member, NewKey()),
                   lambda: world.keys.list(member, KeyFilter(), None, 10),
                   lambda: world.keys.get(member, member.key.key_id),
                   lambda: world.tenants.list(member, None, 10)):
        with pytest.raises(PermissionDenied) as err:
            await action()
        assert err.value.code == "admin_key_required"


async def test_admin_keys_manage_every_tenant(world, two_tenants):
    admin = await _as(world, two_tenants, "admin")
    b_key = two_tenants[("b", Role.MEMBER)][0].key_id
    assert (await world.keys.update(admin, b_key, KeyPatch(name="renamed"))).name == "renamed"
    made = await world.keys.create(admin, NewKey(tenant_id="b", role="admin"))
    assert made.key.role is Role.ADMIN and made.key.is_admin
    assert (await world.tenants.create(admin, "C", "c")).tenant_id == "c"


async def test_x_user_id_names_the_owner_and_scopes_what_is_seen(world, two_tenants):
    master = await world.master()
    as_ana = await world.principal(world.master_secret, "user-ana")
    made = await world.keys.create(as_ana, NewKey(name="ana's"))
    assert made.key.user_id == "user-ana"
    listed = (await world.keys.list(as_ana, KeyFilter(), None, 100)).keys
    assert [k.key_id for k in listed] == [made.key.key_id]
    with pytest.raises(NotFound):
        await world.keys.get(as_ana, two_tenants[("a", Role.MEMBER)][0].key_id)
    with pytest.raises(InvalidRequest) as err:
        await world.keys.create(as_ana, NewKey(user_id="user-bo"))
    assert err.value.param == "user_id"
    assert (await world.keys.get(master, made.key.key_id)).user_id == "user-ana"


async def test_tenant_defaults_apply_to_keys_without_their_own(world):
    master = await world.master()
    await world.tenants.create(master, "Acme", "acme", RateLimits(requests_per_minute=100,
                                                                  tokens_per_day=5000))
    plain, plain_secret = await world.key(tenant_id="acme")
    own, _ = await world.key(tenant_id="acme", rate_limits=RateLimits(requests_per_minute=7))
    assert plain.effective_limits == RateLimits(requests_per_minute=100, tokens_per_day=5000)
    assert own.effective_limits == RateLimits(requests_per_minute=7, tokens_per_day=5000)
    world.notes.seen.clear()
    await world.tenants.update(master, "acme", TenantPatch(
        default_rate_limits={"requests_per_minute": 50, "tokens_per_day": None}))
    verdict = await world.admission.authorize(plain_secret, "")
    assert verdict.key.effective_limits == RateLimits(requests_per_minute=50)
    assert world.notes.seen == [("tenant:acme", world.notes.seen[0][1])]
    assert world.notes.seen[0][1].value == "tenant_updated"
    await world.tenants.update(master, "acme", TenantPatch(name="Acme Inc"))
    assert len(world.notes.seen) == 1  # a new name changes no verdict


async def test_a_tenant_is_deleted_only_when_its_keys_are_revoked(world):
    master = await world.master()
    await world.tenants.create(master, "Gone", "gone")
    key, _ = await world.key(tenant_id="gone")
    with pytest.raises(Conflict) as err:
        await world.tenants.delete(master, "gone")
    assert err.value.code == "tenant_not_empty"
    await world.keys.revoke(master, key.key_id)
    deleted = await world.tenants.delete(master, "gone")
    assert deleted.tenant_id == "gone"
    with pytest.raises(NotFound):
        await world.tenants.get(master, "gone")
    with pytest.raises(NotFound):
        await world.keys.get(master, key.key_id)  # its revoked keys went with it
    with pytest.raises(InvalidRequest) as err:
        await world.tenants.delete(master, "default")
    assert err.value.code == "default_tenant"
    assert world.notes.seen[-1][0] == "tenant:gone"
