"""Recalibration from reviewers' labels, written as a new version beside the original calibrator.

:func:`recalibrate` refits the calibrator on the calibration rows plus part of the labelled review
and audit texts, checks old and new on the rest of those labels (held out), and keeps the new one
only when it is demonstrably better there: the 95% paired-bootstrap interval of the difference in
negative log-likelihood (new - old) lies below zero. The decision threshold is then re-certified,
for the old policy's target accuracy, on the calibration rows only (calibrated out of fold): they
are a random sample of traffic, while review and audit texts were selected by their confidence.

Versions live in ``FOLDER/versions/vN/`` (``calibrator.json``, ``policy.json``, ``reference.json``,
``recalibration.json`` and a ``manifest.json`` of their hashes); the folder's own calibrator is
version 1. Nothing is overwritten or deleted, and ``serve`` switches to the newest version without
a restart. Only reviewed texts (reason ``review`` or ``audit``) are used: their selection depends on
the model's scores alone, so it leaves ``P(label | scores)``, what a calibrator estimates, unbiased;
labels that programs sent for texts of their choosing might not.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import StratifiedKFold, train_test_split

from confidently.calibration import Calibrator, load_calibrator
from confidently.calibration.base import clone
from confidently.calibration.validation import check_labels, check_probs
from confidently.errors import ArtifactError, DataError
from confidently.feedback import FeedbackStore
from confidently.files import atomic_write_json, current_umask, read_json, sha256_file
from confidently.metrics import metric_function, paired_bootstrap_diff
from confidently.monitoring.reference import REFERENCE_FILE, Reference
from confidently.thresholds import DecisionPolicy, certify_threshold

CALIBRATION_ROWS_FILE = "calibration_rows.json"
CALIBRATION_ROWS_FORMAT = "confidently.calibration_rows"
CALIBRATOR_FILE = "calibrator.json"
POLICY_FILE = "policy.json"
VERSIONS_DIR = "versions"
VERSION_MANIFEST = "manifest.json"
REPORT_FILE = "recalibration.json"
_VERSION_NAME = re.compile(r"^v([0-9]+)$")
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
    """

    labels: tuple[str, ...]
    probs: np.ndarray
    y: np.ndarray
    other_mass: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {"format": CALIBRATION_ROWS_FORMAT, "format_version": 1, "labels": list(self.labels),
                "probs": self.probs.tolist(), "y": self.y.tolist(), "other_mass": self.other_mass.tolist()}

    @classmethod
    def load(cls, path: Path) -> CalibrationRows:
        data = read_json(path)
        if not isinstance(data, Mapping) or data.get("format") != CALIBRATION_ROWS_FORMAT:
            raise ArtifactError(f"{path}: expected format {CALIBRATION_ROWS_FORMAT!r}")
        try:
            labels = tuple(data["labels"])
            probs = check_probs(data["probs"], n_classes=len(labels))
            y = check_labels(data["y"], n_samples=len(probs), n_classes=len(labels))
            other = np.asarray(data["other_mass"], dtype=float).reshape(len(probs))
        except (KeyError, TypeError, ValueError) as error:
            raise ArtifactError(f"{path}: malformed calibration rows: {error}") from None
        return cls(labels, probs, y, other)


@dataclass(frozen=True)
class BundleVersion:
    """One version of a folder's calibrator and policy (1 is the folder's own)."""

    number: int
    folder: Path
    calibrator: Calibrator | None
    policy: DecisionPolicy | None
    reference: Reference | None


