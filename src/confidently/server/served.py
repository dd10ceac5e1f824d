"""What a request can name: the base model or one adapter, each a classifier with its calibration bundle.

The backend is any :class:`~confidently.backends.base.Backend` that holds adapters: the local model,
or a serving engine behind the openai backend. A bundle records the weights it was fitted on, and
how an entry's weights are matched to it depends on where they are (``weights_checked_by``):

* ``sha256``: the weights are here: the base weights' fingerprint and the adapter's sha256 must be
  the bundle's, or it is refused (:class:`~confidently.errors.BundleMismatchError`).
* ``engine``: an engine's weights cannot be hashed from here; the bundle was fitted through this
  very engine and model name (``evaluate --backend openai``), which is as close as the bundle can say.
* ``canary``: the bundle was fitted elsewhere (on the local model, or another engine): only its
  canary, re-scored through the engine when the entry loads, can show the engine serves the weights
  it was fitted on, so a bundle without one, or served with ``--canary off``, is refused
  (:meth:`confidently.server.registry.AdapterRegistry.check_base`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confidently.bundle.bundle import Bundle, BundleMismatchError, read_bundle
from confidently.bundle.versions import latest_version, version_label, version_numbers
from confidently.monitoring.canary import Canary
from confidently.scoring.classifier import Classifier
from confidently.decision.calibrated import CalibratedClassifier
from confidently.errors import ArtifactError, BackendError
from confidently.monitoring.reference import Reference
from confidently.server.schemas import ModelInfo, TextResult, TokenOut
from confidently.tasks.task import get_task

if TYPE_CHECKING:  # the server needs a backend that holds adapters; torch loads only when it is built
    from confidently.backends.base import Backend

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
    weights_checked_by : how the weights scoring this entry are matched to the bundle's: ``sha256``,
        ``engine`` or ``canary`` (see the module docstring); None without a bundle.
    """

    name: str | None
    calibrated: CalibratedClassifier
    base_model: str
    path: str | None = None
    bundle: Bundle | None = None
    home: Path | None = None
    version: int = 1
    weights_checked_by: str | None = None

    @property
    def classifier(self) -> Classifier:
        return self.calibrated.classifier

    def describe(self) -> str:
        """``the base model`` or ``adapter 'NAME'``, for messages."""
        return "the base model" if self.name is None else f"adapter {self.name!r}"

    @classmethod
    def base(cls, backend: Backend, *, task: str | None, scoring: Mapping[str, Any],
             calibration: Path | None = None) -> Served:
        """The bare base model, with an optional calibration bundle (an evaluate run folder).

        ``task`` None means the bundle's task (or sentiment without a bundle); a task given with a
        bundle must be the bundle's. The bundle's scorer scores the texts. ``scoring``: batch size and
        text caps (:attr:`Settings.scoring`).

        Raises
        ------
        ArtifactError
            The bundle is missing, tampered with, or fitted for other weights (where they can be
            hashed), another task or another scorer.
        """
        bundle = None if calibration is None else read_bundle(calibration)
        chosen = get_task(task) if task is not None else (get_task("sentiment") if bundle is None else bundle.task)
        classifier = Classifier(backend=backend, task=chosen, **scoring,
                                chat=None if bundle is None else bundle.chat,
                                scorer=None if bundle is None else bundle.scorer)
        if bundle is None or backend.hashes_weights:
            calibrated = CalibratedClassifier(classifier, bundle=bundle)
        else:  # an engine's weights are the canary's to vouch for (AdapterRegistry.check_base)
            bundle.check(classifier, weights=False)
            calibrated = CalibratedClassifier.from_bundle(classifier, bundle, checked=False)
        served = cls(None, calibrated, backend.model_name, bundle=bundle,
                     home=None if bundle is None else bundle.folder,
                     weights_checked_by=_weights_check(backend, bundle, None))
        return served.with_latest_version()

    @classmethod
    def adapter(cls, backend: Backend, name: str, folder: Path, *, relative: str,
                scoring: Mapping[str, Any]) -> Served:
        """Read and check an adapter folder (a bundle: every file hashed), without loading its weights.

        On an engine the LoRA weights are the engine's: the folder may hold the bundle's JSON files alone.

        Raises
        ------
        AdapterConflictError
            If the bundle names other base weights than the backend's (where they can be hashed).
        ArtifactError
            If the manifest, a file or its hash, the calibrator or the policy is missing or wrong.
        """
        bundle = read_bundle(folder, require_adapter_files=backend.hashes_weights)
        if backend.hashes_weights:
            bundle.check_model(backend.weights_id, bundle.model.adapter_sha256, name=backend.model_name)
        classifier = Classifier(backend=backend, task=bundle.task, **scoring, chat=bundle.chat,
                                scorer=bundle.scorer)
        # The adapter is not active yet, so the bundle is applied unchecked here; the registry checks
        # the loaded weights' hash against it once they are loaded (:meth:`check_loaded`).
        calibrated = CalibratedClassifier.from_bundle(classifier, bundle, checked=False)
        served = cls(name, calibrated, bundle.model.name, path=relative, bundle=bundle, home=bundle.folder,
                     weights_checked_by=_weights_check(backend, bundle, name))
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
        _check_decidable(newest)
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
        """Refuse an adapter whose loaded weights are not the ones its bundle was calibrated with (where
        they can be hashed; an engine's are checked by the canary)."""
        if self.name is not None and self.weights_checked_by == "sha256":
            backend = self.classifier.backend
            self.bundle.check_model(backend.weights_id, backend.adapters.get(self.name), name=backend.model_name)
            self.bundle.check_precision(backend.precision)

    @cached_property
    def feature_space(self) -> str | None:
        """Where the features this entry's calibrator reads come from
        (:func:`~confidently.feedback.features.feature_space`); None when it reads class probabilities only."""
        from confidently.feedback.features import feature_space

        return None if self.bundle is None else feature_space(self.bundle)

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
            weights_sha256=backend.adapters.get(self.name) if self.name and backend.hashes_weights else None,
            engine_model=backend.served_as(self.name), weights_checked_by=self.weights_checked_by,
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


