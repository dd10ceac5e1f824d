"""A small Python client for ``confidently serve``.

Replies are parsed into the server's own pydantic models, so fields are typed and documented once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from confidently.errors import BackendError, ConfigError
from confidently.server.schemas import AdaptersResponse, ClassifyResponse, Health, ModelInfo


class ServerError(BackendError):
    """The server answered with an error; ``status_code`` is its HTTP status, the message its detail."""

    def __init__(self, message: str, *, status_code: int):
        super().__init__(message)
        self.status_code = status_code


class Client:
    """Talk to a ``confidently serve`` server.

    Parameters
    ----------
    url : the server's base URL.
    admin_token : bearer token for :meth:`load_adapter` and :meth:`unload_adapter`.
    timeout : seconds to wait for each reply (a queued batch may take a while on CPU).

    Examples
    --------
    >>> with Client("http://127.0.0.1:8000") as client:  # doctest: +SKIP
    ...     reply = client.classify(["I love it"], adapter="support-tickets")
    ...     result = reply.results[0]
    ...     result.label, result.confidence, result.calibrated, result.decision
    """

    def __init__(self, url: str = "http://127.0.0.1:8000", *, admin_token: str | None = None, timeout: float = 120.0):
        import httpx

        if not url.lower().startswith(("http://", "https://")):  # else httpx's "unsupported protocol 'localhost://'"
            raise ConfigError(f"Client URL {url!r} has no http:// or https://: give e.g. http://127.0.0.1:8000")
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {admin_token}"} if admin_token else {}
        self._http = httpx.Client(base_url=self.url, timeout=timeout, headers=headers)

    def classify(self, texts: str | Sequence[str], adapter: str | None = None, *,
                 top_tokens: int = 0) -> ClassifyResponse:
        """Classify one text or a list of texts; ``reply.results`` holds one result per text, in order."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        body = {"texts": texts, "adapter": adapter, "top_tokens": top_tokens}
        return ClassifyResponse.model_validate(self._request("POST", "/v1/classify", json=body))

    def adapters(self) -> AdaptersResponse:
        """The base model and every loaded adapter."""
        return AdaptersResponse.model_validate(self._request("GET", "/v1/adapters"))

    def health(self) -> Health:
        return Health.model_validate(self._request("GET", "/healthz"))

    def load_adapter(self, name: str, path: str | None = None) -> ModelInfo:
        """Load adapter ``name`` from the server's adapters folder (``path`` inside it, default ``name``)."""
        body = None if path is None else {"path": path}
        return ModelInfo.model_validate(self._request("POST", f"/v1/adapters/{name}", json=body))

    def unload_adapter(self, name: str) -> ModelInfo:
        return ModelInfo.model_validate(self._request("DELETE", f"/v1/adapters/{name}"))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as error:
            raise BackendError(f"cannot reach the confidently server at {self.url}: {error}") from None
        if reply.is_success:
            return reply.json()
        try:
            detail = reply.json()["detail"]
        except (ValueError, KeyError, TypeError):
            detail = reply.text[:500]
        raise ServerError(f"{method} {path} failed with {reply.status_code}: {detail}", status_code=reply.status_code)
