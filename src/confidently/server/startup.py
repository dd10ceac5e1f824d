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
    themselves are checked when they load: a broken one is skipped, not fatal.
    """
    from confidently.backends.transformers_backend import choose_device, choose_dtype
    from confidently.bundle.bundle import read_bundle
    from confidently.models.registry import resolve_model
    from confidently.tasks.task import get_task

    source = resolve_model(settings.model)
    choose_device(settings.device)
    choose_dtype(settings.dtype)
    task = get_task(settings.task or "sentiment")
    if settings.calibration is not None:
        # every hash, then the weights and task the bundle was fitted for against the ones to serve
        bundle = read_bundle(settings.calibration)
        bundle.check_model(source.weights_id, None, name=settings.model)
        if settings.task is not None:
            bundle.check_task(task, None)
    if settings.adapters_dir is not None:
        try:
            with os.scandir(settings.adapters_dir):
                pass
        except OSError as error:
            raise ConfigError(f"--adapters {settings.adapters_dir}: cannot list it ({error.strerror})") from None
