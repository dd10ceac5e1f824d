"""The saved adapter folder: PEFT files, manifest, calibrator and policy, replaced as a whole.

A folder is written into a hidden staging folder beside its destination and renamed over it only
when every file is complete, so a full disk or a crash leaves the previous adapter as it was.

Layout (``adapter_model.safetensors`` and ``adapter_config.json`` are exactly what PEFT writes, so
vLLM, SageMaker and ``PeftModel.from_pretrained`` load the folder unchanged)::

    adapters/NAME/
      adapter_model.safetensors   LoRA weights
      adapter_config.json         PEFT LoraConfig
      calibrator.json             fitted on the calibration split
      policy.json                 DecisionPolicy: certified threshold
      manifest.json               format, base weights, task, data hash, validation, file hashes
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from confidently.errors import ArtifactError
from confidently.files import atomic_write_json, current_umask, sha256_file

MANIFEST_FORMAT = "confidently.adapter"
MANIFEST_VERSION = 1
WEIGHTS_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
MANIFEST_FILE = "manifest.json"
CALIBRATOR_FILE = "calibrator.json"
POLICY_FILE = "policy.json"


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


def library_versions() -> dict[str, str]:
    """Versions of everything that shapes the saved weights and scores."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("confidently", "torch", "transformers", "peft", "safetensors", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def peft_config_dict(peft_config, base_model_name_or_path: str) -> dict[str, Any]:
    """``adapter_config.json`` as PEFT writes it (sets become lists), marked for inference."""
    data = peft_config.to_dict()
    data = {key: sorted(value) if isinstance(value, set) else value for key, value in data.items()}
    data["base_model_name_or_path"] = base_model_name_or_path
    data["inference_mode"] = True
    return data


def write_adapter(out: str | Path, *, weights: dict, adapter_config: dict, manifest: dict, calibrator,
                  policy) -> Path:
    """Write the whole adapter folder to ``out``, replacing any previous one only when complete.

    ``manifest`` gets ``format``, ``version``, ``files`` (sha256 of every other file) and ``created``.

    Raises
    ------
    ArtifactError
        When writing fails (e.g. out of disk space); any previous adapter at ``out`` is unchanged.
    """
    from safetensors.torch import save_file

    out = Path(out)
    try:
        with atomic_folder(out) as staging:
            save_file(weights, str(staging / WEIGHTS_FILE), metadata={"format": "pt"})
            atomic_write_json(staging / CONFIG_FILE, adapter_config)
            calibrator.save(staging / CALIBRATOR_FILE)
            policy.save(staging / POLICY_FILE)
            files = {name: sha256_file(staging / name)
                     for name in (WEIGHTS_FILE, CONFIG_FILE, CALIBRATOR_FILE, POLICY_FILE)}
            atomic_write_json(staging / MANIFEST_FILE, {
                "format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, **manifest, "files": files,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            })
    except OSError as error:
        raise ArtifactError(f"could not write the adapter to {out}: {error.strerror or error}; "
                            "any previous adapter there is unchanged") from error
    return out


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """The manifest of an adapter folder written by :func:`write_adapter`, with its file hashes checked.

    Raises
    ------
    ArtifactError
        When the manifest is missing or malformed, or a file does not match its recorded sha256.
    """
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{folder} has no {MANIFEST_FILE}: not an adapter made by `confidently finetune`") from None
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    if manifest.get("format") != MANIFEST_FORMAT or manifest.get("version") != MANIFEST_VERSION:
        raise ArtifactError(f"{path}: expected format {MANIFEST_FORMAT!r} version {MANIFEST_VERSION}")
    for name, digest in manifest.get("files", {}).items():
        if not (folder / name).exists() or sha256_file(folder / name) != digest:
            raise ArtifactError(f"{folder / name} is missing or changed since it was saved (sha256 mismatch)")
    return manifest
