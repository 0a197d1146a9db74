"""GET /v1/responses/{response_id}/input_items: a stored response's own input items as OpenAI
lists them, pure functions of JSON, no I/O. https://platform.openai.com/docs/api-reference/responses/input-items

Items are stored as the request sent them (responses.input_items); the list gives each its
output shape, as the `openai` SDK's types require: an id (the item's own, else one derived from
the response id and the item's place, so that the same item has the same id on every page),
message content as a list of parts, and a status. Pages: `after` an item id, `limit` 1-100
(default 20), `order` "desc" (newest first, OpenAI's default) or "asc".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from switchboard_common.errors import InvalidRequest

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_PREFIX = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def page(response_id: str, items: list[Any], *, after: str | None, limit: int | None,
         order: str | None, include: list[str]) -> dict[str, Any]:
    """One page of the list, as OpenAI's `{"object": "list", "data", "first_id", "last_id",
    "has_more"}`; a 400 naming the parameter for a bad one."""
    if include:
        raise InvalidRequest("'include' is not supported on input_items through this gateway: no "
                             "extra output data is kept.", param="include", code="unsupported_parameter")
    if order not in (None, "asc", "desc"):
        raise InvalidRequest(f"Invalid 'order': {order!r}; expected 'asc' or 'desc'.", param="order",
                             code="invalid_value")
    if limit is None:
        limit = DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidRequest(f"Invalid 'limit': {limit}; it must be between 1 and {MAX_LIMIT}.",
                             param="limit", code="invalid_value")
    places = list(range(len(items)))
    if order != "asc":
        places.reverse()
    start = 0
    if after is not None:  # only ids are worked out for the items before the page
        ids = [item_id(response_id, i, items[i]) for i in places]
        if after not in ids:
            raise InvalidRequest(f"No input item with id '{after}' in response '{response_id}'.",
                                 param="after", code="invalid_value")
        start = ids.index(after) + 1
    data = [listed_item(response_id, i, items[i]) for i in places[start:start + limit]]
    return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": start + limit < len(places)}


def item_id(response_id: str, index: int, item: Any) -> str:
    """The item's own id, else one made of the response id and its place (the same every time)."""
    own = item.get("id") if isinstance(item, dict) else None
    if isinstance(own, str) and own:
        return own
    kind = item.get("type", "message") if isinstance(item, dict) else "message"
    return f"{_PREFIX.get(kind, 'item')}_{response_id.removeprefix('resp_')}_{index}"


def listed_item(response_id: str, index: int, item: Any) -> dict[str, Any]:
    """One stored input item in the list's shape (stored items were validated when stored)."""
    out = dict(item) if isinstance(item, dict) else {"type": "message", "role": "user", "content": item}
    kind = out.setdefault("type", "message")
    out["id"] = item_id(response_id, index, item)
    out.setdefault("status", "completed")
    if kind == "message" and isinstance(out.get("content"), str):
        part = "output_text" if out.get("role") == "assistant" else "input_text"
        out["content"] = [{"type": part, "text": out["content"]}]
    if kind == "message" and out.get("role") == "assistant":
        out["content"] = [{**p, "annotations": p.get("annotations", [])} if isinstance(p, dict)
                          and p.get("type") == "output_text" else p for p in out["content"]]
    return out


def bracketed_query(metadata: Any, name: str) -> list[str]:
    """`name[]=...` values of the request's query (the `openai` SDK sends lists so), which the
    edge's transcoder does not map to the field `name`: read from the original path it passes."""
    for key, value in metadata or ():
        if key == "x-envoy-original-path" and isinstance(value, str):
            query = value.partition("?")[2]
            return [v for k, v in parse_qsl(query, keep_blank_values=True) if k == f"{name}[]"]
    return []
