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

    Checks the model name or path, device and dtype, the task, the base model's calibrator (also
    against the task's labels) and policy, and that the adapters folder can be listed. Adapters
    themselves are checked when they load: a broken one is skipped, not fatal.
    """
    from confidently.backends.transformers_backend import choose_device, choose_dtype
    from confidently.models import resolve_model
    from confidently.server.served import _calibrator
    from confidently.tasks import get_task
    from confidently.thresholds import DecisionPolicy

    resolve_model(settings.model)
    choose_dtype(settings.dtype, choose_device(settings.device))
    task = get_task(settings.task)
    if settings.calibrator is not None:
        _calibrator(settings.calibrator, task.label_names)
    if settings.policy is not None:
        DecisionPolicy.load(settings.policy)
    if settings.adapters_dir is not None:
        try:
            with os.scandir(settings.adapters_dir):
                pass
        except OSError as error:
            raise ConfigError(f"--adapters {settings.adapters_dir}: cannot list it ({error.strerror})") from None
