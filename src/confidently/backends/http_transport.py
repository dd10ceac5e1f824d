"""Posting JSON to an OpenAI-compatible server: bounded concurrency, timeouts, retries, clear errors.

The backend API is synchronous (``Classifier.score`` hands over one batch at a time), while a server
answers fastest when a batch's requests are in flight together. :class:`HttpTransport` therefore
owns a private event loop on a daemon thread and runs each batch there with ``httpx.AsyncClient``:
it works the same from plain scripts, threads, and callers that already run an event loop
(notebooks, ASGI apps), where ``asyncio.run`` would refuse.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any

from confidently.errors import BackendError

# Statuses that say "try again later": rate limits, overload and gateway failures.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 30.0


class ServerRejected(BackendError):
    """The server answered a request with an HTTP error status that retrying will not fix.

    Attributes
    ----------
    status : the HTTP status code.
    detail : the server's own error message (or the start of its body).
    """

    def __init__(self, message: str, *, status: int, detail: str):
        super().__init__(message)
        self.status = status
        self.detail = detail


class ServerTimeout(BackendError):
    """The server did not answer a request in time, on any of its tries."""


def error_detail(text: str, limit: int = 300) -> str:
    """The server's error message: OpenAI's ``{"error": {"message": ...}}``, FastAPI's ``detail``, or the text."""
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:limit]
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])[:limit]
        for key in ("message", "detail", "error"):
            if data.get(key):
                return str(data[key])[:limit]
    return text.strip()[:limit]


class _LoopThread:
    """An event loop running forever on a daemon thread, and the HTTP client bound to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = None  # httpx.AsyncClient, created on the loop (it binds to the loop it first runs on)
        self.thread = threading.Thread(target=self._main, name="confidently-http", daemon=True)
        self.thread.start()

    def _main(self) -> None:
        self.loop.run_forever()
        self.loop.close()

    def run(self, coroutine: Coroutine) -> Any:
        """Run ``coroutine`` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        """Close the client, then the loop; returns at once, so it is safe from any thread."""

        async def shutdown() -> None:
            if self.client is not None:
                await self.client.aclose()
            self.loop.stop()

        if not self.loop.is_closed():
            asyncio.run_coroutine_threadsafe(shutdown(), self.loop)


