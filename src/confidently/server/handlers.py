"""Every error becomes a JSON reply ``{"detail": "...", "errors": [...]}`` with the right status.

Bad input is always a 4xx naming the field and what was wrong; a 500 means a bug in the server.
A serving engine behind ``--backend openai`` that fails gives 502 (504 when it did not answer in time).
A 503 (shutting down, or too busy) carries ``Retry-After``. Absolute server paths never reach a
reply (see :mod:`confidently.server.redact`).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from confidently.monitoring.canary import CanaryFailedError
from confidently.errors import ArtifactError, BackendError, ConfidentlyError, DataError, TaskError
from confidently.server.batching import ShuttingDownError
from confidently.server.disconnect import ClientDisconnected
from confidently.server.redact import redact_paths
from confidently.server.registry import AdapterPathError, AdapterReloadedError, UnknownAdapterError
from confidently.server.schemas import ErrorResponse
from confidently.server.served import AdapterConflictError, EngineTimeoutError

log = logging.getLogger("confidently.server")

#: First match wins, so subclasses come before their bases.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownAdapterError, 404),
    (AdapterConflictError, 409),
    (CanaryFailedError, 409),
    (AdapterReloadedError, 409),
    (AdapterPathError, 400),
    (ArtifactError, 422),
    (TaskError, 422),
    (DataError, 422),
    (ShuttingDownError, 503),
    (EngineTimeoutError, 504),
    (BackendError, 502),
)

#: Documented replies of every route (``responses=`` of the routers).
ERRORS = {status: {"model": ErrorResponse} for status in (413, 422, 500, 502, 503, 504)}

#: Seconds a client should wait before retrying a request refused because the server is shutting down.
SHUTDOWN_RETRY_AFTER_S = 5
#: Seconds a client refused for being one request too many should wait before retrying.
BUSY_RETRY_AFTER_S = 1

#: Status of a request whose client went away before the answer (nginx's convention; nobody reads it).
CLIENT_CLOSED_REQUEST = 499


def error_reply(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> JSONResponse:
    """The reply every error gets: ``{"detail": ..., "errors": [...]}`` (``errors`` for invalid fields only)."""
    return JSONResponse(ErrorResponse(detail=detail, errors=errors).model_dump(exclude_none=True),
                        status_code=status, headers=headers)


def _where(loc: tuple) -> str:
    parts = list(loc[1:] if loc and loc[0] in ("body", "path", "query", "header") else loc)
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or (loc[0] if loc else "request")


def _describe(error: dict) -> str:
    if error.get("type") == "json_invalid":
        reason = error.get("ctx", {}).get("error", "decode error")
        return f"body is not valid JSON ({reason} at character {error['loc'][-1]})"
    return f"{_where(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    summary = "; ".join(_describe(e) for e in errors[:5]) + (f"; and {len(errors) - 5} more" if len(errors) > 5 else "")
    # The offending input is left out: it may be megabytes of text.
    slim = [{k: e[k] for k in ("loc", "msg", "type") if k in e} for e in errors]
    return error_reply(422, summary, jsonable_encoder(slim))


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI says only "There was an error parsing the body"; other JSON errors are 422 too.
        return error_reply(422, f"body is not valid JSON: not UTF-8 text ({exc.__cause__.reason} at byte "
                           f"{exc.__cause__.start})")
    return error_reply(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def confidently_error(request: Request, exc: ConfidentlyError | ShuttingDownError) -> JSONResponse:
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
    if status == 500:
        log.error("request failed: %s", exc)
    adapters_dir = request.app.state.settings.adapters_dir
    detail = redact_paths(str(exc), [] if adapters_dir is None else [adapters_dir.resolve()])
    headers = {"Retry-After": str(SHUTDOWN_RETRY_AFTER_S)} if status == 503 else None
    return error_reply(status, detail, headers=headers)


async def client_disconnected(request: Request, exc: ClientDisconnected) -> Response:
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return error_reply(500, f"internal error ({type(exc).__name__}); the server log has the traceback")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ConfidentlyError, confidently_error)
    app.add_exception_handler(ShuttingDownError, confidently_error)
    app.add_exception_handler(ClientDisconnected, client_disconnected)
    app.add_exception_handler(Exception, unexpected_error)