def latest_version(folder: Path) -> BundleVersion | None:
    """The newest ``versions/vN`` of ``folder`` (its files checked against their manifest), or None.

    Raises
    ------
    ArtifactError
        If the newest version's manifest is missing or a file changed since it was written.
    """
    root = Path(folder) / VERSIONS_DIR
    numbers = sorted(int(m.group(1)) for p in (root.iterdir() if root.is_dir() else ())
                     if (m := _VERSION_NAME.match(p.name)) and p.is_dir())
    if not numbers:
        return None
    path = root / f"v{numbers[-1]}"
    manifest = read_json(path / VERSION_MANIFEST)
    for name, digest in manifest.get("files", {}).items():
        if not (path / name).is_file() or sha256_file(path / name) != digest:
            raise ArtifactError(f"{path / name} is missing or changed since version {numbers[-1]} was written")
    calibrator = load_calibrator(path / CALIBRATOR_FILE) if (path / CALIBRATOR_FILE).exists() else None
    policy = DecisionPolicy.load(path / POLICY_FILE) if (path / POLICY_FILE).exists() else None
    reference = Reference.load(path / REFERENCE_FILE) if (path / REFERENCE_FILE).exists() else None
    return BundleVersion(numbers[-1], path, calibrator, policy, reference)


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
        if "nll_difference" not in r:
            return f"kept version {r['current_version']}: {r['reason']}"
        d = r["nll_difference"]
        verdict = (f"wrote version {self.version}" if self.adopted else f"kept version {r['current_version']}")
        return (f"{verdict}: on {r['n_held_out']} held-out labels, NLL {r['nll_old']:.4f} -> {r['nll_new']:.4f} "
                f"(difference {d['value']:+.4f}, 95% paired bootstrap [{d['low']:+.4f}, {d['high']:+.4f}]); "
                f"ECE {r['ece_old']:.4f} -> {r['ece_new']:.4f}; {r['reason']}")


def recalibrate(folder: str | Path, store: FeedbackStore, *, adapter: str | None, holdout: float = 0.3,
                seed: int = 0, n_resamples: int = 1000) -> Recalibration:
    """Refit the calibrator and policy of ``folder`` with the reviewed labels of ``adapter`` (see the module docs).

    Parameters
    ----------
    folder : an adapter or bundle folder with ``calibrator.json``, ``policy.json`` and ``calibration_rows.json``.
    store : the feedback store the server logged to.
    adapter : the name the folder is served under (None: the base model).
    holdout : share of the labelled texts kept for the comparison (stratified by label).
    """
    folder = Path(folder)
    rows = CalibrationRows.load(folder / CALIBRATION_ROWS_FILE)
    current = latest_version(folder)
    number = 1 if current is None else current.number
    old = current.calibrator if current is not None else _optional_calibrator(folder / CALIBRATOR_FILE)
    policy = current.policy if current is not None else _optional_policy(folder / POLICY_FILE)
    if old is None:
        raise ArtifactError(f"{folder}: has no calibrator to recalibrate (calibrator.json)")
    labelled = [r for r in store.labelled(adapter) if r.reason in ("review", "audit")]
    if labelled and list(labelled[0].probs) != list(rows.labels):
        raise DataError(f"the feedback for {adapter or 'the base model'} has labels {list(labelled[0].probs)}, "
                        f"the calibration rows {list(rows.labels)}")
    base = {"current_version": number, "adapter": adapter, "n_calibration_rows": int(len(rows.y)),
            "n_feedback": len(labelled), "holdout": holdout, "seed": seed}
    n_held = int(round(len(labelled) * holdout))
    if n_held < MIN_HELD_OUT:
        return Recalibration(False, None, None, {**base, "reason": (
            f"too few reviewed labels: {len(labelled)}, of which {n_held} would be held out; need "
            f"{MIN_HELD_OUT} held out (about {int(np.ceil(MIN_HELD_OUT / holdout))} labels)")})
    probs = np.array([[r.probs[label] for label in rows.labels] for r in labelled])
    y = np.array([rows.labels.index(r.true_label) for r in labelled])
    counts = np.bincount(y, minlength=len(rows.labels))
    stratify = y if counts[counts > 0].min() >= 2 else None
    train, held = train_test_split(np.arange(len(y)), test_size=n_held, random_state=seed, stratify=stratify)
    new = clone(old).fit(np.vstack([rows.probs, probs[train]]), np.concatenate([rows.y, y[train]]))
    nll, ece = metric_function("nll"), metric_function("ece", n_bins=10)
    old_held, new_held = old.predict_proba(probs[held]), new.predict_proba(probs[held])
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
    new_policy = _recertify(new, policy, rows, probs[train], y[train], seed)
    report["reason"] = "the new calibrator is better on the held-out labels"
    report["policy"] = new_policy.to_dict()
    reference = Reference.from_scores(rows.probs, rows.other_mass, labels=rows.labels, calibrator=new,
                                      policy=new_policy, source=f"{CALIBRATION_ROWS_FILE} of {folder.name}, "
                                      f"calibrated by version {number + 1}")
    path = _write_version(folder, number + 1, new, new_policy, reference, report)
    return Recalibration(True, number + 1, path, report)


