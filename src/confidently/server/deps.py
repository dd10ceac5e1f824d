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

from confidently.server.metrics import Metrics
from confidently.server.service import Service
from confidently.server.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="The server's admin token (--admin-token or "
                                                   "CONFIDENTLY_ADMIN_TOKEN).")


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_service(request: Request) -> Service:
    return request.app.state.service


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


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
