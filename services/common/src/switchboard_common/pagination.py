"""Page sizes and opaque page tokens (AIP-158): a keyset cursor (time, id) as base64 JSON."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from switchboard_common.errors import InvalidRequest

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Cursor = tuple[datetime, str]  # the last row's sort time and id; the next page starts after it


def page_size(requested: int) -> int:
    """0 means the default; above the maximum is coerced to it (AIP-158)."""
    if requested < 0:
        raise InvalidRequest("page_size must not be negative.", param="page_size")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode(cursor: Cursor | None) -> str:
    if cursor is None:
        return ""
    raw = json.dumps([cursor[0].isoformat(), cursor[1]]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode(token: str) -> Cursor | None:
    if not token:
        return None
    try:
        when, last_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        moment = datetime.fromisoformat(when)
        if moment.tzinfo is None or not isinstance(last_id, str):
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidRequest("page_token is not one this service issued.",
                             param="page_token") from None
    return moment, last_id
