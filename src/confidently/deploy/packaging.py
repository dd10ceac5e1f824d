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

from confidently.bundle.bundle import ADAPTER_CONFIG_FILE, ADAPTER_FILES, MANIFEST_FILE, Bundle, read_bundle
from confidently.errors import ArtifactError, ConfigError

ADAPTER_WEIGHTS = ("adapter_config.json", "adapter_model.safetensors")
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
    """A fine-tuned adapter folder, checked: a calibration bundle (every file hashed) with PEFT files.

    Attributes
    ----------
    name : the folder's name (the adapter's name on the endpoint).
    folder : where it is.
    bundle : the adapter's calibration bundle (base model, task, calibrator, policy, file hashes).
    rank : the LoRA rank from ``adapter_config.json``.
    base_checkpoint : ``base_model_name_or_path`` from ``adapter_config.json``: the hub id of the
        original checkpoint, which the serving container loads.
    """

    name: str
    folder: Path
    bundle: Bundle
    rank: int
    base_checkpoint: str | None

    @property
    def base_model(self) -> str:
        return self.bundle.model.name

    def weights_tarball(self) -> bytes:
        """The PEFT files at the archive root: what an adapter inference component loads."""
        return tar_gz({name: self.folder / name for name in ADAPTER_WEIGHTS})

    def sidecars(self) -> dict[str, Path]:
        """The bundle's own files (manifest, policy, calibrator and any extras): what `sagemaker classify` reads."""
        names = [MANIFEST_FILE, *(name for name in self.bundle.files if name not in ADAPTER_FILES)]
        return {name: self.folder / name for name in names}


def read_adapter(folder: str | Path) -> AdapterFolder:
    """Check an adapter folder made by ``confidently finetune`` and read what deployment needs.

    Raises
    ------
    ArtifactError
        When it is not a bundle with PEFT files, a file differs from its recorded hash, or the
        LoRA rank is missing.
    """
    folder = Path(folder)
    bundle = read_bundle(folder)
    if not bundle.is_adapter or ADAPTER_CONFIG_FILE not in bundle.files:
        raise ArtifactError(f"{folder} is a calibration bundle without adapter weights: not an adapter folder made "
                            "by `confidently finetune`")
    try:
        config = json.loads((folder / ADAPTER_CONFIG_FILE).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ArtifactError(f"{folder / ADAPTER_CONFIG_FILE}: not valid JSON: {error}") from None
    rank = config.get("r") if isinstance(config, dict) else None
    if not isinstance(rank, int) or rank < 1:
        raise ArtifactError(f"{folder / ADAPTER_CONFIG_FILE}: no LoRA rank r")
    return AdapterFolder(folder.name, folder, bundle, rank, config.get("base_model_name_or_path") or None)


def check_adapters(adapters: list[AdapterFolder], max_rank: int) -> str:
    """The base model all ``adapters`` share; refuses mixed bases and ranks the server will not load."""
    if not adapters:
        raise ConfigError("give at least one adapter folder")
    bases = {(a.base_model, a.bundle.model.weights_id) for a in adapters}
    if len(bases) > 1:
        listing = ", ".join(f"{a.name}: {a.base_model}" for a in adapters)
        raise ArtifactError(f"adapters on one endpoint must share a base model; got {listing}")
    names = [a.name for a in adapters]
    if len(set(names)) != len(names):
        raise ConfigError(f"two adapter folders have the same name: {names}")
    for adapter in adapters:
        if adapter.rank > max_rank:
            raise ConfigError(f"adapter {adapter.name} has rank {adapter.rank}, above max_lora_rank {max_rank}: "
                              "raise --max-lora-rank (vLLM accepts 8, 16, 32, 64, 128, 256, 320, 512)")
    return adapters[0].base_model
