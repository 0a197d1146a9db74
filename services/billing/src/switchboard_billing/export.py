"""Usage exports: records as CSV (a header, then one line per record) or JSON lines, one chunk per
batch read from the database, so an export of any size streams in constant memory."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from google.api import httpbody_pb2
from switchboard.billing.v1 import billing_pb2

from switchboard_common.errors import InvalidRequest

from switchboard_billing.domain import UsageEntry
from switchboard_billing.json_view import as_dict

FORMATS = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
# The CSV columns: the record's fields in proto order, each amount also in dollars.
COLUMNS = [f.name for f in billing_pb2.UsageRecord.DESCRIPTOR.fields]
COLUMNS.insert(COLUMNS.index("cost_micros_usd") + 1, "cost_usd")


def content_type(fmt: str) -> str:
    name = (fmt or "csv").lower()
    if name not in FORMATS:
        raise InvalidRequest(f"format must be csv or jsonl; got '{fmt[:20]}'.", param="format",
                             code="invalid_value")
    return FORMATS[name]


async def chunks(batches: AsyncIterator[list[UsageEntry]], fmt: str,
                 to_record: Callable[[UsageEntry], billing_pb2.UsageRecord],
                 ) -> AsyncIterator[httpbody_pb2.HttpBody]:
    kind = content_type(fmt)
    csv_format = kind.startswith("text/csv")
    if csv_format:
        yield httpbody_pb2.HttpBody(content_type=kind, data=_csv([dict(zip(COLUMNS, COLUMNS, strict=True))]))
    sent_any = csv_format
    async for batch in batches:
        rows = [as_dict(to_record(entry)) for entry in batch]
        data = _csv(rows) if csv_format else b"".join(orjson.dumps(r) + b"\n" for r in rows)
        yield httpbody_pb2.HttpBody(content_type=kind, data=data)
        sent_any = True
    if not sent_any:  # an empty JSON-lines export is still a 200 with its content type
        yield httpbody_pb2.HttpBody(content_type=kind, data=b"")


def _csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode()
