"""The API's HTTP protocol: uvicorn's httptools parser with a bound on a request's head.

httptools puts no limit on the request line or the headers and builds them up on the event loop:
one client sending a header of hundreds of megabytes held every other request up for seconds
and the process's memory grew with it, before any API key was looked at. A head still incomplete
after HEAD_LIMIT bytes is refused with 431 and the connection closed.
`uvicorn app.main:app --http app.serving:BoundedHttpTools` (make up, compose, the Dockerfile).
"""

import json

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

# generous for any real request (browsers send a few kB); a chunk the event loop hands over is at
# most 256 kB, and one that ends a message and starts the next is counted whole
HEAD_LIMIT = 1 << 20
_REFUSAL = json.dumps(
    {
        "message": "request line and headers over 1 MiB; send a shorter URL and fewer or shorter "
        "headers (bodies go in the body)",
        "detail": "request head too large",
    }
).encode()


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol that stops reading a request whose head passes HEAD_LIMIT bytes."""

    _in_head = True
    _head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._head_bytes += len(data)
        if self._head_bytes > HEAD_LIMIT:
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: " + str(len(_REFUSAL)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + _REFUSAL
            )
            self.transport.close()
