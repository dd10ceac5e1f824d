"""``GET /v1/adapters/{name}/drift``: drift from the reference and live accuracy, for one adapter."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from confidently.server.deps import LoopDep, ServiceDep
from confidently.server.handlers import ERRORS
from confidently.server.loop_schemas import DriftResponse
from confidently.server.routers.adapters import Name
from confidently.server.schemas import ErrorResponse

router = APIRouter(prefix="/v1/adapters", tags=["monitoring"])


@router.get("/{name}/drift", response_model=DriftResponse,
            responses={**ERRORS, 404: {"model": ErrorResponse, "description": "No such adapter loaded."}})
async def drift(name: Name, service: ServiceDep, loop: LoopDep) -> DriftResponse:
    """PSI and KS of the adapter's latest texts against its reference distribution (the calibration rows),
    and the accuracy of its automated decisions on the audit sample, with anytime-valid bounds (a confidence
    sequence: the verdict may be read after every audit).

    The report says how each number was computed (bins, window, thresholds, n) and which alarms are raised.
    """
    served = service.registry.get(name)
    accuracy = await asyncio.to_thread(loop.live_accuracy, served)
    return DriftResponse(adapter=name, bundle_version=served.bundle_version, drift=loop.drift(served),
                         live_accuracy=accuracy, canary=service.registry.canaries.get(name))
