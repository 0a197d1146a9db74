"""The SSE codec: the same events at every read boundary, event names kept, encoding."""

from __future__ import annotations

from switchboard_router.codecs import sse

STREAM = (b": keep-alive\n\n" + b'data: {"a":1}\n\n'
          + b"event: message_start\r\ndata: {\"b\":\r\ndata: 1}\r\n\r\n"
          + b"event:ping\ndata:{}\n\n" + b"data: [DONE]\n\n")


def test_events_and_their_names():
    events, rest = sse.split_events(STREAM)
    assert rest == b""
    assert [(e.event, e.data) for e in events] == [
        (None, None), (None, b'{"a":1}'), ("message_start", b'{"b":\n1}'), ("ping", b"{}"),
        (None, b"[DONE]")]
    assert events[2].raw == b'event: message_start\ndata: {"b":\ndata: 1}'


def test_the_decoder_gives_the_same_events_at_every_read_boundary():
    whole = sse.split_events(STREAM)[0]
    for cut in range(1, len(STREAM)):
        decoder = sse.SseDecoder()
        events = decoder.feed(STREAM[:cut]) + decoder.feed(STREAM[cut:]) + decoder.close()
        assert events == whole, cut


def test_an_unterminated_last_event_counts_at_the_close():
    decoder = sse.SseDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert [e.data for e in decoder.close()] == [b'{"a":1}']
    assert decoder.close() == []


def test_encode_round_trips():
    for event in (None, "content_block_delta"):
        data = sse.encode(b'{"x":"y"}', event)
        assert data.endswith(b"\n\n")
        (parsed,), rest = sse.split_events(data)
        assert (parsed.event, parsed.data, rest) == (event, b'{"x":"y"}', b"")
    assert sse.encode(b"[DONE]") == sse.DONE


def test_spans_at_finds_each_matching_event_once_and_not_in_the_incomplete_rest():
    data = b'data: {"a":1}\n\n\ndata: {"b":1,"b2":1}\n\ndata: {"c":1}\n\ndata: {"b":'
    spans = sse.spans_at(data, sse.find_all(data, b"\"b"))
    assert [data[s:e] for s, e in spans] == [b'data: {"b":1,"b2":1}']
    assert sse.parse(data[spans[0][0]:spans[0][1]]).data == b'{"b":1,"b2":1}'
    assert [data[s:e] for s, e in sse.spans_at(data, sse.find_all(data, b"\"a"))] == [b'data: {"a":1}']
    assert sse.spans_at(data, sse.find_all(data, b"\"z")) == []
