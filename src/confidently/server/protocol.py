"""uvicorn's HTTP protocol with a read deadline and a connection cap.

uvicorn waits forever for a request's headers and body: a client that sends half a request holds a
connection (and, during shutdown, the drain) for as long as it likes. Here every request must be
fully received within ``read_timeout_s`` of its first byte, or of the connection's opening when
nothing has come yet; otherwise the client gets 408 and the connection is closed. Connections
beyond ``max_connections`` are answered 503 and closed at once.
"""

from __future__ import annotations

import asyncio
import http
import json

from confidently.server.handlers import BUSY_RETRY_AFTER_S


def raw_reply(status: int, detail: str, *, retry_after: int | None = None) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 reply with the JSON error body every error gets."""
    body = json.dumps({"detail": detail}).encode()
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close"]
    if retry_after is not None:
        head.append(f"retry-after: {retry_after}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class _Guarded:
    """Mixed into uvicorn's protocol class (h11 or httptools: both keep ``cycle`` and ``transport``)."""

    read_timeout_s: float
    max_connections: int
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        if len(self.connections) > self.max_connections:  # type: ignore[attr-defined]
            transport.write(raw_reply(503, f"the server has its limit of {self.max_connections} connections "
                                           "open: retry later", retry_after=BUSY_RETRY_AFTER_S))
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle  # type: ignore[attr-defined]
        if self._deadline is None and (cycle is None or cycle.response_complete):
            self._arm()  # the first bytes of a new request
        super().data_received(data)  # type: ignore[misc]
        cycle = self.cycle  # type: ignore[attr-defined]
        if self._deadline is not None and cycle is not None and not cycle.response_complete and not cycle.more_body:
            self._disarm()  # the whole request is in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)  # type: ignore[misc]

    def _arm(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)  # type: ignore[attr-defined]

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        transport: asyncio.Transport = self.transport  # type: ignore[attr-defined]
        if transport.is_closing():
            return
        cycle = self.cycle  # type: ignore[attr-defined]
        if cycle is None or not cycle.response_started:
            transport.write(raw_reply(408, f"the request was not received in full within {self.read_timeout_s:g} s"))
        transport.close()


def guarded_protocol(read_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """uvicorn's default HTTP protocol class with the read deadline and connection cap above."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    return type("GuardedHTTPProtocol", (_Guarded, AutoHTTPProtocol),
                {"read_timeout_s": read_timeout_s, "max_connections": max_connections})
