"""The review queue: the ``/review`` page, its JSON endpoints, and ``POST /v1/feedback`` for programs.

All but the page need a reviewer token (or the admin token); the page asks for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from importlib import resources
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from confidently.errors import DataError
from confidently.feedback import FeedbackStore, LabelConflictError, QueueItem, StoreError, UnknownItemError
from confidently.server.deps import LoopDep, ReviewerDep, ServiceDep, SettingsDep
from confidently.server.handlers import ERRORS
from confidently.server.loop_schemas import (MAX_POSITION, REQUEST_ID_PATTERN, FeedbackOut, FeedbackRequest,
                                             LabelRequest, ReviewItem, ReviewNext)
from confidently.server.schemas import ADAPTER_NAME_PATTERN, ErrorResponse

router = APIRouter(tags=["review"])
T = TypeVar("T")
ItemId = Annotated[str, Path(pattern=REQUEST_ID_PATTERN, description="The request_id of a classify response.")]
Position = Annotated[int, Path(ge=0, le=MAX_POSITION, description="The text's index in its request.")]


class ReviewQuery(BaseModel):
    """``GET /v1/review/next``'s query; unknown parameters are refused rather than ignored."""

    model_config = ConfigDict(extra="forbid")

    adapter: str = Field(default="", pattern=f"^({ADAPTER_NAME_PATTERN[1:-1]})?$",
                         description="Only this adapter's texts (empty: every adapter's and the base model's).")

REVIEW_ERRORS = {
    **ERRORS,
    401: {"model": ErrorResponse, "description": "No reviewer token."},
    403: {"model": ErrorResponse, "description": "Wrong token, or review disabled."},
    404: {"model": ErrorResponse, "description": "No such text, or no review queue on this server."},
}


@router.get("/review", response_class=HTMLResponse, include_in_schema=False)
async def review_page() -> HTMLResponse:
    """The review page: plain HTML and JavaScript, talking to the endpoints below."""
    page = resources.files("confidently.server").joinpath("review.html").read_text(encoding="utf-8")
    # The page holds a bearer token: no framing by other sites, no inline data sent anywhere else.
    return HTMLResponse(page, headers={"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                                       "Cache-Control": "no-store"})


@router.get("/v1/review/next", response_model=ReviewNext, responses=REVIEW_ERRORS)
async def next_item(reviewer: ReviewerDep, loop: LoopDep, settings: SettingsDep,
                    query: Annotated[ReviewQuery, Query()]) -> ReviewNext:
    """Claim the next unlabelled text for this reviewer (the same one again until labelled or released)."""
    store, adapter = _store(loop), query.adapter
    item = await _call(lambda: store.claim(reviewer, adapter=adapter or None, any_adapter=not adapter,
                                           lease_s=settings.review_lease_s))
    pending = await _call(lambda: store.pending(adapter or None, any_adapter=not adapter))
    return ReviewNext(item=None if item is None else _item(item), pending=pending)


@router.post("/v1/review/{request_id}/{position}", response_model=FeedbackOut,
             responses={**REVIEW_ERRORS, 409: {"model": ErrorResponse, "description": "Labelled differently."}})
async def label_from_page(request_id: ItemId, position: Position,
                          body: LabelRequest, reviewer: ReviewerDep, loop: LoopDep,
                          service: ServiceDep) -> FeedbackOut:
    """The review page's label for a text it showed."""
    return await _label(loop, service, request_id, position, body.label, reviewer, "page")


@router.post("/v1/review/{request_id}/{position}/release", status_code=204, responses=REVIEW_ERRORS)
async def release(request_id: ItemId, position: Position,
                  reviewer: ReviewerDep, loop: LoopDep) -> None:
    """Skip a text: give up this reviewer's claim so someone else gets it."""
    store = _store(loop)
    await _call(lambda: store.release(reviewer, request_id, position))


@router.post("/v1/feedback", response_model=FeedbackOut,
             responses={**REVIEW_ERRORS, 409: {"model": ErrorResponse, "description": "Labelled differently."}})
async def feedback(body: FeedbackRequest, reviewer: ReviewerDep, loop: LoopDep, service: ServiceDep) -> FeedbackOut:
    """The true label of a classified text (``request_id`` from its classify response, ``position`` its index).

    Any logged text may be labelled, queued or not; sending the same label again is harmless, a
    different one is refused (409). The label is stored durably before this returns.
    """
    return await _label(loop, service, body.request_id, body.position, body.label, reviewer, "api")


async def _label(loop, service, request_id: str, position: int, label: str, reviewer: str, source) -> FeedbackOut:
    store = _store(loop)
    stored = await _call(lambda: store.label(request_id, position, label, reviewer=reviewer, source=source))
    item = await _call(lambda: store.item(request_id, position))
    if item is not None and item.reason == "audit":
        # A new audited label may move the live accuracy across its alarm line.
        try:
            served = service.registry.get(item.adapter)
        except KeyError:
            served = None
        if served is not None:
            await asyncio.to_thread(loop.live_accuracy, served)
    return FeedbackOut(request_id=stored.request_id, position=stored.position, label=stored.label,
                       reviewer=stored.reviewer, source=stored.source, created_at=stored.created_at)


def _store(loop) -> FeedbackStore:
    if loop.store is None:
        raise HTTPException(404, "this server keeps no review queue: start it with --feedback-db")
    return loop.store


async def _call(fn: Callable[[], T]) -> T:
    """Run a store call off the event loop; its errors become HTTP replies."""
    try:
        return await asyncio.to_thread(fn)
    except UnknownItemError as error:
        raise HTTPException(404, str(error)) from None
    except LabelConflictError as error:
        raise HTTPException(409, str(error)) from None
    except DataError as error:
        raise HTTPException(422, str(error)) from None
    except StoreError as error:
        raise HTTPException(503, f"feedback store unavailable: {error}") from None


def _item(item: QueueItem) -> ReviewItem:
    return ReviewItem(request_id=item.request_id, position=item.position, adapter=item.adapter,
                      bundle_version=item.bundle_version, reason=item.reason, text=item.text, label=item.label,
                      confidence=item.confidence, calibrated=item.calibrated,
                      decision=item.decision, review_reason=item.review_reason, labels=item.labels,
                      raw_probs=item.probs, calibrated_probs=item.calibrated_probs, claim_until=item.claim_until)
