"""The Bedrock codec's document blocks: OpenAI file parts as Converse documents, named as
Bedrock's rule allows, checked by the fake's validator (botocore's service model plus Bedrock's
DocumentBlock rules) and echoed by the fake's answer."""

from __future__ import annotations

import base64

import orjson
import pytest
from switchboard_common import errors

from switchboard_router.codecs import bedrock
from switchboard_router.domain import Deployment, Endpoint
from switchboard_router.providers.base import Call
from tests.fakes import bedrock_fake as fake
from tests.fakes import bedrock_wire as wire

MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
DEP = Deployment(route="bedrock/*", name="bedrock/*", provider="bedrock", model=None, weight=1,
                 timeout_seconds=600, read_timeout_seconds=60, connect_timeout_seconds=10)


def _call(body: dict) -> Call:
    return Call(endpoint=Endpoint.CHAT, body={"model": f"bedrock/{MODEL}", **body}, model=f"bedrock/{MODEL}",
                upstream_model=MODEL, deployment=DEP, request_id="r1")


def _sent(body: dict) -> dict:
    """The translated request, after the fake accepted it as Bedrock would."""
    out = bedrock.translate_request(_call(body))
    wire.validate("Converse", MODEL, orjson.loads(orjson.dumps(out)))
    return out


PDF = base64.b64encode(b"%PDF-1.4 fake pdf").decode()


def test_file_parts_are_document_blocks_named_as_bedrock_allows():
    sent = _sent({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Summarise these."},
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "Q3 report_v2.pdf"}},
        {"type": "file", "file": {"file_data": "data:text/plain;base64," + base64.b64encode(b"notes").decode()}}]}]})
    blocks = sent["messages"][0]["content"]
    assert blocks[1] == {"document": {"format": "pdf", "name": "Q3 report v2", "source": {"bytes": PDF}}}
    assert blocks[2]["document"]["format"] == "txt" and blocks[2]["document"]["name"] == "document 2"
    content, _ = wire.answer(orjson.loads(orjson.dumps(sent)), lambda: "t", fake._MARKER)
    assert content[-1]["text"] == "Echo: Summarise these. [2 document(s)]"
    pdf = {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{PDF}", "filename": "a.pdf"}}
    for content, param in (
            ([pdf], "messages[0].content"),  # no text beside the document
            ([{"type": "text", "text": "x"}, pdf, pdf], "messages[0].content"),  # two of one name
            ([{"type": "file", "file": {"file_id": "file-abc"}}], "messages[0].content[0].file.file_id"),
            ([{"type": "file", "file": {"file_data": "data:image/svg+xml;base64,PHN2Zz4="}}],
             "messages[0].content[0].file.file_data"),
            ([{"type": "file", "file": {"file_data": "data:application/pdf;base64,@@"}}],
             "messages[0].content[0].file.file_data")):
        with pytest.raises(errors.InvalidRequest) as info:
            bedrock.translate_request(_call({"messages": [{"role": "user", "content": content}]}))
        assert info.value.param == param
    with pytest.raises(wire.Refusal):  # the fake holds Bedrock's name rule too
        wire.validate("Converse", MODEL, {"messages": [{"role": "user", "content": [
            {"text": "x"}, {"document": {"format": "pdf", "name": "a  b.pdf", "source": {"bytes": PDF}}}]}]})
