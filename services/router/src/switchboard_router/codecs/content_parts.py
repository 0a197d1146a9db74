"""OpenAI's image and file content parts read once for every codec that sends their bytes
(Anthropic, Gemini, Bedrock): a `data:<type>;base64,<data>` URI checked, its media type and data
returned, the data as it came (each provider takes base64 text in its JSON)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from switchboard_common.errors import InvalidRequest


def data_uri(url: str, at: str) -> tuple[str, str]:
    """(media type, base64 data) of a `data:<type>;base64,<data>` URI, the data checked."""
    head, comma, data = url.partition(",")
    if not url.startswith("data:") or not comma or not head.endswith(";base64"):
        raise InvalidRequest("A data URI must be base64: data:<type>;base64,<data>.", param=at,
                             code="invalid_value")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("The data URI's data is not valid base64.", param=at,
                             code="invalid_value") from None
    return head[5:].removesuffix(";base64").lower(), data


def file_data(file: dict[str, Any], at: str, provider: str) -> tuple[str, str]:
    """(media type, base64 data) of a `file` part's file_data; an uploaded file's id (OpenAI's own
    file store) is refused with a 400 naming it."""
    uri = file.get("file_data")
    if not isinstance(uri, str) or not uri.startswith("data:"):
        raise InvalidRequest(f"Files go to {provider} as file_data (a base64 data URI); uploaded file "
                             "ids are OpenAI's own.", param=f"{at}.file_id" if file.get("file_id")
                             else f"{at}.file_data", code="unsupported_value")
    return data_uri(uri, f"{at}.file_data")