class HttpTransport:
    """POSTs JSON bodies to ``base_url + path`` and returns the parsed JSON replies.

    Parameters
    ----------
    base_url : the server's API root, e.g. ``http://127.0.0.1:8080/v1``.
    api_key : sent as ``Authorization: Bearer <key>`` when given.
    timeout : seconds to wait for one reply (connect, read, write) before it counts as failed.
    max_retries : extra tries after a connection error, a timeout, HTTP 408/429 or a 5xx.
    max_concurrency : requests in flight at once.
    backoff : first wait between tries in seconds; it doubles each try (with jitter, capped at
        30 s), and a ``Retry-After`` header is honoured.
    """

    def __init__(self, base_url: str, *, api_key: str | None = None, timeout: float = 60.0, max_retries: int = 4,
                 max_concurrency: int = 8, backoff: float = 0.5):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_concurrency = max_concurrency
        self.backoff = backoff
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._runner: _LoopThread | None = None
        self._finalizer: weakref.finalize | None = None

    def post_many(self, path: str, bodies: Sequence[Mapping[str, Any]]) -> list[Any]:
        """POST every body to ``path`` concurrently; replies in the order of ``bodies``.

        Raises
        ------
        BackendError
            When any request still fails after its retries; the other requests are cancelled.
        """
        return self._run(path, bodies, keep_failures=False)

    def post_each(self, path: str, bodies: Sequence[Mapping[str, Any]]) -> list[Any]:
        """Like :meth:`post_many`, but a request that still fails after its retries gives its
        :class:`BackendError` in its place instead of failing the others (black-box scorers count it)."""
        return self._run(path, bodies, keep_failures=True)

    def _run(self, path: str, bodies: Sequence[Mapping[str, Any]], *, keep_failures: bool) -> list[Any]:
        if not bodies:
            return []
        if self._runner is None:
            self._runner = _LoopThread()
            # A transport dropped without close() still ends its thread and connections.
            self._finalizer = weakref.finalize(self, self._runner.stop)
        return self._runner.run(self._post_all(path, list(bodies), keep_failures))

    def close(self) -> None:
        """Close the connections and stop the loop thread (a later call starts them again)."""
        if self._runner is None:
            return
        self._finalizer()
        self._runner.thread.join(timeout=5)
        self._runner = self._finalizer = None

    async def _post_all(self, path: str, bodies: list[Mapping[str, Any]], keep_failures: bool = False) -> list[Any]:
        import httpx

        if self._runner.client is None:
            self._runner.client = httpx.AsyncClient(
                timeout=self.timeout, headers=self._headers,
                limits=httpx.Limits(max_connections=self.max_concurrency),
            )
        gate = asyncio.Semaphore(self.max_concurrency)

        async def one(body: Mapping[str, Any]) -> Any:
            async with gate:
                return await self._post(self.base_url + path, body)

        tasks = [asyncio.ensure_future(one(body)) for body in bodies]
        try:
            if keep_failures:
                replies = await asyncio.gather(*tasks, return_exceptions=True)
                for reply in replies:  # anything but a failed request (a bug, a cancellation) still raises
                    if isinstance(reply, BaseException) and not isinstance(reply, BackendError):
                        raise reply
                return replies
            return await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()

    async def _post(self, url: str, body: Mapping[str, Any]) -> Any:
        import httpx

        tries = self.max_retries + 1
        for attempt in range(tries):
            retry_after = None
            timed_out = False
            try:
                response = await self._runner.client.post(url, json=body)
            except httpx.TimeoutException:
                timed_out = True
                failure = (f"{url} did not answer within {self.timeout:g} s ({tries} tries); raise the timeout "
                           "or lower max_concurrency if the server is overloaded")
            except httpx.TransportError as error:
                failure = (f"cannot reach the server at {self.base_url} ({type(error).__name__}: {error or 'no detail'}; "
                           f"{tries} tries): is it running, and is the base URL right?")
            else:
                if response.status_code < 400:
                    return self._json(url, response)
                detail = error_detail(response.text)
                if response.status_code not in RETRY_STATUSES:
                    raise ServerRejected(self._rejection(url, response.status_code, detail),
                                         status=response.status_code, detail=detail)
                failure = f"{url} answered HTTP {response.status_code} after {tries} tries: {detail or '(empty body)'}"
                retry_after = response.headers.get("retry-after")
            if attempt + 1 < tries:
                await asyncio.sleep(self._delay(attempt, retry_after))
        raise (ServerTimeout if timed_out else BackendError)(failure)

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after is not None:
            try:
                return min(MAX_BACKOFF_S, max(0.0, float(retry_after)))
            except ValueError:
                pass  # an HTTP date instead of seconds: fall back to our own schedule
        # Full jitter keeps many clients that failed together from retrying together.
        return min(MAX_BACKOFF_S, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)

    @staticmethod
    def _json(url: str, response) -> Any:
        try:
            return response.json()
        except ValueError:
            excerpt = response.text[:200]
            raise BackendError(f"{url} answered HTTP {response.status_code} with a body that is not JSON: "
                               f"{excerpt!r}") from None

    @staticmethod
    def _rejection(url: str, status: int, detail: str) -> str:
        if status in (401, 403):
            return (f"{url} refused the request (HTTP {status}: {detail}): pass --api-key with the NAME of the "
                    "environment variable that holds a valid key")
        if status == 404:
            return (f"{url} answered HTTP 404 ({detail}): check the base URL (it usually ends in /v1), the "
                    "endpoint (completions or chat) and the model or adapter name")
        return f"{url} rejected the request (HTTP {status}): {detail}"
