"""A key's budget fields go to billing, which holds and enforces them: set with the caller's own
key when the key is made (or the key is revoked), merged into billing's budget on a PATCH; the
dollar spellings of AILB and AI Gateway become exact micro-dollars."""

from __future__ import annotations

import orjson
import pytest
from switchboard.billing.v1 import billing_pb2

from switchboard_auth.budget_fields import dollars_to_micros
from switchboard_auth.domain import KeyFilter, KeyPatch, NewKey
from switchboard_auth.key_budgets import BudgetFields, _apply, _keep
from switchboard_auth.keys import KeyAdmin
from switchboard_common.errors import InvalidRequest, ServiceUnavailable


class FakeKeyBudgets:
    def __init__(self) -> None:
        self.created: list[tuple[str, str, BudgetFields]] = []
        self.updated: list[tuple[str, str, BudgetFields]] = []
        self.fail: Exception | None = None

    async def create(self, secret, key_id, fields):
        if self.fail:
            raise self.fail
        self.created.append((secret, key_id, fields))

    async def update(self, secret, key_id, fields):
        if self.fail:
            raise self.fail
        self.updated.append((secret, key_id, fields))


@pytest.fixture
def budgets(world) -> FakeKeyBudgets:
    fake = FakeKeyBudgets()
    world.keys = KeyAdmin(world.repo, world.hasher, world.notes, world.clock, budgets=fake)
    return fake


async def test_a_new_keys_budget_is_handed_to_billing_with_the_callers_key(world, budgets):
    key, _ = await world.key(max_budget_micros_usd=5_000_000, monthly_budget_micros_usd=1_000_000)
    assert budgets.created == [(world.master_secret, key.key_id,
                                BudgetFields(total=5_000_000, monthly=1_000_000))]
    assert key.max_budget_micros_usd is None  # no copy in auth: billing's budget is the answer
    await world.key(name="no budget")
    assert len(budgets.created) == 1  # a key without budget fields makes no call


async def test_a_key_billing_would_not_hold_a_budget_for_is_revoked(world, budgets):
    budgets.fail = ServiceUnavailable("billing is unavailable (unavailable)")
    master = await world.master()
    with pytest.raises(ServiceUnavailable):
        await world.keys.create(master, NewKey(daily_budget_micros_usd=100))
    made = [k for k in (await world.keys.list(master, KeyFilter(), None, 10)).keys
            if k.key_id != "master"]
    assert len(made) == 1 and made[0].revoked_at is not None


async def test_a_patch_changes_billing_first_and_only_the_periods_given(world, budgets):
    key, _ = await world.key(name="a")
    master = await world.master()
    await world.keys.update(master, key.key_id, KeyPatch(daily_budget_micros_usd=0, name="b"))
    assert budgets.updated == [(world.master_secret, key.key_id, BudgetFields(daily=0))]
    budgets.fail = ServiceUnavailable("billing is unavailable (unavailable)")
    with pytest.raises(ServiceUnavailable):
        await world.keys.update(master, key.key_id, KeyPatch(monthly_budget_micros_usd=7,
                                                             name="c"))
    assert (await world.keys.get(master, key.key_id)).name == "b"  # nothing of it applied
    with pytest.raises(InvalidRequest) as bad:
        await world.keys.update(master, key.key_id, KeyPatch(max_budget_micros_usd=-1))
    assert bad.value.param == "max_budget_micros_usd"


def test_dollar_spellings_become_exact_micro_dollars():
    body = orjson.loads(dollars_to_micros(
        b'{"name": "x", "monthly_quota_dollars": 0.1, "cost_limit_daily": "2.5"}'))
    assert body == {"name": "x", "monthly_budget_micros_usd": "100000",
                    "daily_budget_micros_usd": "2500000"}
    assert dollars_to_micros(b'{"name": "x"}') == b'{"name": "x"}'  # untouched
    for bad, code in ((b'{"cost_limit_monthly": 1.0000001}', "invalid_value"),
                      (b'{"cost_limit_monthly": -1}', "invalid_value"),
                      (b'{"cost_limit_monthly": true}', "invalid_type"),
                      (b'{"cost_limit_monthly": 1, "monthly_budget_micros_usd": "1"}',
                       "invalid_value")):
        with pytest.raises(InvalidRequest) as err:
            dollars_to_micros(bad)
        assert err.value.param == "cost_limit_monthly" and err.value.code == code


def test_a_patch_keeps_billings_other_limits():
    request = billing_pb2.SetBudgetRequest(key_id="k")
    _keep(request, billing_pb2.BudgetLimit(period=billing_pb2.BUDGET_PERIOD_DAILY,
                                           limit_micros_usd=10, limit_tokens=99))
    _keep(request, billing_pb2.BudgetLimit(period=billing_pb2.BUDGET_PERIOD_TOTAL,
                                           limit_micros_usd=500))
    _apply(request, BudgetFields(daily=0, monthly=20), removing=True)
    assert not request.HasField("daily_limit_micros_usd") and request.daily_limit_tokens == 99
    assert request.monthly_limit_micros_usd == 20
    assert (request.period, request.limit_micros_usd) == (billing_pb2.BUDGET_PERIOD_TOTAL, 500)
    _apply(request, BudgetFields(total=0), removing=True)
    assert request.period == billing_pb2.BUDGET_PERIOD_UNSPECIFIED  # the total limit is gone
