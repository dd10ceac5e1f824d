"""Work for a client that went away is abandoned, not finished for nobody.

Once a request's body is read, the ASGI server's ``receive`` only returns again when the client
disconnects (or the reply is sent). :func:`unless_disconnected` races the work against that, and
cancels the work when the client is gone first; the model's queue then drops its parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


class ClientDisconnected(Exception):
    """The client closed the connection before its answer was ready."""


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, work: Awaitable[T]) -> T:
    """The result of ``work``; if the client disconnects first, ``work`` is cancelled and this raises
    :class:`ClientDisconnected`. Call it only after the request body has been read."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this coroutine is itself cancelled: neither may outlive it
        for pending in (task, watcher):
            if not pending.done():
                pending.cancel()
    if task.done() and not task.cancelled():
        return task.result()
    raise ClientDisconnected("the client closed the connection")
