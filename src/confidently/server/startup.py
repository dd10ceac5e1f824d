"""What ``confidently serve`` checks before loading the model, which takes seconds to minutes.

Everything that does not need the model's weights is checked first, so a wrong path, option or
artifact is reported at once, as one line, not after the load (and not inside a uvicorn traceback).
"""

from __future__ import annotations

import os
from pathlib import Path

from confidently.errors import ConfigError
from confidently.server.settings import Settings


def adapters_base_model(adapters_dir: Path) -> str | None:
    """The base model the LoRA adapters in ``adapters_dir`` were fine-tuned on, as their manifests name it.

    ``serve --adapters DIR`` without ``--model`` loads this model, so that adapters fine-tuned on a model
    other than the default are served, not skipped for a weights mismatch. None when no folder holds a
    readable adapter manifest (a broken one is the registry's to log and skip); adapters fine-tuned on
    different base models cannot share one server, and that is a :class:`ConfigError` naming them.
    """
    from confidently.bundle.bundle import MANIFEST_FILE
    from confidently.files import read_json

    bases: dict[str, str] = {}
    for folder in sorted(adapters_dir.iterdir()):
        if not (folder / "adapter_config.json").exists() or not (folder / MANIFEST_FILE).exists():
            continue
        try:
            name = read_json(folder / MANIFEST_FILE)["model"]["name"]
        except Exception:  # noqa: BLE001 - a damaged manifest is reported when the adapter loads
            continue
        if isinstance(name, str):
            bases[folder.name] = name
    names = sorted(set(bases.values()))
    if len(names) > 1:
        listed = ", ".join(f"{adapter}: {base}" for adapter, base in bases.items())
        raise ConfigError(f"--adapters {adapters_dir}: the adapters were fine-tuned on different base models "
                          f"({listed}); one server holds one base model: choose it with --model")
    return names[0] if names else None


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
