"""What a request can name: the base model or one adapter, with its task, calibrator and policy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from confidently.calibration import Calibrator, load_calibrator
from confidently.classifier import Classifier
from confidently.errors import ArtifactError
from confidently.files import sha256_file
from confidently.monitoring.reference import REFERENCE_FILE, Reference
from confidently.recalibration import latest_version, version_label
from confidently.server.schemas import ModelInfo, TextResult, TokenOut
from confidently.tasks import Task, get_task
from confidently.thresholds import DecisionPolicy

if TYPE_CHECKING:  # the server needs a backend that holds adapters; torch loads only when it is built
    from confidently.backends.transformers_backend import TransformersBackend


class AdapterConflictError(ArtifactError):
    """An adapter was trained on other base weights than the ones being served."""


@dataclass(frozen=True)
class Served:
    """The base model (``name`` None) or a LoRA adapter, ready to classify.

    Attributes
    ----------
    name : adapter name, or None for the base model.
    classifier : scores texts with this entry's task on the shared backend.
    base_model : the base model's name (as the adapter's manifest or the server's settings give it).
    calibrator, policy : turn raw probabilities into calibrated ones and confidences into decisions.
    path : the adapter folder relative to the adapters folder.
    manifest_sha256 : hash of the adapter's ``manifest.json``.
    reference : the calibration rows' distribution that drift is measured against, if shipped.
    version : which version of the calibrator and policy is applied (1: the folder's own; higher:
        written by ``confidently recalibrate`` into ``versions/vN``).
    """

    name: str | None
    classifier: Classifier
    base_model: str
    calibrator: Calibrator | None = None
    policy: DecisionPolicy | None = None
    path: str | None = None
    manifest_sha256: str | None = None
    reference: Reference | None = None
    version: int = 1

    @classmethod
    def base(cls, backend: TransformersBackend, *, task: str, batch_size: int, calibrator: Path | None = None,
             policy: Path | None = None) -> Served:
        """The bare base model, with optional calibrator and policy files."""
        classifier = Classifier(backend=backend, task=get_task(task), batch_size=batch_size)
        return cls(None, classifier, backend.model_name,
                   calibrator=_calibrator(calibrator, classifier.labels) if calibrator else None,
                   policy=DecisionPolicy.load(policy) if policy else None)

    @classmethod
    def adapter(cls, backend: TransformersBackend, name: str, folder: Path, *, relative: str,
                batch_size: int) -> Served:
        """Read and check an adapter folder (manifest, calibrator, policy), without loading its weights.

        Raises
        ------
        AdapterConflictError
            If the manifest names other base weights than the backend's.
        ArtifactError, TaskError
            If the manifest, calibrator or policy is missing or malformed.
        """
        # The fine-tuning stage's reader: checks format, version and every file's recorded sha256.
        # (Imported here: the finetune package pulls in its training code.)
        from confidently.finetune.artifacts import CALIBRATOR_FILE, MANIFEST_FILE, POLICY_FILE, read_manifest

        manifest_path = folder / MANIFEST_FILE
        manifest = read_manifest(folder)
        base_id = manifest.get("base_weights_id")
        if base_id != backend.weights_id:
            raise AdapterConflictError(
                f"adapter {name!r} was trained on base weights {str(base_id)[:16]}…, but this server runs "
                f"{backend.model_name} ({backend.weights_id[:16]}…)")
        if not isinstance(manifest.get("task"), dict):
            raise ArtifactError(f"{manifest_path}: has no task (expected Task.to_dict())")
        task = Task.from_dict(manifest["task"])
        calibrator_path, policy_path = folder / CALIBRATOR_FILE, folder / POLICY_FILE
        served = cls(
            name,
            Classifier(backend=backend, task=task, batch_size=batch_size),
            str(manifest.get("base_model", backend.model_name)),
            calibrator=_calibrator(calibrator_path, task.label_names) if calibrator_path.exists() else None,
            policy=DecisionPolicy.load(policy_path) if policy_path.exists() else None,
            path=relative,
            manifest_sha256=sha256_file(manifest_path),
            reference=Reference.load(folder / REFERENCE_FILE) if (folder / REFERENCE_FILE).exists() else None,
        )
        return served.with_latest_version(folder)

    def with_latest_version(self, folder: Path) -> Served:
        """This entry with the newest recalibrated version in ``folder/versions`` applied (itself if none is newer)."""
        latest = latest_version(folder)
        if latest is None or latest.number == self.version:
            return self
        labels = self.classifier.labels
        if latest.calibrator is not None and latest.calibrator.n_classes_ != len(labels):
            raise ArtifactError(f"{latest.folder}: calibrator fitted on {latest.calibrator.n_classes_} classes, the "
                                f"task has {len(labels)}")
        return replace(self, calibrator=latest.calibrator, policy=latest.policy,
                       reference=latest.reference or self.reference, version=latest.number)

    @property
    def bundle_version(self) -> str | None:
        """What decided this entry's texts: the adapter's manifest hash (12 hex digits) and the version number."""
        return version_label(self.manifest_sha256, self.version)

    @property
    def decided_on(self) -> str | None:
        if self.policy is None:
            return None
        return "raw" if self.calibrator is None else "calibrated"

    def info(self) -> ModelInfo:
        backend = self.classifier.backend
        return ModelInfo(
            name=self.name, path=self.path, base_model=self.base_model, base_weights_id=backend.weights_id,
            task=self.classifier.task.name, labels=list(self.classifier.labels),
            calibrator=None if self.calibrator is None else self.calibrator.name,
            threshold=None if self.policy is None else self.policy.threshold,
            target_accuracy=None if self.policy is None else self.policy.target_accuracy,
            decided_on=self.decided_on, manifest_sha256=self.manifest_sha256,
            weights_sha256=backend.adapters.get(self.name) if self.name else None,
        )

    # -- on the model's worker thread only ----------------------------------------------------------
    def classify(self, texts: list[str]) -> list[TextResult]:
        """Score ``texts`` with this entry's adapter active; calibrate; decide."""
        self.classifier.backend.set_adapter(self.name)
        scores = self.classifier.score(texts)
        raw = scores.probs
        calibrated = None if self.calibrator is None else self.calibrator.predict_proba(raw)
        final = raw if calibrated is None else calibrated
        chosen = final.argmax(axis=1)
        confidence = final[np.arange(len(texts)), chosen]
        decisions = [None] * len(texts) if self.policy is None else self.policy.decide(confidence).tolist()
        labels = self.classifier.labels
        return [
            TextResult(
                label=labels[chosen[i]],
                raw_label=labels[scores.prediction[i]],
                confidence=float(scores.confidence[i]),
                calibrated_confidence=None if calibrated is None else float(confidence[i]),
                probs=dict(zip(labels, raw[i].tolist())),
                calibrated_probs=None if calibrated is None else dict(zip(labels, calibrated[i].tolist())),
                other_mass=float(scores.other_mass[i]),
                truncated=bool(scores.truncated[i]),
                decision=decisions[i],
            )
            for i in range(len(texts))
        ]

    def top_tokens(self, text: str, k: int) -> list[TokenOut]:
        """The ``k`` most likely next tokens after this text's prompt (the adapter must be active)."""
        tokens = self.classifier.backend.top_tokens(self.classifier.prompt(text), k)
        return [TokenOut(**t.to_dict()) for t in tokens]


def _calibrator(path: Path, labels: tuple[str, ...]) -> Calibrator:
    calibrator = load_calibrator(path)
    if calibrator.n_classes_ != len(labels):
        raise ArtifactError(f"{path}: calibrator was fitted on {calibrator.n_classes_} classes, "
                            f"the task has {len(labels)} ({', '.join(labels)})")
    return calibrator
