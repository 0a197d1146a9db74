"""Page sizes and page tokens of every List RPC (ListKeys, ListUsage)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard_common import pagination
from switchboard_common.errors import InvalidRequest


def test_page_size_defaults_and_is_capped():
    assert pagination.page_size(0) == pagination.DEFAULT_PAGE_SIZE
    assert pagination.page_size(7) == 7
    assert pagination.page_size(10**6) == pagination.MAX_PAGE_SIZE
    with pytest.raises(InvalidRequest) as err:
        pagination.page_size(-1)
    assert err.value.param == "page_size"


def test_tokens_round_trip_and_reject_forgeries():
    cursor = (datetime(2025, 5, 1, 12, 30, 1, 123456, tzinfo=UTC), "key_abc")
    assert pagination.decode(pagination.encode(cursor)) == cursor
    assert pagination.encode(None) == "" and pagination.decode("") is None
    for bad in ("not-base64!", "bm90IGpzb24=", "WyIyMDI1LTA1LTAxIiwgMV0="):
        with pytest.raises(InvalidRequest) as err:
            pagination.decode(bad)
        assert err.value.param == "page_token"
