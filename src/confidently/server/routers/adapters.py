"""Adapters: ``GET /v1/adapters`` for everyone; loading and unloading with the admin token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path

from confidently.server.deps import AdminDep, ServiceDep
from confidently.server.handlers import ERRORS
from confidently.server.schemas import (ADAPTER_NAME_PATTERN, AdaptersResponse, ErrorResponse, LoadAdapterRequest,
                                       ModelInfo)

router = APIRouter(prefix="/v1/adapters", tags=["adapters"])

Name = Annotated[str, Path(pattern=ADAPTER_NAME_PATTERN, description="Adapter name: letters, digits, '.', '_', "
                           "'-', starting with a letter or digit.")]
ADMIN_ERRORS = {
    **ERRORS,
    400: {"model": ErrorResponse, "description": "The path leaves the adapters folder."},
    401: {"model": ErrorResponse, "description": "No admin token."},
    403: {"model": ErrorResponse, "description": "Wrong admin token, or admin endpoints disabled."},
    404: {"model": ErrorResponse, "description": "No such adapter (folder)."},
}


@router.get("", response_model=AdaptersResponse)
async def list_adapters(service: ServiceDep) -> AdaptersResponse:
    """The base model and every loaded adapter: task, labels, calibrator, threshold, manifest hash."""
    return AdaptersResponse(base=service.registry.base.info(), adapters=service.registry.infos())


@router.post("/{name}", status_code=201, response_model=ModelInfo, dependencies=[AdminDep],
             responses={**ADMIN_ERRORS, 409: {"model": ErrorResponse,
                                              "description": "Trained on other base weights."}})
async def load_adapter(name: Name, service: ServiceDep,
                       body: Annotated[LoadAdapterRequest | None, Body()] = None) -> ModelInfo:
    """Load adapter ``name`` from the adapters folder (``path`` inside it, default ``name``).

    An adapter of the same name is replaced. Needs ``Authorization: Bearer <admin token>``.
    """
    path = None if body is None else body.path
    served = await service.run(lambda: service.registry.load(name, path))
    return served.info()


@router.delete("/{name}", response_model=ModelInfo, dependencies=[AdminDep], responses=ADMIN_ERRORS)
async def unload_adapter(name: Name, service: ServiceDep) -> ModelInfo:
    """Unload adapter ``name``; requests already queued for it fail with 404. Needs the admin token."""
    served = await service.run(lambda: service.registry.unload(name))
    return served.info()
