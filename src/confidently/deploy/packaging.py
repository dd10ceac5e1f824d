"""What goes to S3: reproducible tarballs of this project's source and of adapter folders.

Tarballs are byte-for-byte reproducible (sorted entries, zero timestamps, root ownership), so a
dry run shows exactly what a real run uploads, and re-uploading an unchanged adapter changes nothing.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confidently.errors import ArtifactError, ConfigError

ADAPTER_WEIGHTS = ("adapter_config.json", "adapter_model.safetensors")
# Read by `sagemaker classify`; uploaded beside the adapter's tarball.
ADAPTER_SIDECARS = ("manifest.json", "calibrator.json", "policy.json")
ENTRY_SCRIPT = "confidently_entry.py"


def tar_gz(files: Mapping[str, bytes | Path]) -> bytes:
    """A gzip tarball of archive name → content (bytes or a file to read), reproducible."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as zipped:
        with tarfile.open(fileobj=zipped, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in sorted(files):
                content = files[name]
                data = content if isinstance(content, bytes) else Path(content).read_bytes()
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 0, 0o644
                tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def project_root() -> Path | None:
    """This project's source checkout (the folder holding pyproject.toml above src/confidently), if any."""
    import confidently

    package = Path(confidently.__file__).resolve().parent
    root = package.parent.parent
    if package.parent.name == "src" and (root / "pyproject.toml").is_file():
        return root
    return None


def source_files(root: Path) -> dict[str, Path]:
    """The files ``pip install`` needs to build this project from ``root``: metadata and src/confidently."""
    files = {name: root / name for name in ("pyproject.toml", "README.md", "LICENSE") if (root / name).is_file()}
    for path in sorted((root / "src" / "confidently").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            files[path.relative_to(root).as_posix()] = path
    return files


@dataclass(frozen=True)
class AdapterFolder:
    """A fine-tuned adapter folder, checked: PEFT files, confidently manifest, calibrator and policy.

    Attributes
    ----------
    name : the folder's name (the adapter's name on the endpoint).
    folder : where it is.
    manifest : ``manifest.json`` (``base_model``, ``base_weights_id``, ``task``...).
    rank : the LoRA rank from ``adapter_config.json``.
    base_checkpoint : ``base_model_name_or_path`` from ``adapter_config.json``: the hub id of the
        original checkpoint, which the serving container loads.
    """

    name: str
    folder: Path
    manifest: dict[str, Any]
    rank: int
    base_checkpoint: str | None

    def weights_tarball(self) -> bytes:
        """The PEFT files at the archive root: what an adapter inference component loads."""
        return tar_gz({name: self.folder / name for name in ADAPTER_WEIGHTS})

    def sidecars(self) -> dict[str, Path]:
        """The confidently files present beside the weights (manifest, and calibrator and policy if fitted)."""
        return {name: self.folder / name for name in ADAPTER_SIDECARS if (self.folder / name).is_file()}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None


def read_adapter(folder: str | Path) -> AdapterFolder:
    """Check an adapter folder made by ``confidently finetune`` and read what deployment needs.

    Raises
    ------
    ArtifactError
        When a required file is missing or malformed.
    """
    folder = Path(folder)
    missing = [name for name in (*ADAPTER_WEIGHTS, "manifest.json") if not (folder / name).is_file()]
    if missing:
        raise ArtifactError(f"{folder} is not an adapter folder made by `confidently finetune`: "
                            f"missing {', '.join(missing)}")
    manifest = _read_json(folder / "manifest.json")
    if not isinstance(manifest, dict) or not manifest.get("base_model") or not isinstance(manifest.get("task"), dict):
        raise ArtifactError(f"{folder / 'manifest.json'}: needs base_model and task (written by `confidently finetune`)")
    config = _read_json(folder / "adapter_config.json")
    rank = config.get("r") if isinstance(config, dict) else None
    if not isinstance(rank, int) or rank < 1:
        raise ArtifactError(f"{folder / 'adapter_config.json'}: no LoRA rank r")
    return AdapterFolder(folder.name, folder, manifest, rank, config.get("base_model_name_or_path") or None)


def check_adapters(adapters: list[AdapterFolder], max_rank: int) -> str:
    """The base model all ``adapters`` share; refuses mixed bases and ranks the server will not load."""
    if not adapters:
        raise ConfigError("give at least one adapter folder")
    bases = {(a.manifest["base_model"], a.manifest.get("base_weights_id")) for a in adapters}
    if len(bases) > 1:
        listing = ", ".join(f"{a.name}: {a.manifest['base_model']}" for a in adapters)
        raise ArtifactError(f"adapters on one endpoint must share a base model; got {listing}")
    names = [a.name for a in adapters]
    if len(set(names)) != len(names):
        raise ConfigError(f"two adapter folders have the same name: {names}")
    for adapter in adapters:
        if adapter.rank > max_rank:
            raise ConfigError(f"adapter {adapter.name} has rank {adapter.rank}, above max_lora_rank {max_rank}: "
                              "raise --max-lora-rank (vLLM accepts 8, 16, 32, 64, 128, 256, 320, 512)")
    return adapters[0].manifest["base_model"]
