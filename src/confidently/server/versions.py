"""Recalibrated versions reach a running server: adapter folders are checked for ``versions/vN`` now and then."""

from __future__ import annotations

import asyncio
import logging

from confidently.server.service import Service

log = logging.getLogger("confidently.server")


async def poll_versions(service: Service, interval_s: float) -> None:
    """Every ``interval_s``, apply newer calibration versions on the model's worker thread (between batches)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await service.run(service.registry.refresh_versions)
        except Exception:  # a broken folder must not stop the polling; the registry already logged it
            log.exception("checking for recalibrated versions failed")
