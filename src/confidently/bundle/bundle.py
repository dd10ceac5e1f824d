"""The calibration bundle: a calibrator and a decision policy, with a manifest saying what they were fitted for.

``confidently evaluate`` writes one into its run folder and ``confidently finetune`` writes the same
shape into the adapter folder, where the adapter's weights are two more hashed files. Every path that
applies calibration (the Python API, ``classify``, ``score``, ``serve``, ``sagemaker classify``,
``compare``) reads it with :func:`read_bundle`, the only reader: it checks every file against its
recorded sha256, and :meth:`Bundle.check` refuses a bundle fitted for other model weights or another
task, because a calibrator fitted on one model's scores says nothing about another's.

Layout::

    manifest.json     format, version, created; model {name, backend, weights_id, dtype, adapter_sha256};
                      task (Task.to_dict()) and chat; scorer (ScorerSpec.to_dict(); absent in bundles
                      written before scorers existed, which were all logprob); fitted_on {rows_sha256, n_rows, ...};
                      library_versions; files {name: sha256} of every other file (required)
    calibrator.json   absent when no calibrator beat the raw scores (the policy then applies to raw ones)
    probe.json        instead of calibrator.json when the chosen calibrator is a hidden-state probe
                      (:mod:`confidently.calibration.probe`: coefficients as JSON) or a prompt ensemble's
                      combiner (:mod:`confidently.calibration.ensemble`, ``method: "ensemble"``; the
                      task then holds the ensemble's prompts)
    policy.json       the decision policy (always present)
    conformal.json    the prediction sets (ConformalPredictor.to_dict()), when fitted; an extra payload
    seen_texts.json   fingerprints of every text the bundle was fitted on or saw, by role (calibration, shots,
                      training, validation, feedback: :mod:`confidently.bundle.seen`); an extra payload, absent in
                      bundles written before it existed (what they saw is unknown)
    NAME.json         extra JSON payloads a later stage adds (e.g. canary.json), hashed like the rest
    calibration_features.safetensors    with a probe or combiner: its calibration rows' features (float32),
                      which ``recalibrate`` refits it on (:mod:`confidently.feedback.features`)
    adapter_model.safetensors, adapter_config.json    adapter bundles only (PEFT's own files)
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confidently.bundle.seen import SEEN_FILE, SeenTexts
from confidently.decision.conformal import ConformalPredictor
from confidently.decision.decisions import DECISION_RULES
from confidently.errors import ArtifactError, BundleMismatchError, ConfigError
from confidently.files import atomic_write_json, read_json, sha256_file
from confidently.scorers.spec import ScorerSpec
from confidently.tasks.nearest import NEAREST_FILE
from confidently.tasks.task import Task
from confidently.decision.policy import DecisionPolicy

if TYPE_CHECKING:
    from confidently.backends.base import Backend
    from confidently.calibration import Calibrator
    from confidently.calibration.probe import HiddenStateProbe
    from confidently.scoring.classifier import Classifier

BUNDLE_FORMAT = "confidently.bundle"
BUNDLE_VERSION = 1
MANIFEST_FILE = "manifest.json"
CALIBRATOR_FILE = "calibrator.json"
POLICY_FILE = "policy.json"
#: The prediction sets, an extra payload: ``write_bundle(..., extra_json={CONFORMAL_FILE: predictor.to_dict()})``.
CONFORMAL_FILE = "conformal.json"
PROBE_FILE = "probe.json"
WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
#: Files an adapter bundle carries for the model server; a copy without them (SageMaker sidecars) is complete.
ADAPTER_FILES = (WEIGHTS_FILE, ADAPTER_CONFIG_FILE)
_RESERVED = {MANIFEST_FILE, CALIBRATOR_FILE, POLICY_FILE, PROBE_FILE, NEAREST_FILE}
_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class ModelIdentity:
    """The model a bundle's calibrator was fitted on.

    Attributes
    ----------
    name : the model as the user named it (registry name, folder, hub id).
    backend : the backend's name (``transformers``, ``openai``).
    weights_id : the base weights' fingerprint (:attr:`Backend.weights_id`): what is checked.
    dtype : the precision the scores were computed in (``float32``, ``bfloat16``, ``bfloat16-invariant``);
        applying the bundle to scores of another precision warns (:meth:`Bundle.check_precision`).
    adapter_sha256 : sha256 of the LoRA weights that were active, or None for the bare base model.
    """

    name: str
    backend: str
    weights_id: str
    dtype: str | None = None
    adapter_sha256: str | None = None

    @classmethod
    def of(cls, backend: Backend) -> ModelIdentity:
        """The identity of ``backend`` as it scores now (with its active adapter, if any)."""
        active = getattr(backend, "active_adapter", None)
        adapters = getattr(backend, "adapters", {})
        return cls(backend.model_name, backend.name, backend.weights_id_of(active), backend.precision,
                   adapters.get(active) if active else None)

    def describe(self) -> str:
        adapter = "no adapter" if self.adapter_sha256 is None else f"adapter {self.adapter_sha256[:12]}…"
        return f"{self.name} (weights {self.weights_id[:12]}…, {adapter})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "backend": self.backend, "weights_id": self.weights_id, "dtype": self.dtype,
                "adapter_sha256": self.adapter_sha256}

    @classmethod
    def from_dict(cls, data: Any, where: Path) -> ModelIdentity:
        if not isinstance(data, Mapping) or not all(isinstance(data.get(k), str) and data.get(k)
                                                     for k in ("name", "backend", "weights_id")):
            raise ArtifactError(f"{where}: 'model' must hold name, backend and weights_id strings")
        for key in ("dtype", "adapter_sha256"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ArtifactError(f"{where}: model.{key} must be a string or null")
        return cls(data["name"], data["backend"], data["weights_id"], data.get("dtype"), data.get("adapter_sha256"))


def task_fingerprint(task: Task, chat: bool | None) -> str:
    """A short hash of everything in the prompt a task defines: template, labels, words, chat choice."""
    effective_chat = task.chat if chat is None else chat
    text = json.dumps({"task": task.to_dict(), "chat": effective_chat}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Bundle:
    """A checked calibration bundle (see :func:`read_bundle`).

    Attributes
    ----------
    folder : where it was read from.
    manifest : ``manifest.json`` as written.
    model : what the calibrator was fitted on.
    task : the task (prompt template, labels, words) it was fitted for; ``chat`` the chat override.
    calibrator : None when the raw scores were kept (then the policy's threshold applies to them); a
        :class:`~confidently.calibration.probe.HiddenStateProbe` when the bundle holds ``probe.json``.
    policy : the decision policy.
    extras : the other JSON files by name (e.g. ``canary.json``, ``conformal.json``), parsed.
    manifest_sha256 : hash of ``manifest.json``, which pins every other file.
    prediction_sets : the conformal predictor read from ``conformal.json``; None when the bundle has none.
    decision_rule : the manifest's ``decision_rule``: ``"threshold"`` (the policy; also for bundles
        that do not record one) or ``"prediction_set"`` (automate single-label sets).
    scorer : the scorer (and its parameters) whose scores the calibrator was fitted on.
    """

    folder: Path
    manifest: dict[str, Any]
    model: ModelIdentity
    task: Task
    chat: bool | None
    calibrator: Calibrator | HiddenStateProbe | None
    policy: DecisionPolicy
    extras: dict[str, Any] = field(default_factory=dict)
    manifest_sha256: str = ""
    prediction_sets: ConformalPredictor | None = None
    decision_rule: str = "threshold"
    scorer: ScorerSpec = field(default_factory=ScorerSpec)

    @property
    def files(self) -> dict[str, str]:
        """Every file of the bundle but the manifest, with its sha256."""
        return dict(self.manifest["files"])

    @property
    def is_adapter(self) -> bool:
        """The bundle is a fine-tuned adapter folder (it holds the LoRA weights' hash)."""
        return WEIGHTS_FILE in self.manifest["files"]

    @property
    def fitted_on(self) -> dict[str, Any]:
        return dict(self.manifest.get("fitted_on") or {})

    def check_model(self, weights_id: str, adapter_sha256: str | None, *, name: str | None = None) -> None:
        """Refuse unless the bundle was fitted on these base weights with this adapter (None: none)."""
        if weights_id == self.model.weights_id and adapter_sha256 == self.model.adapter_sha256:
            return
        applied = ModelIdentity(name or "the model", "-", weights_id, None, adapter_sha256)
        raise BundleMismatchError(
            f"bundle {self.folder} was fitted on {self.model.describe()} but is applied to {applied.describe()}: "
            "a calibrator only holds for the model it was fitted on; fit one for this model with "
            "`confidently evaluate`")

    def check_precision(self, precision: str | None) -> None:
        """Warn when the scores come in another precision than the bundle was fitted on.

        A warning, not a refusal: the model is the same, and float32 and bfloat16 scores differ by
        about 0.01 in P(label) on average (README "Precision"), but that is what the calibrator and
        its certified threshold then absorb unmeasured.
        """
        if self.model.dtype is None or precision is None or precision == self.model.dtype:
            return
        warnings.warn(PrecisionMismatchWarning(
            f"bundle {self.folder} was fitted on {self.model.dtype} scores but is applied to {precision} scores: "
            f"its calibration was measured at {self.model.dtype} only; score with --dtype {self.model.dtype} or "
            f"fit a bundle at {precision}"), stacklevel=3)

    def check_task(self, task: Task, chat: bool | None) -> None:
        """Refuse unless the bundle was fitted for this task (template, labels, words, chat choice)."""
        mine, theirs = task_fingerprint(self.task, self.chat), task_fingerprint(task, chat)
        if mine != theirs:
            raise BundleMismatchError(
                f"bundle {self.folder} was fitted for task {self.task.name!r} (fingerprint {mine}, labels "
                f"{', '.join(self.task.label_names)}) but is applied to task {task.name!r} (fingerprint {theirs}, "
                f"labels {', '.join(task.label_names)}): pass --task with the bundle's task file, or fit a bundle "
                "for this task")

    def check_scorer(self, scorer: ScorerSpec) -> None:
        """Refuse unless the scores come from the scorer the bundle was fitted on, with the same samples,
        temperature and answer length (the seed may differ: it redraws answers from the same distribution)."""
        if scorer.distribution_key() != self.scorer.distribution_key():
            raise BundleMismatchError(
                f"bundle {self.folder} was fitted on scores of the {self.scorer.describe()} scorer but is applied "
                f"to scores of the {scorer.describe()} scorer: a calibrator only holds for the scores it was "
                "fitted on; use the bundle's scorer, or fit a bundle for this one with `confidently evaluate "
                "--scorer`")

    def check(self, classifier: Classifier, *, weights: bool = True) -> None:
        """Refuse unless ``classifier`` (its weights, active adapter, task, chat choice and scorer) is what
        was fitted; ``weights=False`` leaves the weights out (a serving engine's, which only the bundle's
        canary can vouch for)."""
        backend = classifier.backend
        self.check_scorer(classifier.scorer)
        self.check_task(classifier.task, classifier.chat)
        identity = ModelIdentity.of(backend)
        if weights:
            self.check_model(identity.weights_id, identity.adapter_sha256, name=backend.model_name)
        self.check_precision(identity.dtype)


class PrecisionMismatchWarning(UserWarning):
    """A bundle is applied to scores computed in another precision than it was fitted on."""


def library_versions() -> dict[str, str]:
    """Versions of everything that shapes the scores and the saved files."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for package in ("confidently", "torch", "transformers", "peft", "safetensors", "numpy", "scipy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_bundle(folder: str | Path, *, model: ModelIdentity, task: Task, chat: bool | None,
                 calibrator: Calibrator | HiddenStateProbe | None, policy: DecisionPolicy, fitted_on: Mapping[str, Any],
                 extra_json: Mapping[str, Any] | None = None,
                 extra_files: Mapping[str, Callable[[Path], None]] | None = None,
                 metadata: Mapping[str, Any] | None = None, scorer: ScorerSpec | None = None) -> Bundle:
    """Write a bundle into ``folder`` (created if needed) and return it, read back and checked.

    Parameters
    ----------
    folder : where the files go; other files already there (a run folder's report) are left alone.
    model : what the scores came from (:meth:`ModelIdentity.of` the classifier's backend); when
        ``extra_files`` holds the adapter weights, ``adapter_sha256`` is taken from them.
    task, chat : the task and the classifier's chat override.
    calibrator : fitted calibrator, or None to keep raw scores; a hidden-state probe is written as
        ``probe.json``.
    policy : the decision policy.
    fitted_on : what the calibrator and policy were fitted on: at least ``rows_sha256`` (e.g.
        :meth:`Dataset.sha256`) and ``n_rows``.
    extra_json : more payloads, file name (``NAME.json``) → JSON-able object; hashed like the rest.
    extra_files : more files, name → function writing that file at the path it is given (the
        adapter's weights and config).
    metadata : more manifest keys (hyperparameters, validation...); cannot replace the keys above.
        ``decision_rule`` (one of :data:`DECISION_RULES`) records how the bundle's answers are decided;
        ``"prediction_set"`` needs ``CONFORMAL_FILE`` in ``extra_json``.
    scorer : the scorer whose scores the calibrator and policy were fitted on (default: logprob).

    Each file is written atomically and the manifest last, so a reader never trusts a half-written
    bundle: until the manifest is replaced, the old hashes no longer match and the reader refuses.
    """
    folder = Path(folder)
    extra_json, extra_files, metadata = dict(extra_json or {}), dict(extra_files or {}), dict(metadata or {})
    if not isinstance(fitted_on, Mapping) or not {"rows_sha256", "n_rows"} <= set(fitted_on):
        raise ConfigError("fitted_on must give rows_sha256 and n_rows")
    for name in (*extra_json, *extra_files):
        if name in _RESERVED or not _FILE_NAME.match(name):
            raise ConfigError(f"bundle file name {name!r} is reserved or not a plain file name")
    if calibrator is not None and calibrator.n_classes_ != len(task.labels):
        raise ConfigError(f"the calibrator was fitted on {calibrator.n_classes_} classes, the task has "
                               f"{len(task.labels)} ({', '.join(task.label_names)})")
    for name in extra_json:
        if not name.endswith(".json"):
            raise ConfigError(f"extra bundle payload {name!r} must be a .json file name")
    rule = metadata.get("decision_rule", "threshold")
    if rule not in DECISION_RULES:
        raise ConfigError(f"decision_rule must be one of {', '.join(DECISION_RULES)}; got {rule!r}")
    if rule == "prediction_set" and CONFORMAL_FILE not in extra_json:
        raise ConfigError(f"decision_rule 'prediction_set' needs the prediction sets ({CONFORMAL_FILE})")
    folder.mkdir(parents=True, exist_ok=True)
    for name, write in extra_files.items():
        write(folder / name)
    calibrator_file = PROBE_FILE if getattr(calibrator, "reads_hidden", False) else CALIBRATOR_FILE
    for stale in {CALIBRATOR_FILE, PROBE_FILE} - ({calibrator_file} if calibrator is not None else set()):
        if (folder / stale).exists():
            (folder / stale).unlink()  # an earlier run's calibrator must not look current
    if calibrator is not None:
        atomic_write_json(folder / calibrator_file, calibrator.to_dict())
    policy.save(folder / POLICY_FILE)
    if task.nearest is not None:  # the shot pool travels with every bundle of the task (recalibrated versions too)
        extra_json[NEAREST_FILE] = task.nearest.to_dict(task.label_names)
    for name, payload in extra_json.items():
        atomic_write_json(folder / name, payload)
    names = [*extra_files, *([calibrator_file] if calibrator is not None else []), POLICY_FILE, *extra_json]
    files = {name: sha256_file(folder / name) for name in names}
    if WEIGHTS_FILE in files:
        model = ModelIdentity(model.name, model.backend, model.weights_id, model.dtype, files[WEIGHTS_FILE])
    reserved = {"format", "version", "created", "model", "task", "chat", "scorer", "fitted_on", "library_versions",
                "files"}
    clash = sorted(reserved & set(metadata))
    if clash:
        raise ConfigError(f"bundle metadata cannot set {', '.join(clash)}")
    atomic_write_json(folder / MANIFEST_FILE, {
        "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "model": model.to_dict(), "task": task.to_dict(), "chat": chat,
        "scorer": (scorer or ScorerSpec()).to_dict(), "fitted_on": dict(fitted_on),
        "library_versions": library_versions(), **metadata, "files": files,
    })
    return read_bundle(folder)


def read_bundle(folder: str | Path, *, require_adapter_files: bool = True) -> Bundle:
    """Read a bundle, checking the manifest and every file's sha256 before anything is used.

    Parameters
    ----------
    folder : a folder written by :func:`write_bundle` (an evaluate run folder, an adapter folder).
    require_adapter_files : when False, an adapter bundle's weights may be absent (a copy of its
        JSON files only, as SageMaker classification downloads); present files are still checked.

    Raises
    ------
    ArtifactError
        One line naming the file: no manifest, malformed manifest, no ``files`` list, a listed file
        missing or changed since it was written, no policy, or a calibrator for another label count.
    """
    from confidently.calibration import load_calibrator
    from confidently.errors import TaskError

    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: no such folder (a calibration bundle is the folder `confidently evaluate` "
                            "or `confidently finetune` wrote)")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{folder} has no {MANIFEST_FILE}: not a calibration bundle written by "
                            "`confidently evaluate` or `confidently finetune`") from None
    except OSError as error:
        raise ArtifactError(f"{path}: cannot be read: {error.strerror or error}") from None
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ArtifactError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise ArtifactError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    except (ValueError, RecursionError) as error:  # an integer of > 4300 digits; nesting too deep to parse
        raise ArtifactError(f"{path}: not a usable JSON file: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ArtifactError(f"{path}: expected format {BUNDLE_FORMAT!r} (a bundle written by `confidently "
                            "evaluate` or `confidently finetune`)")
    if manifest.get("version") != BUNDLE_VERSION:
        raise ArtifactError(f"{path}: bundle version {manifest.get('version')!r} is not supported "
                            f"(this confidently reads version {BUNDLE_VERSION})")
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise ArtifactError(f"{path}: has no 'files' list of sha256 hashes; without it nothing can be verified")
    for name, digest in files.items():
        if not isinstance(name, str) or name == MANIFEST_FILE or not _FILE_NAME.match(name):
            raise ArtifactError(f"{path}: files lists {name!r}, which is not a plain file name in the bundle")
        if not isinstance(digest, str) or not _SHA256.match(digest):
            raise ArtifactError(f"{path}: files[{name!r}] is not a sha256 hex digest")
    if POLICY_FILE not in files:
        raise ArtifactError(f"{path}: lists no {POLICY_FILE}; a bundle needs its decision policy")
    for name, digest in files.items():
        file = folder / name
        if not file.is_file():
            if name in ADAPTER_FILES and not require_adapter_files:
                continue
            raise ArtifactError(f"{file} is missing (the bundle's manifest lists it)")
        if sha256_file(file) != digest:
            raise ArtifactError(f"{file} changed since the bundle was written (its sha256 differs from the "
                                "manifest's); re-create the bundle rather than edit it")
    model = ModelIdentity.from_dict(manifest.get("model"), path)
    if not isinstance(manifest.get("task"), Mapping):
        raise ArtifactError(f"{path}: has no task (expected Task.to_dict())")
    try:
        task = Task.from_dict({key: value for key, value in manifest["task"].items() if key != "nearest"})
        if "nearest" in manifest["task"]:
            task = Task.from_dict(manifest["task"], nearest=_read_shot_pool(folder, files, task.label_names))
    except TaskError as error:
        raise ArtifactError(f"{path}: {error}") from None
    chat = manifest.get("chat")
    if chat is not None and not isinstance(chat, bool):
        raise ArtifactError(f"{path}: chat must be true, false or null")
    try:
        scorer = ScorerSpec.from_dict(manifest.get("scorer", {"name": "logprob"}))
    except ConfigError as error:
        raise ArtifactError(f"{path}: scorer: {error}") from None
    fitted_on = manifest.get("fitted_on")
    if not (isinstance(fitted_on, dict) and isinstance(fitted_on.get("rows_sha256"), str)
            and isinstance(fitted_on.get("n_rows"), int) and not isinstance(fitted_on["n_rows"], bool)
            and fitted_on["n_rows"] >= 0):
        raise ArtifactError(f"{path}: fitted_on must be an object with rows_sha256 (a string) and n_rows (a whole "
                            "number)")
    calibrator = None
    if CALIBRATOR_FILE in files and PROBE_FILE in files:
        raise ArtifactError(f"{path}: lists both {CALIBRATOR_FILE} and {PROBE_FILE}; a bundle has one calibrator")
    if CALIBRATOR_FILE in files:
        calibrator = load_calibrator(folder / CALIBRATOR_FILE)
    elif PROBE_FILE in files:
        calibrator = _load_probe(folder / PROBE_FILE)
    if calibrator is not None and calibrator.n_classes_ != len(task.labels):
        name = CALIBRATOR_FILE if CALIBRATOR_FILE in files else PROBE_FILE
        raise ArtifactError(f"{folder / name}: fitted on {calibrator.n_classes_} classes, the task "
                            f"has {len(task.labels)} ({', '.join(task.label_names)})")
    policy = DecisionPolicy.load(folder / POLICY_FILE)
    extras = {name: read_json(folder / name) for name in files
              if name.endswith(".json") and name not in _RESERVED and name != ADAPTER_CONFIG_FILE}
    prediction_sets = None
    if CONFORMAL_FILE in extras:
        try:
            prediction_sets = ConformalPredictor.from_dict(extras[CONFORMAL_FILE])
        except ArtifactError as error:
            raise ArtifactError(f"{folder / CONFORMAL_FILE}: {error}") from None
        if prediction_sets.n_classes_ != len(task.labels):
            raise ArtifactError(f"{folder / CONFORMAL_FILE}: fitted on {prediction_sets.n_classes_} classes, the "
                                f"task has {len(task.labels)} ({', '.join(task.label_names)})")
    if SEEN_FILE in extras:  # checked here, so a malformed record is refused before anything is scored
        SeenTexts.from_dict(extras[SEEN_FILE], str(folder / SEEN_FILE))
    rule = manifest.get("decision_rule", "threshold")
    if rule not in DECISION_RULES:
        raise ArtifactError(f"{path}: decision_rule must be one of {', '.join(DECISION_RULES)}; got {rule!r}")
    if rule == "prediction_set" and prediction_sets is None:
        raise ArtifactError(f"{path}: decision_rule is 'prediction_set' but the bundle lists no {CONFORMAL_FILE}")
    return Bundle(folder, manifest, model, task, chat, calibrator, policy, extras,
                  hashlib.sha256(raw).hexdigest(), prediction_sets=prediction_sets, decision_rule=rule,
                  scorer=scorer)


def _read_shot_pool(folder: Path, files: Mapping[str, str], label_names):
    """The nearest shots' pool (:data:`NEAREST_FILE`) a task records; errors name the file."""
    from confidently.tasks.nearest import NearestShots

    if NEAREST_FILE not in files:
        raise ArtifactError(f"{folder / MANIFEST_FILE}: the task asks with nearest shots but the bundle lists no "
                            f"{NEAREST_FILE}")
    return NearestShots.from_dict(read_json(folder / NEAREST_FILE), label_names, where=str(folder / NEAREST_FILE))


def _load_probe(path: Path) -> HiddenStateProbe:
    """The bundle's hidden-state probe (or a prompt ensemble's combiner, ``method: "ensemble"``), every value
    checked; errors name the file."""
    from confidently.calibration.ensemble import PromptCombiner
    from confidently.calibration.probe import HiddenStateProbe
    from confidently.files import read_json

    try:
        data = read_json(path)
        kind = PromptCombiner if isinstance(data, dict) and data.get("method") == PromptCombiner.name else HiddenStateProbe
        return kind.from_dict(data)
    except ArtifactError as error:
        message = str(error)
        raise ArtifactError(message if message.startswith(f"{path}:") else f"{path}: {message}") from None
