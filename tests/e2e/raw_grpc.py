"""A gRPC call written as raw HTTP/2 frames (h2), for metadata Python's grpc refuses to send:
header values that are not ASCII or not UTF-8, as a careless or hostile client can send them."""

from __future__ import annotations

import socket

import h2.config
import h2.connection
import h2.events


def call(target: str, path: str, metadata: list[tuple[bytes, bytes]], message: bytes = b"",
         timeout: float = 10.0) -> dict[bytes, bytes]:
    """POST one length-prefixed `message` to `path` on `target` (host:port, h2c); returns the
    response's headers and trailers together (grpc-status, grpc-message, x-http-status...)."""
    host, port = target.rsplit(":", 1)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(
        client_side=True, header_encoding=None, validate_outbound_headers=False,
        normalize_outbound_headers=False))
    answer: dict[bytes, bytes] = {}
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        conn.initiate_connection()
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
                                   (b":authority", target.encode()), (b"content-type", b"application/grpc"),
                                   (b"te", b"trailers"), *metadata])
        conn.send_data(stream, b"\x00" + len(message).to_bytes(4, "big") + message, end_stream=True)
        sock.sendall(conn.data_to_send())
        while True:
            data = sock.recv(65536)
            if not data:
                return answer
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived | h2.events.TrailersReceived):
                    answer.update(dict(event.headers))
                if isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                    return answer
            sock.sendall(conn.data_to_send())