def _recertify(calibrator: Calibrator, policy: DecisionPolicy | None, rows: CalibrationRows,
               extra_probs: np.ndarray, extra_y: np.ndarray, seed: int) -> DecisionPolicy:
    """The old policy's target, certified on the calibration rows calibrated out of fold (5 folds; each fold's
    calibrator also sees the reviewed training labels)."""
    if policy is None or policy.target_accuracy is None:
        return policy or DecisionPolicy(threshold=None, target_accuracy=None, certified=False,
                                        method="no policy to re-certify: everything goes to review")
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
    calibrated = np.zeros_like(rows.probs)
    for fit, apply in folds.split(rows.probs, rows.y):
        fold = clone(calibrator).fit(np.vstack([rows.probs[fit], extra_probs]), np.concatenate([rows.y[fit], extra_y]))
        calibrated[apply] = fold.predict_proba(rows.probs[apply])
    certificate = certify_threshold(calibrated.max(1), calibrated.argmax(1) == rows.y,
                                    target_accuracy=policy.target_accuracy, level=CERTIFICATE_LEVEL)
    return DecisionPolicy.from_certificate(certificate)


def _write_version(folder: Path, number: int, calibrator: Calibrator, policy: DecisionPolicy,
                   reference: Reference, report: dict[str, Any]) -> Path:
    """Write ``versions/vN`` complete in a temporary folder, then rename it into place (atomic)."""
    root = folder / VERSIONS_DIR
    root.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{number}.", dir=root))
    calibrator.save(staging / CALIBRATOR_FILE)
    policy.save(staging / POLICY_FILE)
    reference.save(staging / REFERENCE_FILE)
    atomic_write_json(staging / REPORT_FILE, report)
    files = {name: sha256_file(staging / name) for name in (CALIBRATOR_FILE, POLICY_FILE, REFERENCE_FILE, REPORT_FILE)}
    atomic_write_json(staging / VERSION_MANIFEST, {"format": "confidently.bundle_version", "version": number,
                                                   "parent": number - 1, "files": files})
    os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private
    target = root / f"v{number}"
    try:
        os.rename(staging, target)  # fails if another run wrote this version first: nothing is overwritten
    except OSError:
        raise ArtifactError(f"{target} already exists: another recalibration wrote version {number}; "
                            "run again to build on it") from None
    return target


def _optional_calibrator(path: Path) -> Calibrator | None:
    return load_calibrator(path) if path.exists() else None


def _optional_policy(path: Path) -> DecisionPolicy | None:
    return DecisionPolicy.load(path) if path.exists() else None


def write_calibration_rows(path: str | Path, labels: Sequence[str], probs: ArrayLike, y: ArrayLike,
                           other_mass: ArrayLike) -> None:
    """Save the rows a calibrator was fitted on, for recalibration and the reference distribution."""
    raw = check_probs(probs, n_classes=len(labels))
    rows = CalibrationRows(tuple(labels), raw, check_labels(y, n_samples=len(raw), n_classes=len(labels)),
                           np.asarray(other_mass, dtype=float).reshape(len(raw)))
    atomic_write_json(path, rows.to_dict())


def version_label(manifest_sha256: str | None, number: int) -> str | None:
    """The name responses give a bundle version: the folder's manifest hash (12 hex digits) and the number."""
    return None if manifest_sha256 is None else f"{manifest_sha256[:12]}.v{number}"
