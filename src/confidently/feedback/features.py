"""What a feature-reading calibrator reads, kept where recalibration can get it.

A hidden-state probe reads each text's final hidden state and a prompt ensemble's combiner every
prompt's class masses (:attr:`confidently.types.Scores.hidden`, float32), not the class probabilities
the other calibrators read. To refit one after deployment, the same features are kept twice: for the
bundle's calibration rows in ``calibration_features.safetensors`` (hashed in the bundle's manifest), and
for every text the server classifies, as a :class:`FeatureVector` in the feedback store.

Features are only comparable between texts scored by the same weights, adapter and prompts, read by the
same kind of calibrator: :func:`feature_space` names that combination, and recalibration refuses a
feature vector recorded in another (:func:`reviewed_features`), rather than fit on a mix.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from confidently.errors import ArtifactError, DataError

if TYPE_CHECKING:
    from confidently.bundle.bundle import Bundle
    from confidently.feedback.store import LabelledText

#: The calibration rows' features in a bundle: one float32 tensor ``features`` of shape (n_rows, dim).
FEATURES_FILE = "calibration_features.safetensors"
FEATURES_TENSOR = "features"
#: How features are stored: little-endian float32, ``dim`` values per text.
DTYPE = np.dtype("<f4")


@dataclass(frozen=True)
class FeatureVector:
    """The features a calibrator read for one text, as the feedback store keeps them.

    Attributes
    ----------
    space : :func:`feature_space` of the bundle that decided the text.
    dim : how many values.
    blob : the values as little-endian float32 bytes (``4 * dim`` of them).
    """

    space: str
    dim: int
    blob: bytes

    def __post_init__(self) -> None:
        if self.dim < 1 or len(self.blob) != self.dim * DTYPE.itemsize:
            raise DataError(f"a feature vector of dimension {self.dim} needs {self.dim * DTYPE.itemsize} bytes; "
                            f"got {len(self.blob)}")

    @classmethod
    def of(cls, values: Any, space: str) -> FeatureVector:
        """``values`` (one text's features, any float array) stored as float32."""
        array = np.ascontiguousarray(np.asarray(values).reshape(-1), dtype=DTYPE)
        return cls(space, int(array.size), array.tobytes())

    def values(self) -> np.ndarray:
        """The features as a float32 array of shape (dim,)."""
        return np.frombuffer(self.blob, dtype=DTYPE)


def feature_space(bundle: Bundle) -> str | None:
    """Names where the features ``bundle``'s calibrator reads come from: the base weights, the adapter, the
    prompts (template, label words, chat choice, every prompt of an ensemble) and the calibrator kind
    (``probe``: hidden states, ``ensemble``: the prompts' class masses); None when it reads class
    probabilities. Every version of one bundle (and a bundle re-fitted for the same model and prompts) shares it.
    """
    from confidently.bundle.bundle import task_fingerprint
    from confidently.decision.decisions import reads_hidden

    calibrator = bundle.calibrator
    if not reads_hidden(calibrator):
        return None
    text = json.dumps({"weights_id": bundle.model.weights_id, "adapter_sha256": bundle.model.adapter_sha256,
                       "prompts": task_fingerprint(bundle.task, bundle.chat), "read_by": calibrator.name},
                      sort_keys=True)
    return f"{calibrator.name}:{hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]}"


def reviewed_features(texts: Sequence[LabelledText], space: str,
                      dim: int) -> tuple[list[LabelledText], np.ndarray, int]:
    """The reviewed ``texts`` that carry features of ``space``, those features (n, dim), and how many texts
    carry none (logged by a server that kept no features, or while another calibrator served).

    Raises
    ------
    DataError
        A text carries features of another space (another model, adapter, prompt set or calibrator kind)
        or dimension: they cannot be mixed with these.
    """
    foreign = [t for t in texts if t.features is not None and (t.features.space != space or t.features.dim != dim)]
    if foreign:
        first = foreign[0]
        raise DataError(
            f"{len(foreign)} reviewed labels of {first.adapter or 'the base model'} carry features of another model, "
            f"adapter or prompt set ({first.features.space}, {first.features.dim} values, bundle version "
            f"{first.bundle_version}) than this bundle's calibrator reads ({space}, {dim} values): they cannot be "
            "mixed; recalibrate the bundle that served them, or use a feedback store without them")
    kept = [t for t in texts if t.features is not None]
    values = np.stack([t.features.values() for t in kept]) if kept else np.zeros((0, dim), dtype=DTYPE)
    return kept, values, len(texts) - len(kept)


def write_features(path: Path, features: np.ndarray) -> None:
    """``features`` (n, dim) written to ``path`` as one float32 safetensors tensor, atomically."""
    from safetensors.numpy import save

    from confidently.files import atomic_write_bytes

    atomic_write_bytes(path, save({FEATURES_TENSOR: np.ascontiguousarray(features, dtype=DTYPE)}))


def read_features(path: Path, *, n_rows: int) -> np.ndarray:
    """The float32 features (n_rows, dim) :func:`write_features` wrote; :class:`ArtifactError` names what is wrong."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    try:
        tensors = load(path.read_bytes())
    except (OSError, SafetensorError, ValueError) as error:
        raise ArtifactError(f"{path}: not a readable safetensors file: {error}") from None
    features = tensors.get(FEATURES_TENSOR)
    if set(tensors) != {FEATURES_TENSOR} or features.dtype != np.float32:
        raise ArtifactError(f"{path}: expected one float32 tensor {FEATURES_TENSOR!r}; got "
                            f"{', '.join(f'{k} ({v.dtype})' for k, v in tensors.items()) or 'none'}")
    if features.ndim != 2 or features.shape[0] != n_rows or features.shape[1] < 1:
        raise ArtifactError(f"{path}: features of shape {features.shape}, expected ({n_rows}, dim) for the "
                            f"{n_rows} calibration rows")
    if not np.isfinite(features).all():
        raise ArtifactError(f"{path}: holds non-finite features")
    return features
