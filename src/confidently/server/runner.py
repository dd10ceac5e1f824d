"""Running the app under uvicorn: the listening socket, the guarded protocol, a drain that reports.

On SIGTERM or Ctrl-C uvicorn stops accepting connections and gives the requests in flight the drain
window (``drain_timeout_s``) to finish; what still runs then is cancelled, and
:class:`~confidently.server.middleware.InFlightRequests` answers it 503 with ``Retry-After``. The
log then says how many requests finished and how many were refused.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time

import uvicorn
from fastapi import FastAPI

from confidently.errors import ConfigError
from confidently.server.middleware import RequestCounts
from confidently.server.protocol import guarded_protocol
from confidently.server.settings import Settings

log = logging.getLogger("confidently.server")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (so a taken port is found before the model loads).

    Raises
    ------
    ConfigError
        If the address cannot be resolved or bound.
    """
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.socket(family, socket.SOCK_STREAM)
    except OSError as error:
        raise ConfigError(f"--host {host}: cannot listen there ({error.strerror or error})") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        hint = " (another process uses that port; pick another with --port)" if error.errno == errno.EADDRINUSE else ""
        raise ConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}{hint}") from None
    return sock


class DrainingServer(uvicorn.Server):
    """uvicorn's server, logging what its graceful shutdown did with the requests in flight."""

    def __init__(self, config: uvicorn.Config, counts: RequestCounts):
        super().__init__(config)
        self.counts = counts

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        counts = self.counts
        in_flight, answered, cut_short = counts.in_flight, counts.answered, counts.cut_short
        window = self.config.timeout_graceful_shutdown
        log.info("shutting down: %d requests in flight have %g s to finish", in_flight, window)
        await super().shutdown(sockets)
        # Requests cancelled at the end of the window write their 503 on the next turns of the loop.
        deadline = time.monotonic() + 5
        while counts.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        finished, refused = counts.answered - answered, counts.cut_short - cut_short
        log.log(logging.WARNING if refused else logging.INFO,
                "shutdown: of %d requests in flight, %d finished and %d were refused with 503 "
                "(drain window %g s)", in_flight, finished, refused, window)


def configure_logging(level: str) -> None:
    """Show the server's own log lines (adapters skipped, shutdown summary) beside uvicorn's, at ``level``."""
    logger = logging.getLogger("confidently.server")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.DEBUG if level == "trace" else level.upper())


def make_server(app: FastAPI, *, log_level: str = "info") -> DrainingServer:
    """A server for ``app`` (made by :func:`confidently.server.app.create_app`) with its settings' limits."""
    settings: Settings = app.state.settings
    config = uvicorn.Config(app, log_level=log_level, timeout_graceful_shutdown=settings.drain_timeout_s,
                            http=guarded_protocol(settings.read_timeout_s, settings.max_connections))
    return DrainingServer(config, app.state.counts)