class EngineFailedError(BackendError):
    """The serving engine failed an entry's texts (an HTTP error, a refused model name, a malformed reply)."""


class EngineTimeoutError(EngineFailedError):
    """The serving engine did not answer an entry's texts in time."""


def engine_error(served: Served, error: BackendError) -> EngineFailedError:
    """``error`` from the engine, naming the entry and the model name it was asked for."""
    from confidently.backends.http_transport import ServerTimeout

    kind = EngineTimeoutError if isinstance(error, ServerTimeout) else EngineFailedError
    engine_model = served.classifier.backend.served_as(served.name)
    return kind(f"{served.describe()} (engine model {engine_model!r}): {error}")


def classify_together(batch: list[tuple[Served, list[str]]]) -> list[list[TextResult] | EngineFailedError]:
    """Each entry's texts scored, calibrated and decided as :meth:`Served.classify` does, in one forward
    pass however many adapters they are for (:mod:`confidently.scoring.adapter_batches`); on the worker thread only.

    An entry whose calibrator reads hidden states (a probe), whose task asks several prompts (a prompt
    ensemble), whose scores come from generated answers (a black-box scorer), or whose backend scores one
    adapter at a time (a serving engine) is scored on its own; when the engine fails it, that entry gets
    the error and the others their results.
    """
    mixed = [(served, texts) for served, texts in batch if _shares_forward(served)]
    if len(mixed) <= 1:
        return [_classify_alone(served, texts) for served, texts in batch]
    from confidently.scoring.adapter_batches import AdapterGroup, score_groups

    scored = iter(score_groups([AdapterGroup(served.classifier, served.name, texts) for served, texts in mixed]))
    out: list[list[TextResult] | EngineFailedError] = []
    for served, texts in batch:
        if not _shares_forward(served):
            out.append(_classify_alone(served, texts))
        else:
            scores = next(scored)
            predictions = served.calibrated.decide_scores(scores).predictions(texts, scores)
            out.append([TextResult.from_prediction(p) for p in predictions])
    return out


def _classify_alone(served: Served, texts: list[str]) -> list[TextResult] | EngineFailedError:
    try:
        return served.classify(texts)
    except BackendError as error:
        return engine_error(served, error)


def _shares_forward(served: Served) -> bool:
    """Whether the entry's scores are next-token class masses alone, from a backend that scores several
    adapters in one pass, so its texts can join a mixed pass."""
    return (served.classifier.backend.mixed_adapter_batches
            and not (served.calibrated.reads_hidden or served.classifier.scorer.black_box
                     or served.classifier.task.ensemble))


def _check_decidable(served: Served) -> None:
    """Refuse a bundle that decides by prediction sets fitted per slice: a classify request carries no slice
    value, so every request would fail."""
    column = served.calibrated.decides_per_slice
    if column is not None:
        raise ArtifactError(f"{served.bundle.folder}: decides by prediction sets fitted per {column}, but a classify "
                            f"request carries no {column} value, so the server could decide none of its texts: serve "
                            "a bundle written with --decision-rule threshold, or with sets not fitted per slice")


def set_guarantee(served: Served) -> str | None:
    """What the prediction sets in this entry's replies promise; None when the replies carry none (no sets, or
    sets fitted per slice, which need a value no request gives)."""
    return served.calibrated.rule.set_guarantee if served.calibrated.sets_note is None else None


def _weights_check(backend: Backend, bundle: Bundle | None, adapter: str | None) -> str | None:
    """How the weights scoring an entry are matched to its bundle (see the module docstring)."""
    if bundle is None:
        return None
    if backend.hashes_weights:
        return "sha256"
    return "engine" if bundle.model.weights_id == backend.weights_id_of(adapter) else "canary"

