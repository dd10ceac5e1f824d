"""Recalibration from reviewers' labels, written as a new bundle version beside the original.

:func:`recalibrate` refits the calibrator on the calibration rows plus part of the labelled review
and audit texts, checks old and new on the rest of those labels (held out), and keeps the new one
only when it is demonstrably better there: the 95% paired-bootstrap interval of the difference in
negative log-likelihood (new - old) lies below zero. The decision threshold is then re-certified,
for the old policy's target accuracy, on the calibration rows only (calibrated out of fold): they
are a random sample of traffic, while review and audit texts were selected by their confidence.
Calibration rows cut to fit the context count as reviewed at every threshold, as ``evaluate``
certifies, since the server never automates a truncated text (files written before the rows recorded
truncation read as none cut, and the report says ``"truncation_known": false``).
A bundle whose calibrator reads more than class probabilities (a hidden-state probe: the final hidden
state; a prompt ensemble's combiner: every prompt's class masses) is refitted on those features
(:mod:`confidently.feedback.features`): the calibration rows' from the bundle, the reviewed texts' as the
server logged them. Reviewed texts logged without features are left out and counted; features logged
for another model, adapter or prompt set are refused.

The calibration rows are the bundle's ``calibration_rows.json`` (written by ``evaluate`` and
``finetune``, read through :func:`~confidently.bundle.bundle.read_bundle`, hash-checked). An adopted
calibrator becomes ``FOLDER/versions/vN`` (:mod:`confidently.bundle.versions`): a complete bundle
with the new calibrator and policy, prediction sets of the old kind refitted on the same out-of-fold
scores the threshold is certified on, the bundle's decision rule and scorer, the reference distribution
they give, the folder's canary and ``recalibration.json`` (this comparison). Sets fitted per slice cannot be
refitted (the calibration rows do not record the slice): a version leaves them out, and a bundle that
decides by them keeps its old version. Nothing is overwritten; ``serve`` switches to the newest
version without a restart. Only reviewed texts (reason ``review`` or ``audit``) are used: their
selection depends on the model's scores alone, so it leaves ``P(label | scores)``, what a
calibrator estimates, unbiased; labels that programs sent for texts of their choosing might not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import StratifiedKFold, train_test_split

from confidently.bundle.bundle import CONFORMAL_FILE, Bundle, read_bundle
from confidently.bundle.seen import SEEN_FILE, SeenTexts
from confidently.bundle.versions import latest_version, write_version
from confidently.calibration import Calibrator
from confidently.calibration.base import clone
from confidently.calibration.ensemble import PromptCombiner
from confidently.calibration.probe import HiddenStateProbe
from confidently.calibration.validation import check_labels, check_probs
from confidently.decision.conformal import ConformalPredictor
from confidently.decision.decisions import reads_hidden
from confidently.monitoring.canary import CANARY_FILE
from confidently.errors import ArtifactError, DataError
from confidently.feedback import FeedbackStore, LabelledText
from confidently.feedback.features import FEATURES_FILE, feature_space, read_features, reviewed_features, write_features
from confidently.metrics import metric_function, paired_bootstrap_diff
from confidently.monitoring.reference import REFERENCE_FILE, Reference
from confidently.decision.policy import DecisionPolicy
from confidently.decision.procedures import DEFAULT_PROCEDURE
from confidently.decision.thresholds import certify_threshold

CALIBRATION_ROWS_FILE = "calibration_rows.json"
CALIBRATION_ROWS_FORMAT = "confidently.calibration_rows"
#: Version 2 adds ``truncated`` (one bool per row); version 1 files, which do not record it, are still read.
CALIBRATION_ROWS_FORMAT_VERSION = 2
REPORT_FILE = "recalibration.json"
#: Fewest held-out labels on which old and new are compared.
MIN_HELD_OUT = 20
CERTIFICATE_LEVEL = 0.95


@dataclass(frozen=True)
class CalibrationRows:
    """The rows a calibrator was fitted on: raw class probabilities, labels and other mass.

    Attributes
    ----------
    labels : label names, in column order.
    probs : array of shape (n, k), raw class probabilities.
    y : array of shape (n,), label indices.
    other_mass : array of shape (n,), next-token mass on no label (for the reference distribution).
    features : float32 array (n, dim): what a feature-reading calibrator read (hidden states, every
        prompt's class masses), kept in the bundle's :data:`FEATURES_FILE`; None for other calibrators.
    truncated : bool array (n,): the text was cut to fit the context, so the server decides it ``review``
        whatever its confidence; None when not recorded (a file of ``format_version`` 1).
    """

    labels: tuple[str, ...]
    probs: np.ndarray
    y: np.ndarray
    other_mass: np.ndarray
    features: np.ndarray | None = None
    truncated: np.ndarray | None = None

    @property
    def truncation_known(self) -> bool:
        """Whether the rows record which texts were cut (files written before they did read as none cut)."""
        return self.truncated is not None

    @property
    def never_automated(self) -> np.ndarray:
        """The rows the decision sends to review whatever their confidence: the truncated ones (none when
        not recorded)."""
        return np.zeros(len(self.y), bool) if self.truncated is None else self.truncated

    def to_dict(self) -> dict[str, Any]:
        """The JSON payload (``calibration_rows.json``); the features go in :meth:`feature_files`. Rows that
        do not record truncation are written as version 1, the version that does not."""
        features = {} if self.features is None else {"features": {
            "file": FEATURES_FILE, "shape": list(self.features.shape), "dtype": "float32"}}
        truncated = {} if self.truncated is None else {"truncated": self.truncated.tolist()}
        return {"format": CALIBRATION_ROWS_FORMAT, "format_version": CALIBRATION_ROWS_FORMAT_VERSION if truncated
                else 1, "labels": list(self.labels), "probs": self.probs.tolist(), "y": self.y.tolist(),
                "other_mass": self.other_mass.tolist(), **truncated, **features}

    def feature_files(self) -> dict[str, Callable[[Path], None]]:
        """The bundle files beside the JSON payload (``write_bundle(extra_files=...)``): the features, if any."""
        if self.features is None:
            return {}
        return {FEATURES_FILE: lambda path: write_features(path, self.features)}

    @classmethod
    def from_dict(cls, data: Any) -> CalibrationRows:
        if not isinstance(data, Mapping) or data.get("format") != CALIBRATION_ROWS_FORMAT:
            raise ArtifactError(f"expected format {CALIBRATION_ROWS_FORMAT!r}")
        version = data.get("format_version")
        if version not in (1, CALIBRATION_ROWS_FORMAT_VERSION) or isinstance(version, bool):
            shown = repr(version) if len(repr(version)) <= 60 else repr(version)[:57] + "..."
            raise ArtifactError(f"calibration rows format_version {shown} is not supported (this version of "
                                f"confidently reads 1 and {CALIBRATION_ROWS_FORMAT_VERSION}); upgrade confidently")
        try:
            labels = tuple(data["labels"])
            probs = check_probs(data["probs"], n_classes=len(labels))
            y = check_labels(data["y"], n_samples=len(probs), n_classes=len(labels))
            other = np.asarray(data["other_mass"], dtype=float).reshape(len(probs))
            truncated = None if version == 1 else _flags(data["truncated"], len(probs))
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"malformed calibration rows: {type(error).__name__}: {error}") from None
        return cls(labels, probs, y, other, truncated=truncated)

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> CalibrationRows:
        """The rows ``bundle`` was fitted on (its hash-checked ``calibration_rows.json``, and the features
        file it names, hash-checked too)."""
        path = bundle.folder / CALIBRATION_ROWS_FILE
        if CALIBRATION_ROWS_FILE not in bundle.extras:
            raise ArtifactError(f"{bundle.folder}: the bundle has no {CALIBRATION_ROWS_FILE} (bundles written by "
                                "`confidently evaluate` or `confidently finetune` carry it): nothing to refit on")
        data = bundle.extras[CALIBRATION_ROWS_FILE]
        try:
            rows = cls.from_dict(data)
        except ArtifactError as error:
            raise ArtifactError(f"{path}: {error}") from None
        if not isinstance(data.get("features"), Mapping):
            return rows
        if data["features"].get("file") != FEATURES_FILE or FEATURES_FILE not in bundle.files:
            raise ArtifactError(f"{path}: names features in {data['features'].get('file')!r}, which the bundle's "
                                f"manifest does not list (expected {FEATURES_FILE})")
        return replace(rows, features=read_features(bundle.folder / FEATURES_FILE, n_rows=len(rows.y)))


def _flags(values: Any, n: int) -> np.ndarray:
    """``values`` as ``n`` true/false flags; anything else (numbers, strings, another count) is a ValueError."""
    if not isinstance(values, list) or len(values) != n or not all(isinstance(v, bool) for v in values):
        raise ValueError(f"truncated must be a list of {n} true/false values, one per row")
    return np.array(values, dtype=bool)


@dataclass(frozen=True)
class Recalibration:
    """What :func:`recalibrate` found and did.

    Attributes
    ----------
    adopted : whether a new version was written.
    version : the new version's number (None when the old was kept).
    folder : the new version's folder (None when the old was kept).
    report : the comparison and how it was made, as written to ``recalibration.json``.
    """

    adopted: bool
    version: int | None
    folder: Path | None
    report: dict[str, Any]

    def describe(self) -> str:
        r = self.report
        left_out = r.get("n_feedback_without_features")
        note = (f" ({left_out} reviewed labels were logged without the features the calibrator reads, by a server "
                "that kept none or while another calibrator served: left out)") if left_out else ""
        if not_queued := r.get("n_feedback_not_queued"):
            # The server accepts a label for any logged text; only queued ones (review, audit) were selected by
            # the scores alone, so say where the missing labels went.
            note += (f" ({not_queued} label{'s' if not_queued > 1 else ''} for texts the server did not queue for "
                     "review or audit left out: texts chosen by whoever sent them could bias the calibrator)")
        if self.adopted and r.get("truncation_known") is False:
            note += (f" (the bundle's {CALIBRATION_ROWS_FILE} predates truncation flags: the threshold was certified "
                     "as if none of its rows had been cut to fit)")
        if "nll_difference" not in r:
            return f"kept version {r['current_version']}: {r['reason']}{note}"
        d = r["nll_difference"]
        verdict = (f"wrote version {self.version}" if self.adopted else f"kept version {r['current_version']}")
        return (f"{verdict}: on {r['n_held_out']} held-out labels, NLL {r['nll_old']:.4f} -> {r['nll_new']:.4f} "
                f"(difference {d['value']:+.4f}, 95% paired bootstrap [{d['low']:+.4f}, {d['high']:+.4f}]); "
                f"ECE {r['ece_old']:.4f} -> {r['ece_new']:.4f}; {r['reason']}{note}")


def recalibrate(folder: str | Path, store: FeedbackStore, *, adapter: str | None, holdout: float = 0.3,
                seed: int = 0, n_resamples: int = 1000) -> Recalibration:
    """Refit the calibrator and policy of ``folder`` with the reviewed labels of ``adapter`` (see the module docs).

    Parameters
    ----------
    folder : a calibration bundle (an evaluate run folder, an adapter folder) with a calibrator and
        ``calibration_rows.json``; refits start from its newest version.
    store : the feedback store the server logged to.
    adapter : the name the folder is served under (None: the base model).
    holdout : share of the labelled texts kept for the comparison (stratified by label).
    """
    root = read_bundle(folder)
    rows = CalibrationRows.from_bundle(root)
    if rows.labels != root.task.label_names:
        raise ArtifactError(f"{root.folder / CALIBRATION_ROWS_FILE}: labels {list(rows.labels)}, the bundle's task "
                            f"has {list(root.task.label_names)}")
    current = latest_version(folder, root)
    number, old, policy = current.number, current.bundle.calibrator, current.bundle.policy
    if old is None:
        raise ArtifactError(f"{current.bundle.folder}: has no calibrator to recalibrate (no calibrator beat the raw "
                            "scores when it was fitted)")
    every_label = store.labelled(adapter)
    reviewed = [r for r in every_label if r.reason in ("review", "audit")]
    if reviewed and list(reviewed[0].probs) != list(rows.labels):
        raise DataError(f"the feedback for {adapter or 'the base model'} has labels {list(reviewed[0].probs)}, "
                        f"the calibration rows {list(rows.labels)}")
    x_rows, labelled, x_feedback, read = _inputs(current.bundle, rows, reviewed, root.folder / CALIBRATION_ROWS_FILE)
    base = {"current_version": number, "current_bundle_version": current.label, "adapter": adapter,
            "n_calibration_rows": int(len(rows.y)), "n_calibration_rows_truncated": int(rows.never_automated.sum()),
            "truncation_known": rows.truncation_known, "n_feedback": len(labelled),
            "n_feedback_not_queued": len(every_label) - len(reviewed), **read, "holdout": holdout,
            "seed": seed}
    n_held = int(round(len(labelled) * holdout))
    if n_held < MIN_HELD_OUT:
        return Recalibration(False, None, None, {**base, "reason": (
            f"too few reviewed labels: {len(labelled)}, of which {n_held} would be held out; need "
            f"{MIN_HELD_OUT} held out (about {int(np.ceil(MIN_HELD_OUT / holdout))} labels)")})
    y = np.array([rows.labels.index(r.true_label) for r in labelled])
    counts = np.bincount(y, minlength=len(rows.labels))
    stratify = y if counts[counts > 0].min() >= 2 else None
    train, held = train_test_split(np.arange(len(y)), test_size=n_held, random_state=seed, stratify=stratify)
    new = _refit(old, np.vstack([x_rows, x_feedback[train]]), np.concatenate([rows.y, y[train]]))
    nll, ece = metric_function("nll"), metric_function("ece", n_bins=10)
    old_held, new_held = old.predict_proba(x_feedback[held]), new.predict_proba(x_feedback[held])
    diff = paired_bootstrap_diff(nll, (new_held, y[held]), (old_held, y[held]), n_resamples=n_resamples, seed=seed)
    report = {**base, "n_train_feedback": int(len(train)), "n_held_out": int(len(held)), "method": new.name,
              "nll_old": float(nll(old_held[None], y[held][None])[0]),
              "nll_new": float(nll(new_held[None], y[held][None])[0]),
              "ece_old": float(ece(old_held[None], y[held][None])[0]),
              "ece_new": float(ece(new_held[None], y[held][None])[0]),
              "ece_bins": "10 equal-width bins of the top-label confidence",
              "nll_difference": {"value": diff.diff, "low": diff.ci_low, "high": diff.ci_high, "level": diff.level,
                                 "n_resamples": n_resamples, "paired_bootstrap_seed": seed}}
    if not diff.ci_high < 0:
        report["reason"] = ("the new calibrator is not demonstrably better on the held-out labels (the interval "
                            "of the NLL difference does not lie below 0)")
        return Recalibration(False, None, None, report)
    old_sets, rule = current.bundle.prediction_sets, current.bundle.decision_rule
    if old_sets is not None and old_sets.condition_on == "group" and rule == "prediction_set":
        report["reason"] = (f"the new calibrator is better on the held-out labels, but the bundle decides by "
                            f"prediction sets fitted per {old_sets.group_column or 'group'}, which the calibration "
                            "rows do not record, so the sets cannot be refitted for it: re-run `confidently "
                            "evaluate` with the new labels")
        return Recalibration(False, None, None, report)
    calibrated_rows = _out_of_fold(new, x_rows, rows.y, x_feedback[train], y[train], seed)
    new_policy = _recertify(calibrated_rows, rows.y, policy, never_automated=rows.never_automated)
    new_sets = _refit_sets(old_sets, calibrated_rows, rows.y)
    report["reason"] = "the new calibrator is better on the held-out labels"
    report["policy"] = new_policy.to_dict()
    report["decision_rule"] = rule
    report["prediction_sets"] = ("none" if old_sets is None else
                                 f"refitted ({new_sets.name}) on the calibration rows calibrated out of fold"
                                 if new_sets is not None else
                                 f"left out: fitted per {old_sets.group_column or 'group'}, which the calibration "
                                 "rows do not record")
    reference = Reference.from_scores(rows.probs, rows.other_mass, labels=rows.labels, calibrator=new,
                                      policy=new_policy, source=f"{CALIBRATION_ROWS_FILE} of {root.folder.name}, "
                                      f"calibrated by version {number + 1}", hidden=rows.features,
                                      truncated=rows.truncated, prediction_sets=new_sets, rule=rule)
    trained_on = [labelled[i] for i in train]
    written = write_version(
        root, number + 1, calibrator=new, policy=new_policy, scorer=current.bundle.scorer,
        fitted_on={"rows_sha256": str(root.fitted_on.get("rows_sha256")), "n_rows": int(len(rows.y) + len(train)),
                   "calibration_rows": int(len(rows.y)), "feedback_rows": len(trained_on),
                   "feedback_sha256": _feedback_sha256(trained_on), "parent_version": number,
                   "parent_manifest_sha256": current.bundle.manifest_sha256},
        extra_json={REFERENCE_FILE: reference.to_dict(), REPORT_FILE: report,
                    **({CONFORMAL_FILE: new_sets.to_dict()} if new_sets is not None else {}),
                    **({CANARY_FILE: root.extras[CANARY_FILE]} if CANARY_FILE in root.extras else {}),
                    **_seen_texts(root, trained_on, [labelled[i] for i in held])},
        metadata={"decision_rule": rule})
    return Recalibration(True, written.number, written.bundle.folder, report)


def _inputs(bundle: Bundle, rows: CalibrationRows, reviewed: list[LabelledText],
            path: Path) -> tuple[np.ndarray, list[LabelledText], np.ndarray, dict[str, Any]]:
    """What ``bundle``'s calibrator is refitted on: the calibration rows' inputs (``path``: their file), the
    reviewed texts that can be used and their inputs (class probabilities, or the features a probe or
    combiner reads), and what was read (for the report)."""
    space = feature_space(bundle)
    if space is None:
        probs = np.array([[r.probs[label] for label in rows.labels] for r in reviewed]).reshape(-1, len(rows.labels))
        return rows.probs, reviewed, probs, {"reads": "class probabilities"}
    calibrator = bundle.calibrator
    if rows.features is None:
        raise ArtifactError(f"{path}: its calibrator is {_feature_model(calibrator)}, but the calibration rows keep "
                            "class probabilities only (written before features were kept): run `confidently "
                            "evaluate` again to write a bundle that keeps them")
    if rows.features.shape[1] != calibrator.n_features_:
        raise ArtifactError(f"{path}: the calibration rows keep {rows.features.shape[1]} features per row; the "
                            f"calibrator reads {calibrator.n_features_}")
    labelled, features, left_out = reviewed_features(reviewed, space, calibrator.n_features_)
    return rows.features, labelled, features, {"reads": _feature_model(calibrator), "features": space,
                                               "n_feedback_without_features": left_out}


def _refit(old: Calibrator | HiddenStateProbe, x: np.ndarray, y: np.ndarray) -> Calibrator | HiddenStateProbe:
    """A fresh copy of ``old``, with its settings, fitted on inputs ``x`` (what ``old`` reads) and labels ``y``."""
    if reads_hidden(old):
        return old.unfitted().fit(x, y, n_classes=old.n_classes_)
    return clone(old).fit(x, y)


def _feature_model(calibrator) -> str:
    """What a calibrator that reads more than class probabilities is, and what it reads."""
    if isinstance(calibrator, PromptCombiner):
        return "a prompt ensemble's combiner, which reads every prompt's class masses"
    return "a hidden-state probe, which reads the model's hidden states"


def _seen_texts(root: Bundle, trained_on: list[LabelledText], held_out: list[LabelledText]) -> dict[str, Any]:
    """The root's record of the texts it saw (:data:`SEEN_FILE`) with the reviewed texts a version was refitted
    on (``trained_on``) as ``feedback`` and those held out to judge it (``held_out``: it was adopted for doing
    better on them, so its accuracy there is not out-of-sample either) as ``feedback-holdout``. Empty when the
    root has no record (what it saw is unknown)."""
    seen = SeenTexts.from_bundle(root)
    if seen is None:
        return {}
    for role, labelled, how in (("feedback", trained_on, "refitted on"), ("feedback-holdout", held_out, "judged on")):
        texts = [t.text for t in labelled if t.text is not None]
        missing = len(labelled) - len(texts)
        notes = [f"{missing} reviewed feedback texts the version was {how} were not in the store"] if missing else []
        seen = seen.with_role(role, texts, *notes)
    return {SEEN_FILE: seen.to_dict()}


def _feedback_sha256(texts: list[LabelledText]) -> str:
    """A fingerprint of the reviewed labels a version was fitted on (which request, position, label)."""
    rows = sorted((t.request_id, t.position, t.true_label) for t in texts)
    return hashlib.sha256(json.dumps(rows).encode("utf-8")).hexdigest()


def _out_of_fold(calibrator: Calibrator | HiddenStateProbe, x_rows: np.ndarray, y_rows: np.ndarray,
                 extra_x: np.ndarray, extra_y: np.ndarray, seed: int) -> np.ndarray:
    """The calibration rows (inputs ``x_rows``, labels ``y_rows``) calibrated out of fold by copies of
    ``calibrator`` (5 folds; each fold's copy also sees the reviewed training labels ``extra_x``, ``extra_y``):
    the scores the threshold is certified and the prediction sets are fitted on. Only the calibration rows are
    scored: they are a random sample of traffic, while reviewed texts were selected by their confidence."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    calibrated = np.zeros((len(y_rows), calibrator.n_classes_))
    for fit, apply in folds.split(x_rows, y_rows):
        fold = _refit(calibrator, np.vstack([x_rows[fit], extra_x]), np.concatenate([y_rows[fit], extra_y]))
        calibrated[apply] = fold.predict_proba(x_rows[apply])
    return calibrated


def _refit_sets(sets: ConformalPredictor | None, calibrated: np.ndarray,
                y_rows: np.ndarray) -> ConformalPredictor | None:
    """The old prediction sets' kind (alpha, score, marginal or per class) fitted again on the calibration rows'
    out-of-fold scores ``calibrated`` of the new calibrator, so their coverage holds for its probabilities;
    None without sets, or for sets fitted per slice (the rows do not record their slice)."""
    if sets is None or sets.condition_on == "group":
        return None
    return ConformalPredictor(sets.alpha, score=sets.score, condition_on=sets.condition_on).fit(calibrated, y_rows)


def _recertify(calibrated: np.ndarray, y_rows: np.ndarray, policy: DecisionPolicy, *,
               never_automated: np.ndarray) -> DecisionPolicy:
    """The old policy's target at its confidence level, certified on the calibration rows calibrated out of
    fold (``calibrated``, labels ``y_rows``: :func:`_out_of_fold`), with the rows the server never automates
    (``never_automated``: the truncated ones) counted as reviewed at every threshold, as ``evaluate`` certifies."""
    if policy.target_accuracy is None:
        return policy  # no target to certify for: the old policy stands
    certificate = certify_threshold(calibrated.max(1), calibrated.argmax(1) == y_rows,
                                    target_accuracy=policy.target_accuracy, level=policy.level or CERTIFICATE_LEVEL,
                                    procedure=policy.procedure or DEFAULT_PROCEDURE,
                                    never_automated=never_automated)
    return DecisionPolicy.from_certificate(certificate)
