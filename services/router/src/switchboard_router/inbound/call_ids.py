"""A tool call's provider-only state carried inside its id, for inbound APIs with no field for it.

Gemini signs each function call (`thoughtSignature`, in Chat Completions as
`extra_content.google.thought_signature`) and refuses a history that does not send it back.
Anthropic's tool_use blocks and the Responses API's function_call items have no such field, only
an id the client returns verbatim (on the call and on its result): so the signature rides in the
id, URL-safe base64 after a marker, and is taken out again when the id comes back.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

_MARK = "__sig_"


def outgoing(call: dict[str, Any]) -> str:
    """The id to show the client for a Chat Completions tool call."""
    call_id = call.get("id") or ""
    google = (call.get("extra_content") or {}).get("google") or {}
    signature = google.get("thought_signature")
    if not isinstance(signature, str) or not signature:
        return call_id
    packed = base64.urlsafe_b64encode(signature.encode()).decode().rstrip("=")
    return f"{call_id}{_MARK}{packed}"


def incoming(client_id: str) -> tuple[str, dict[str, Any] | None]:
    """The tool call's own id and, if the id carried one, its `extra_content`."""
    call_id, mark, packed = client_id.rpartition(_MARK)
    if not mark:
        return client_id, None
    try:
        signature = base64.b64decode(packed + "=" * (-len(packed) % 4), altchars=b"-_",
                                     validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        signature = ""
    if not signature:
        return client_id, None  # not ours: an id that merely contains the marker
    return call_id, {"google": {"thought_signature": signature}}


def call_id_only(client_id: str) -> str:
    """The id a tool result answers, without what its call carried."""
    return incoming(client_id)[0]
