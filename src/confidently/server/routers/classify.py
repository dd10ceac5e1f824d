"""``POST /v1/classify``: calibrated classification of a batch of texts."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from confidently.server.deps import LoopDep, ServiceDep, SettingsDep
from confidently.server.handlers import ERRORS
from confidently.server.schemas import ClassifyRequest, ClassifyResponse, ErrorResponse

router = APIRouter(prefix="/v1", tags=["classify"])


@router.post("/classify", response_model=ClassifyResponse,
             responses={**ERRORS, 404: {"model": ErrorResponse, "description": "Unknown adapter."}})
async def classify(body: ClassifyRequest, settings: SettingsDep, service: ServiceDep,
                   loop: LoopDep) -> ClassifyResponse:
    """Classify texts with the base model or a loaded adapter.

    Per text: label, raw and calibrated class probabilities and confidence, other mass, the decision
    (``automate``/``review``) of the adapter's policy, and optionally the top next tokens. Requests
    arriving together for the same adapter are scored in one batch.
    """
    if len(body.texts) > settings.max_texts:
        raise HTTPException(422, f"texts: {len(body.texts)} texts sent, at most {settings.max_texts} per request")
    for i, text in enumerate(body.texts):
        if len(text) > settings.max_text_chars:
            raise HTTPException(422, f"texts[{i}]: {len(text)} characters, at most {settings.max_text_chars}")
    served, response = await service.score(body)
    await loop.after_classify(body, response, served)  # request id; drift; review queue, durably
    return response
