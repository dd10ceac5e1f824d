"""``POST /v1/classify``: calibrated classification of a batch of texts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request

from confidently.server.deps import LoopDep, ServiceDep, SettingsDep
from confidently.server.disconnect import unless_disconnected
from confidently.server.handlers import ERRORS
from confidently.server.schemas import ClassifyRequest, ClassifyResponse, ErrorResponse
from confidently.server.work import passes, request_cost

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post("/classify", response_model=ClassifyResponse,
             responses={**ERRORS, 404: {"model": ErrorResponse, "description": "Unknown adapter."},
                        409: {"model": ErrorResponse, "description": "The adapter was reloaded meanwhile."}})
async def classify(body: ClassifyRequest, request: Request, settings: SettingsDep, service: ServiceDep,
                   loop: LoopDep) -> ClassifyResponse:
    """Classify texts with the base model or a loaded adapter.

    Per text: label, raw and calibrated class probabilities and confidence, other mass, the decision
    (``automate``/``review``) of the adapter's policy, and optionally the top next tokens. Requests
    arriving together for the same adapter are scored in one batch; a large request is scored in
    parts, taking turns with the others, so it cannot hold up small ones. A request costs its texts'
    characters times forward passes (two per text with ``top_tokens``, else one); the server refuses
    requests over its budget (``max_request_cost`` in GET /healthz). A text longer than the server's cap
    (``max_text_chars``, or its token limit) is cut, scored, flagged ``truncated`` and decided ``review``,
    as ``confidently score`` does. If the client disconnects, the parts not yet scored are dropped.
    """
    if len(body.texts) > settings.max_texts:
        raise HTTPException(422, f"texts: {len(body.texts)} texts sent, at most {settings.max_texts} per request")
    cost = request_cost(body.texts, body.top_tokens, settings.text_char_cap)
    if cost > settings.max_request_cost:
        raise HTTPException(422, f"texts: the request costs {cost} (characters scored, at most "
                                 f"{settings.text_char_cap} per text, × {passes(body.top_tokens)} forward passes), "
                                 f"more than this server's budget of {settings.max_request_cost} per request: send "
                                 "fewer or shorter texts" + (", or top_tokens 0" if body.top_tokens else ""))
    served, response = await unless_disconnected(request, service.score(body))
    await loop.after_classify(body, response, served)  # request id; drift; review queue, durably
    return response
