"""The serving stage: a calibrated classification API over one base model and many LoRA adapters.

``app.create_app(settings)`` builds the FastAPI application; ``confidently serve`` runs it with
uvicorn. One worker thread owns the model (:mod:`.batching`); requests for the same adapter that
arrive together are scored in one batch, and the worker switches adapters between batches.
"""
