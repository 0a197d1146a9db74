"""What a user turn holds on Bedrock's Converse API: text blocks (blank ones left out, as Bedrock
refuses whitespace-only text), images as their bytes (Converse takes no URLs) and `file` parts as
document blocks, with the rules Bedrock keeps for them checked before sending.
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_DocumentBlock.html
"""

from __future__ import annotations

import re
from typing import Any

from switchboard_common.errors import InvalidRequest

from switchboard_router.codecs.base import message_texts
from switchboard_router.codecs.content_parts import data_uri, file_data

IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}
# Converse's DocumentFormat values by media type.
DOCUMENT_FORMATS = {
    "application/pdf": "pdf", "text/csv": "csv", "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html", "text/plain": "txt", "text/markdown": "md"}
_NAME_UNFIT = re.compile(r"[^A-Za-z0-9\s()\[\]-]")

def texts(content: Any, at: str) -> list[dict[str, Any]]:
    """Text blocks, blank ones left out (Bedrock refuses whitespace-only text)."""
    return [{"text": t} for t in message_texts(content, at, "Bedrock", keep_blank=False)]


def user_blocks(content: Any, at: str) -> list[dict[str, Any]]:
    if isinstance(content, str) or content is None:
        return texts(content, at)
    out: list[dict[str, Any]] = []
    documents = 0
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind == "text":
            out += texts([part], at)
        elif kind == "image_url":
            out.append({"image": _image((part.get("image_url") or {}).get("url") or "",
                                        f"{at}[{j}].image_url.url")})
        elif kind == "file":
            documents += 1
            out.append(_document(part.get("file") or {}, f"{at}[{j}].file", documents))
        else:
            raise InvalidRequest(f"Content parts of type {kind!r} cannot be sent to Bedrock.",
                                 param=f"{at}[{j}].type", code="unsupported_value")
    if documents and not any("text" in b for b in out):
        raise InvalidRequest("Bedrock needs a text part beside a message's documents (say what to do "
                             "with them).", param=at, code="invalid_value")
    names = [b["document"]["name"] for b in out if "document" in b]
    if len(set(names)) != len(names):
        raise InvalidRequest("Bedrock needs each document of a message to have its own name: give the "
                             "files different filenames.", param=at, code="invalid_value")
    return out


def _image(url: str, at: str) -> dict[str, Any]:
    if url.startswith(("http://", "https://")):
        raise InvalidRequest("Bedrock takes images as base64 data URIs (data:image/png;base64,...), "
                             "not URLs: fetch the image and send its bytes.", param=at,
                             code="unsupported_value")
    media_type, data = data_uri(url, at)
    image_format = IMAGE_FORMATS.get(media_type)
    if image_format is None:
        raise InvalidRequest(f"Bedrock takes PNG, JPEG, GIF and WebP images, not {media_type!r}.",
                             param=at, code="unsupported_value")
    # A blob in Converse's JSON is its base64 text, so the client's data goes as it came.
    return {"format": image_format, "source": {"bytes": data}}


def _document(file: dict[str, Any], at: str, number: int) -> dict[str, Any]:
    """A `file` part as a Converse document block: its format from the media type, its name
    from the filename made to fit Bedrock's rule (letters, digits, single spaces, hyphens,
    parentheses, square brackets), or "document N"."""
    media_type, data = file_data(file, at, "Bedrock")
    document_format = DOCUMENT_FORMATS.get(media_type)
    if document_format is None:
        raise InvalidRequest(f"Bedrock takes documents as {', '.join(sorted(DOCUMENT_FORMATS))}, "
                             f"not {media_type!r}.", param=f"{at}.file_data", code="unsupported_value")
    filename = file.get("filename")
    stem = filename.rsplit(".", 1)[0] if isinstance(filename, str) else ""
    name = " ".join(_NAME_UNFIT.sub(" ", stem).split())[:200] or f"document {number}"
    return {"document": {"format": document_format, "name": name, "source": {"bytes": data}}}
