"""What a request can name: the base model or one adapter, each a classifier with its calibration bundle."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from confidently.bundle.bundle import Bundle, BundleMismatchError, read_bundle
from confidently.bundle.versions import latest_version, version_label, version_numbers
from confidently.monitoring.canary import Canary
from confidently.scoring.classifier import Classifier
from confidently.decision.calibrated import CalibratedClassifier
from confidently.monitoring.reference import Reference
from confidently.server.schemas import ModelInfo, TextResult, TokenOut
from confidently.tasks.task import get_task

if TYPE_CHECKING:  # the server needs a backend that holds adapters; torch loads only when it is built
    from confidently.backends.transformers_backend import TransformersBackend

#: Kept under its old name: the server answers 409 when an adapter or bundle is for other weights.
AdapterConflictError = BundleMismatchError


@dataclass(frozen=True)
class Served:
    """The base model (``name`` None) or a LoRA adapter, ready to classify.

    Attributes
    ----------
    name : adapter name, or None for the base model.
    calibrated : the classifier (this entry's task on the shared backend) with its calibrator and policy.
    base_model : the base model's name (as the adapter's manifest or the server's settings give it).
    path : the adapter folder relative to the adapters folder.
    bundle : the calibration bundle the calibrator and policy came from, if any: the folder's own
        (version 1) or the newest recalibrated version (``versions/vN``, :mod:`confidently.bundle.versions`).
    home : the folder of the bundle's version 1, where newer versions appear.
    version : which version ``bundle`` is.
    """

    name: str | None
    calibrated: CalibratedClassifier
    base_model: str
    path: str | None = None
    bundle: Bundle | None = None
    home: Path | None = None
    version: int = 1

    @property
    def classifier(self) -> Classifier:
        return self.calibrated.classifier

    @classmethod
    def base(cls, backend: TransformersBackend, *, task: str | None, batch_size: int,
             calibration: Path | None = None) -> Served:
        """The bare base model, with an optional calibration bundle (an evaluate run folder).

        ``task`` None means the bundle's task (or sentiment without a bundle); a task given with a
        bundle must be the bundle's.

        Raises
        ------
        ArtifactError
            The bundle is missing, tampered with, or fitted for other weights or another task.
        """
        bundle = None if calibration is None else read_bundle(calibration)
        chosen = get_task(task) if task is not None else (get_task("sentiment") if bundle is None else bundle.task)
        classifier = Classifier(backend=backend, task=chosen, batch_size=batch_size,
                                chat=None if bundle is None else bundle.chat)
        served = cls(None, CalibratedClassifier(classifier, bundle=bundle), backend.model_name, bundle=bundle,
                     home=None if bundle is None else bundle.folder)
        return served.with_latest_version()

    @classmethod
    def adapter(cls, backend: TransformersBackend, name: str, folder: Path, *, relative: str,
                batch_size: int) -> Served:
        """Read and check an adapter folder (a bundle: every file hashed), without loading its weights.

        Raises
        ------
        AdapterConflictError
            If the bundle names other base weights than the backend's.
        ArtifactError
            If the manifest, a file or its hash, the calibrator or the policy is missing or wrong.
        """
        bundle = read_bundle(folder)
        bundle.check_model(backend.weights_id, bundle.model.adapter_sha256, name=backend.model_name)
        classifier = Classifier(backend=backend, task=bundle.task, batch_size=batch_size, chat=bundle.chat)
        # The adapter is not active yet, so the bundle is applied unchecked here; the registry checks
        # the loaded weights' hash against it once they are loaded (:meth:`check_loaded`).
        calibrated = CalibratedClassifier.from_bundle(classifier, bundle, checked=False)
        served = cls(name, calibrated, bundle.model.name, path=relative, bundle=bundle, home=bundle.folder)
        return served.with_latest_version()

    def with_latest_version(self) -> Served:
        """This entry deciding with the newest version of its bundle (itself when that is the one applied).

        Raises
        ------
        ArtifactError
            The newest version is broken or was fitted for another model or task (the one applied stays).
        """
        if self.home is None or self.bundle is None:
            return self
        numbers = version_numbers(self.home)  # a listing: polled every few seconds, nothing is read unless newer
        if (numbers[-1] if numbers else 1) <= self.version:
            newest = self
        else:
            latest = latest_version(self.home, self.bundle)  # checked against the applied one's model and task
            calibrated = CalibratedClassifier.from_bundle(self.classifier, latest.bundle, checked=False)
            newest = replace(self, calibrated=calibrated, bundle=latest.bundle, version=latest.number)
        newest.reference  # noqa: B018 -- parsed now, so a malformed one refuses the bundle at load, not later
        return newest

    @property
    def bundle_version(self) -> str | None:
        """The version that decides this entry's texts: its manifest's hash (12 hex digits) and number."""
        return None if self.bundle is None else version_label(self.bundle, self.version)

    @cached_property
    def canary(self) -> Canary | None:
        """The golden prompts the bundle carries, if any."""
        return None if self.bundle is None else Canary.from_bundle(self.bundle)

    @cached_property
    def reference(self) -> Reference | None:
        """The distribution drift is measured against (the applied version's), if the bundle carries one."""
        return None if self.bundle is None else Reference.from_bundle(self.bundle)

    def check_loaded(self) -> None:
        """Refuse an adapter whose loaded weights are not the ones its bundle was calibrated with."""
        if self.name is not None and self.bundle is not None:
            backend = self.classifier.backend
            self.bundle.check_model(backend.weights_id, backend.adapters.get(self.name), name=backend.model_name)
            self.bundle.check_precision(getattr(backend, "precision", None))

    @property
    def decided_on(self) -> str | None:
        if self.calibrated.policy is None:
            return None
        return "calibrated" if self.calibrated.calibrated else "raw"

    def info(self) -> ModelInfo:
        backend = self.classifier.backend
        calibrator, policy = self.calibrated.calibrator, self.calibrated.policy
        return ModelInfo(
            name=self.name, path=self.path, base_model=self.base_model, base_weights_id=backend.weights_id,
            task=self.classifier.task.name, labels=list(self.classifier.labels),
            calibrator=None if calibrator is None else calibrator.name,
            threshold=self.calibrated.rule.threshold,
            target_accuracy=None if policy is None else policy.target_accuracy,
            guarantee=self.calibrated.rule.guarantee,
            decided_on=self.decided_on, manifest_sha256=None if self.bundle is None else self.bundle.manifest_sha256,
            bundle_version=self.bundle_version,
            weights_sha256=backend.adapters.get(self.name) if self.name else None,
        )

    # -- on the model's worker thread only ----------------------------------------------------------
    def classify(self, texts: list[str]) -> list[TextResult]:
        """Score ``texts`` with this entry's adapter active; calibrate; decide."""
        self.classifier.backend.set_adapter(self.name)
        return [TextResult.from_prediction(p) for p in self.calibrated.classify_many(texts)]

    def top_tokens(self, text: str, k: int) -> list[TokenOut]:
        """The ``k`` most likely next tokens after this text's prompt, with this entry's adapter active."""
        self.classifier.backend.set_adapter(self.name)
        tokens = self.classifier.backend.top_tokens(self.classifier.prompt(text), k)
        return [TokenOut(**t.to_dict()) for t in tokens]


def classify_together(batch: list[tuple[Served, list[str]]]) -> list[list[TextResult]]:
    """Each entry's texts scored, calibrated and decided as :meth:`Served.classify` does, in one forward
    pass however many adapters they are for (:mod:`confidently.scoring.adapter_batches`); on the worker thread only.

    An entry whose calibrator reads hidden states (a probe), whose task asks several prompts (a prompt
    ensemble), or whose scores come from generated answers (a black-box scorer), is scored on its own.
    """
    mixed = [(served, texts) for served, texts in batch if _shares_forward(served)]
    if len(mixed) <= 1:
        return [served.classify(texts) for served, texts in batch]
    from confidently.scoring.adapter_batches import AdapterGroup, score_groups

    scored = iter(score_groups([AdapterGroup(served.classifier, served.name, texts) for served, texts in mixed]))
    out = []
    for served, texts in batch:
        if not _shares_forward(served):
            out.append(served.classify(texts))
        else:
            scores = next(scored)
            predictions = served.calibrated.decide(scores.probs).predictions(texts, scores)
            out.append([TextResult.from_prediction(p) for p in predictions])
    return out


def _shares_forward(served: Served) -> bool:
    """Whether the entry's scores are next-token class masses alone, so its texts can join a mixed pass."""
    return not (served.calibrated.reads_hidden or served.classifier.scorer.black_box or served.classifier.task.ensemble)
