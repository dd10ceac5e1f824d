"""What ``confidently serve`` checks before loading the model, which takes seconds to minutes.

Everything that does not need the model's weights is checked first, so a wrong path, option or
artifact is reported at once, as one line, not after the load (and not inside a uvicorn traceback).
"""

from __future__ import annotations

import os

from confidently.errors import ConfigError
from confidently.server.settings import Settings


def check_before_loading(settings: Settings) -> None:
    """Raise the :class:`~confidently.errors.ConfidentlyError` the server would hit later, if any.

    Checks the model name or path, device and dtype, the task, the base model's calibration bundle
    (its hashes, and that it was fitted for these weights and this task), and that the adapters folder
    can be listed. Adapters
    themselves are checked when they load: a broken one is skipped, not fatal. With a serving engine
    (``backend`` openai) the weights are the engine's: the bundle's canary checks them once the engine
    answers (:meth:`~confidently.server.registry.AdapterRegistry.check_base`).
    """
    from confidently.bundle.bundle import read_bundle
    from confidently.tasks.task import get_task

    engine = settings.backend == "openai"
    if engine and not settings.base_url:
        raise ConfigError("--backend openai serves through an OpenAI-compatible engine: give its URL with "
                          "--base-url http://HOST:PORT/v1")
    if not engine and (settings.base_url or settings.engine_models or settings.tokenizer):
        raise ConfigError("--base-url, --tokenizer and --engine-model apply to --backend openai")
    weights_id = None
    if engine:
        from confidently.backends.openai_backend import api_key_from_env

        api_key_from_env(settings.api_key_env)
    else:
        from confidently.backends.transformers_backend import choose_device, choose_dtype
        from confidently.models.registry import resolve_model

        weights_id = resolve_model(settings.model).weights_id
        choose_device(settings.device)
        choose_dtype(settings.dtype)
    task = get_task(settings.task or "sentiment")
    if settings.calibration is not None:
        # every hash, then the weights and task the bundle was fitted for against the ones to serve
        bundle = read_bundle(settings.calibration)
        if weights_id is not None:
            bundle.check_model(weights_id, None, name=settings.model)
        if settings.task is not None:
            bundle.check_task(task, None)
    if settings.adapters_dir is not None:
        try:
            with os.scandir(settings.adapters_dir):
                pass
        except OSError as error:
            raise ConfigError(f"--adapters {settings.adapters_dir}: cannot list it ({error.strerror})") from None
