"""The saved adapter folder: a calibration bundle whose extra files are the PEFT weights, replaced as a whole.

A folder is written into a hidden staging folder beside its destination and renamed over it only
when every file is complete, so a full disk or a crash leaves the previous adapter as it was.

Layout (``adapter_model.safetensors`` and ``adapter_config.json`` are exactly what PEFT writes, so
vLLM, SageMaker and ``PeftModel.from_pretrained`` load the folder unchanged; the rest is
:mod:`confidently.bundle.bundle`'s, read back with :func:`confidently.bundle.bundle.read_bundle`)::

    adapters/NAME/
      adapter_model.safetensors   LoRA weights
      adapter_config.json         PEFT LoraConfig
      calibrator.json             fitted on the calibration split
      policy.json                 DecisionPolicy: certified threshold
      conformal.json              prediction sets (ConformalPredictor), fitted on the calibration split
      manifest.json               bundle manifest: base model, task, data hashes, training record, file hashes
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from confidently.bundle.bundle import (ADAPTER_CONFIG_FILE, WEIGHTS_FILE, Bundle, ModelIdentity, read_bundle,
                                       write_bundle)
from confidently.errors import ArtifactError
from confidently.files import atomic_write_json, current_umask


@contextlib.contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success it replaces ``target`` (a folder) as a whole.

    On any exception the staging folder is deleted and ``target`` is untouched. The swap is two
    renames (old folder aside, new folder in); between them, which takes microseconds, ``target``
    does not exist and the old folder is at ``.NAME.old-*`` beside it.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    try:
        yield staging
        _default_permissions(staging)
        if target.exists():
            old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _default_permissions(folder: Path) -> None:
    """Give the folder and its files the permissions a plain ``mkdir``/``open`` would (temporary files
    are created owner-only), so a server running as another user can read a saved adapter."""
    umask = current_umask()
    folder.chmod(0o777 & ~umask)
    for path in folder.iterdir():
        if path.is_file():
            path.chmod(0o666 & ~umask)


def peft_config_dict(peft_config, base_model_name_or_path: str) -> dict[str, Any]:
    """``adapter_config.json`` as PEFT writes it (sets become lists), marked for inference."""
    data = peft_config.to_dict()
    data = {key: sorted(value) if isinstance(value, set) else value for key, value in data.items()}
    data["base_model_name_or_path"] = base_model_name_or_path
    data["inference_mode"] = True
    return data


def write_adapter(out: str | Path, *, weights: dict, adapter_config: dict, model: ModelIdentity, task, chat,
                  calibrator, policy, fitted_on: dict, metadata: dict,
                  extra_json: dict[str, Any] | None = None,
                  extra_files: dict[str, Callable[[Path], None]] | None = None) -> Bundle:
    """Write the whole adapter folder to ``out``, replacing any previous one only when complete.

    The folder is a calibration bundle (:func:`confidently.bundle.bundle.write_bundle`) whose extra files
    are the LoRA weights and PEFT config; ``model`` is the base model (the manifest's adapter hash
    is the saved weights'), ``metadata`` the training record, ``extra_json`` and ``extra_files`` more
    payloads (the prediction sets, and :func:`confidently.feedback.payloads.production_payloads`).

    Raises
    ------
    ArtifactError
        When writing fails (e.g. out of disk space); any previous adapter at ``out`` is unchanged.
    """
    from safetensors.torch import save_file

    out = Path(out)
    try:
        with atomic_folder(out) as staging:
            write_bundle(staging, model=model, task=task, chat=chat, calibrator=calibrator, policy=policy,
                         fitted_on=fitted_on, metadata=metadata, extra_json=extra_json, extra_files={
                             **(extra_files or {}),
                             WEIGHTS_FILE: lambda path: save_file(weights, str(path), metadata={"format": "pt"}),
                             ADAPTER_CONFIG_FILE: lambda path: atomic_write_json(path, adapter_config)})
    except OSError as error:
        raise ArtifactError(f"could not write the adapter to {out}: {error.strerror or error}; "
                            "any previous adapter there is unchanged") from error
    return read_bundle(out)
