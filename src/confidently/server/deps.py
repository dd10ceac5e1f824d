"""Dependencies the routers declare: settings, the running service, the admin check.

Settings live on ``app.state`` rather than behind a module-level cached ``get_settings()``:
each app gets its own (tests run several servers in one process), and tests can still swap them
with ``app.dependency_overrides[get_settings]``.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from confidently.server.loop import FeedbackLoop
from confidently.server.metrics import Metrics
from confidently.server.service import Service
from confidently.server.settings import Settings

_reviewer_bearer = HTTPBearer(auto_error=False, scheme_name="ReviewerToken",
                              description="A reviewer's token (--reviewers FILE) or the admin token.")
_bearer = HTTPBearer(auto_error=False, description="The server's admin token (--admin-token or "
                                                   "CONFIDENTLY_ADMIN_TOKEN).")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> Service:
    return request.app.state.service


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_loop(request: Request) -> FeedbackLoop:
    return request.app.state.loop


def require_reviewer(settings: Annotated[Settings, Depends(get_settings)],
                     credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_reviewer_bearer)]) -> str:
    """The reviewer's name, for ``Authorization: Bearer <reviewer token>`` (the admin token is reviewer ``admin``)."""
    tokens = dict(settings.reviewer_tokens)
    if settings.admin_token is not None:
        tokens.setdefault("admin", settings.admin_token)
    if not tokens:
        raise HTTPException(403, "review is disabled: start the server with --reviewers FILE or --admin-token")
    if credentials is None:
        raise HTTPException(401, "missing reviewer token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    sent = credentials.credentials.encode()
    # Compare with every token (constant time each), so timing tells nothing about which matched.
    matches = [name for name, token in tokens.items() if hmac.compare_digest(sent, token.encode())]
    if not matches:
        raise HTTPException(403, "wrong reviewer token")
    return matches[0]


def require_admin(settings: Annotated[Settings, Depends(get_settings)],
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    """Allow the request only with ``Authorization: Bearer <admin token>``."""
    if settings.admin_token is None:
        raise HTTPException(403, "admin endpoints are disabled: start the server with --admin-token "
                                 "or CONFIDENTLY_ADMIN_TOKEN")
    if credentials is None:
        raise HTTPException(401, "missing admin token: send 'Authorization: Bearer <token>'",
                            headers={"WWW-Authenticate": "Bearer"})
    # Constant-time comparison, so response timing does not leak the token.
    if not hmac.compare_digest(credentials.credentials.encode(), settings.admin_token.encode()):
        raise HTTPException(403, "wrong admin token")


SettingsDep = Annotated[Settings, Depends(get_settings)]
ServiceDep = Annotated[Service, Depends(get_service)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AdminDep = Depends(require_admin)
LoopDep = Annotated[FeedbackLoop, Depends(get_loop)]
ReviewerDep = Annotated[str, Depends(require_reviewer)]
