"""A deadline for a request's headers, which uvicorn does not have.

uvicorn reads a request's headers before the app sees anything, and its ``timeout_keep_alive``
starts only after a reply: a connection that sends nothing, or stops halfway through its headers,
held a connection open indefinitely (measured: still open after 12 s and 24 s). This protocol
closes it with a 408 when its headers are not complete ``header_timeout`` seconds after the
connection opened or after its previous reply. The body has its own deadline (``--body-timeout``,
in ``endpoint.read_json``).
"""

import json

from uvicorn.protocols.http.auto import AutoHTTPProtocol

def with_header_timeout(seconds: float) -> type:
    """uvicorn's HTTP protocol class, closing connections whose headers take over ``seconds``:
    a first request with a 408 (TEI's error shape), a later one on a kept-alive connection
    silently (a client may not expect a reply it did not ask for; uvicorn's own keep-alive
    timeout usually closes an idle one first)."""
    body = json.dumps({"error": f"the request headers did not arrive within {seconds:g} s (--header-timeout)",
                       "error_type": "Validation"}).encode()
    timed_out = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                 + f"content-length: {len(body)}\r\n\r\n".encode() + body)

    class HeaderDeadline(AutoHTTPProtocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def _arm(self):
            self._disarm()
            self._header_deadline = self.loop.call_later(seconds, self._headers_late)

        def _disarm(self):
            timer = getattr(self, "_header_deadline", None)
            if timer is not None:
                timer.cancel()
                self._header_deadline = None

        def _headers_late(self):
            self._header_deadline = None
            waiting = self.cycle is None or self.cycle.response_complete  # no request under way
            if waiting and not self.transport.is_closing():
                if self.cycle is None:
                    self.transport.write(timed_out)
                self.transport.close()

    return HeaderDeadline
