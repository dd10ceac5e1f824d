"""Every error becomes a JSON reply ``{"detail": "...", "errors": [...]}`` with the right status.

Bad input is always a 4xx naming the field and what was wrong; a 500 means a bug in the server.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from confidently.errors import ArtifactError, ConfidentlyError, DataError, TaskError
from confidently.server.batching import ShuttingDownError
from confidently.server.registry import AdapterPathError, UnknownAdapterError
from confidently.server.schemas import ErrorResponse
from confidently.server.served import AdapterConflictError

log = logging.getLogger("confidently.server")

#: First match wins, so subclasses come before their bases.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    (UnknownAdapterError, 404),
    (AdapterConflictError, 409),
    (AdapterPathError, 400),
    (ArtifactError, 422),
    (TaskError, 422),
    (DataError, 422),
    (ShuttingDownError, 503),
)

#: Documented replies of every route (``responses=`` of the routers).
ERRORS = {status: {"model": ErrorResponse} for status in (413, 422, 500, 503)}


def _reply(status: int, detail: str, errors: list | None = None, headers: dict | None = None) -> JSONResponse:
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
    return _reply(422, summary, jsonable_encoder(slim))


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    if isinstance(exc.__cause__, UnicodeDecodeError):
        # FastAPI says only "There was an error parsing the body"; other JSON errors are 422 too.
        return _reply(422, f"body is not valid JSON: not UTF-8 text ({exc.__cause__.reason} at byte "
                           f"{exc.__cause__.start})")
    return _reply(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))


async def confidently_error(request: Request, exc: ConfidentlyError) -> JSONResponse:
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
    if status == 500:
        log.error("request failed: %s", exc)
    return _reply(status, str(exc))


async def unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error in %s %s", request.method, request.url.path)
    return _reply(500, f"internal error ({type(exc).__name__}); the server log has the traceback")


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ConfidentlyError, confidently_error)
    app.add_exception_handler(ShuttingDownError, confidently_error)
    app.add_exception_handler(Exception, unexpected_error)
