"""The main jobs end to end: score the splits (cached), calibrate, measure, write the report.

``run_evaluate`` is ``confidently evaluate``; ``run_demo`` is ``confidently demo``, the original
write-up's study done honestly on the generated dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from confidently.bundle.bundle import (CALIBRATOR_FILE, CONFORMAL_FILE, MANIFEST_FILE, POLICY_FILE, ModelIdentity,
                                       write_bundle)
from confidently.bundle.seen import SEEN_FILE, seen_payload
from confidently.bundle.versions import VERSIONS_DIR, version_numbers
from confidently.scoring.classifier import Classifier
from confidently.data import Dataset, generate_sentiment, save_dataset, split_dataset, stratified_sample
from confidently.errors import ConfigError, DataError
from confidently.decision.decisions import decide
from confidently.workflows.evaluation import (CONTENT_FREE_INPUTS, SLICE_COLUMNS, Evaluation, EvaluationConfig,
                                    evaluate_scores, slice_table)
from confidently.feedback.payloads import production_payloads
from confidently.progress import announce
from confidently.tasks.nearest import NEAREST_FILE
from confidently.report.evaluation import write_evaluation
from confidently.scoring.checkpointed import score_datasets
from confidently.types import Answers, Scores


DEFAULT_CONFIG = EvaluationConfig()  # frozen: one shared default is safe


def content_free_scores(clf: Classifier, inputs=CONTENT_FREE_INPUTS) -> np.ndarray:
    """Raw class probabilities on content-free inputs (contextual calibration, Zhao et al. 2021); for a prompt
    ensemble from the prompts' mean class mass, as :meth:`Scores.ensemble` gives its raw scores."""
    masses = []
    for asked in clf.prompt_classifiers:
        prompts = [asked.prompt(text) for text in inputs]
        masses.append(asked.backend.score_prompts(prompts, asked.verbalizer, shared_prefix=asked.prefix)[0])
    mass = np.mean(masses, axis=0)
    return mass / mass.sum(axis=1, keepdims=True)


def _labels_of(ds: Dataset, clf: Classifier, split: str) -> np.ndarray:
    if ds.labels is None:
        raise DataError(f"the {split} data has no labels: calibration and evaluation need labelled rows")
    return ds.label_indices(clf.labels)


def conformal_groups(calibration: Dataset, test: Dataset, column: str | None) -> tuple[tuple, tuple] | None:
    """Both splits' values of ``column`` (for per-slice prediction sets), checked before any scoring."""
    if column is None:
        return None
    for name, ds in (("calibration", calibration), ("test", test)):
        if column not in ds.columns:
            known = ", ".join(sorted(ds.columns)) or "none"
            raise DataError(f"--conformal-by {column}: the {name} data has no column {column!r} (its extra columns: "
                            f"{known})", path=ds.source)
    return calibration.columns[column], test.columns[column]


@dataclass
class EvaluateResult:
    evaluation: Evaluation
    paths: dict[str, Path]
    scores: dict[str, Scores] | None = None  # raw scores of the calibration and test splits


def run_evaluate(clf: Classifier, calibration: Dataset, test: Dataset, out_dir: str | Path, *,
                 config: EvaluationConfig = DEFAULT_CONFIG, title: str = "confidently evaluation",
                 metadata: dict | None = None, progress: bool = True, probe: bool = False,
                 shots: int = 0, shot_selection: str = "balanced", shot_pool: int | None = None) -> EvaluateResult:
    """Score both splits, run the calibration study and write every output into ``out_dir``.

    With ``probe`` the final hidden states are kept while scoring and a hidden-state probe competes with
    the calibrators (chosen, like them, by cross-fitted log-loss on the calibration split; saved as
    ``probe.json`` when it wins). With ``shots`` > 0 that many class-balanced calibration rows become
    worked examples in the shared prompt prefix (:mod:`confidently.tasks.shots`); they are left out of
    calibration, and the bundle's task (and manifest, ``shots``) records them. With ``shot_selection``
    ``"nearest"`` a pool of ``shot_pool`` calibration rows (default: a quarter, bounded) is set aside instead and
    every text is asked with its own ``shots`` nearest pool rows (:mod:`confidently.tasks.nearest`); the pool
    is the bundle's ``nearest.json``. When ``clf``'s task has a
    prompt ensemble (:func:`~confidently.tasks.task.read_prompts`), every prompt's class masses are kept and
    the ensemble's combiner competes as the method ``ensemble``; the manifest's ``cost`` says what an
    item costs (forward passes, tokens).

    ``out_dir`` becomes a calibration bundle (:mod:`confidently.bundle.bundle`: manifest.json, calibrator.json,
    policy.json, conformal.json, seen_texts.json (fingerprints of the calibration and shot rows:
    :mod:`confidently.bundle.seen`), and the production loop's canary.json, reference.json and calibration_rows.json
    (with calibration_features.safetensors for a probe or combiner) from
    :func:`~confidently.feedback.payloads.production_payloads`) beside the report, metrics.json (which carries the
    same run record), summary.md, calibrators/ and scores.parquet.
    """
    out = Path(out_dir)
    ensemble = bool(clf.task.ensemble)
    if probe and ensemble:
        raise ConfigError("--probe and --prompts both fit a combiner on the scoring pass's features; use one")
    if probe and not clf.backend.exact:
        raise ConfigError(f"--probe reads the model's hidden states: the {clf.backend.name} backend has none; use a "
                          "local model (--backend transformers)")
    if probe and clf.scorer.black_box:
        raise ConfigError(f"--probe reads the hidden state of the logprob scorer's forward pass; the "
                          f"{clf.scorer.name} scorer generates answers and has none: use --scorer logprob")
    _labels_of(calibration, clf, "calibration")
    shot_record, full = None, calibration
    if shots:
        clf, calibration, shot_record = _with_shots(clf, calibration, shots, selection=shot_selection,
                                                    pool_size=shot_pool, seed=config.seed)
        announce(f"{shot_record.pop('summary')}; {len(calibration):,} of {len(full):,} calibration rows are left to "
                 "calibrate on", enabled=progress)
    y_cal, y_test = _labels_of(calibration, clf, "calibration"), _labels_of(test, clf, "test")
    groups = conformal_groups(calibration, test, config.conformal_by)
    announce(f"scoring {len(calibration):,} calibration + {len(test):,} test rows with {clf.backend.model_name}",
             enabled=progress)
    scores = score_datasets(clf, {"calibration": calibration, "test": test}, out / "score-cache", progress=progress,
                            hidden=probe or ensemble)
    n_methods = len(config.methods)
    announce(f"fitting {n_methods} calibration methods on {len(calibration):,} rows ({config.n_splits}-fold "
             f"cross-fitting), measuring them on {len(test):,} test rows, label-budget curve with "
             f"{config.budget_repeats} repeats", enabled=progress)
    # Contextual calibration reads next-token scores of content-free inputs: the logprob scorer's only.
    content_free = None if clf.scorer.black_box else content_free_scores(clf)
    evaluation = evaluate_scores(scores["calibration"].probs, y_cal, scores["test"].probs, y_test,
                                 labels=clf.labels, content_free=content_free, groups=groups,
                                 test_slices={c: test.columns[c] for c in SLICE_COLUMNS if c in test.columns},
                                 hidden=(scores["calibration"].hidden, scores["test"].hidden) if probe or ensemble
                                 else None, hidden_method="ensemble" if ensemble else "probe",
                                 truncated=(scores["calibration"].truncated, scores["test"].truncated), config=config)
    if cut := {split: int(scores[split].truncated.sum()) for split in scores if scores[split].truncated.any()}:
        evaluation.notes.append(
            "Texts cut to fit (--max-text-tokens / --max-text-chars): "
            + ", ".join(f"{n} of {len(scores[split])} {split} rows" for split, n in cut.items())
            + ". A truncated text is always decided review, so thresholds are certified and measured with these "
              "rows counted as reviewed (calibration and the other metrics use them like any row); raise "
              "--max-text-tokens to score long texts whole.")
    best = evaluation.methods[evaluation.best]
    shipped_sets = evaluation.sets.predictors[evaluation.sets.shipped]
    frames = []
    for split, ds, calibrated, how, split_groups in (
            ("calibration", calibration, best.crossfit_probs, f"out-of-fold ({config.n_splits}-fold cross-fitting)",
             None if groups is None else groups[0]),
            ("test", test, best.test_probs, "the bundle's calibrator", None if groups is None else groups[1])):
        frame = ds.to_frame()
        frame.insert(0, "split", split)
        frame = frame.join(scores[split].to_frame().set_index(frame.index))
        decisions = decide(scores[split].probs, labels=clf.labels, policy=evaluation.policy,
                           calibrated_probs=None if best.calibrator is None else calibrated,
                           prediction_sets=shipped_sets, groups=split_groups, rule=config.decision_rule,
                           truncated=scores[split].truncated)
        frame = frame.join(decisions.to_frame().set_index(frame.index))
        if decisions.calibrated:
            frame["calibrated_with"] = how
        frames.append(frame)
    announce(f"writing the calibration bundle and the report to {out}", enabled=progress)
    model = ModelIdentity.of(clf.backend)
    payloads = production_payloads(
        calibration.texts, y_cal, scores["calibration"].probs, scores["calibration"].other_mass, task=clf.task,
        chat=clf.chat, calibrator=best.calibrator, policy=evaluation.policy, scored_with=model.to_dict(),
        source=f"calibration split, {len(calibration)} rows (sha256 {calibration.sha256()[:12]})", seed=config.seed,
        hidden=scores["calibration"].hidden, truncated=scores["calibration"].truncated, prediction_sets=shipped_sets,
        decision_rule=config.decision_rule, groups=None if groups is None else groups[0])
    seen = {"calibration": calibration.texts,
            **({"shots": [full.texts[i] for i in shot_record["calibration_rows"]]} if shot_record else {})}
    bundle = write_bundle(
        out, model=model, task=clf.task, chat=clf.chat, calibrator=best.calibrator,
        policy=evaluation.policy, extra_json={**payloads.json, CONFORMAL_FILE: shipped_sets.to_dict(),
                                              SEEN_FILE: seen_payload(seen)},
        extra_files=payloads.files, scorer=clf.scorer,
        fitted_on={"rows_sha256": calibration.sha256(), "n_rows": len(calibration), "split": "calibration",
                   "test_rows_sha256": test.sha256(), "n_test_rows": len(test)},
        metadata={"calibration_method": evaluation.best, "policy_on_test": evaluation.policy_on_test,
                  "decision_rule": config.decision_rule, "prediction_sets": evaluation.sets.shipped,
                  **({"cost": prompt_cost(clf, calibration.texts[:COST_SAMPLE])} if ensemble or shots else {}),
                  **({"shots": shot_record} if shot_record else {})})
    if version_numbers(out):  # recalibrated from the bundle this run replaced: refused from now on (lineage)
        evaluation.notes.append(
            f"{out / VERSIONS_DIR} holds versions recalibrated from the bundle this run replaced: serve, classify, "
            "score and recalibrate refuse them now; move that folder away to use this bundle.")
    meta = {"model": clf.backend.model_name, "backend": clf.backend.name, "task": clf.task.name,
            "weights": clf.backend.fingerprint(), "scorer": clf.scorer.describe(), **(metadata or {})}
    for split in ("calibration", "test"):
        if scores[split].answers is not None:
            meta[f"answers ({split} split)"] = describe_answers(scores[split].answers)
    slices = slice_table(test, evaluation.methods["raw"].test_probs, best.test_probs, y_test, clf.labels)
    run = {key: value for key, value in bundle.manifest.items() if key not in ("format", "version")}
    paths = write_evaluation(evaluation, out, title=title, metadata=meta, scores=pd.concat(frames, ignore_index=True),
                             slices=slices, run=run)
    paths.update({"bundle": out / MANIFEST_FILE, "policy": out / POLICY_FILE,
                  "conformal": out / CONFORMAL_FILE,
                  **({"calibrator": out / CALIBRATOR_FILE} if bundle.calibrator is not None else {})})
    return EvaluateResult(evaluation, paths, scores)


def _with_shots(clf: Classifier, calibration: Dataset, k: int, *, selection: str, pool_size: int | None,
                seed: int) -> tuple[Classifier, Dataset, dict]:
    """``clf`` asking with ``k`` shots chosen by ``selection`` (``balanced`` or ``nearest``), the calibration rows
    left, and the manifest's record of the rows used (with a one-line ``summary``)."""
    from confidently.tasks.nearest import nearest_shot_classifier
    from confidently.tasks.shots import shot_classifier

    if selection == "nearest":
        clf, rest, pool = nearest_shot_classifier(clf, calibration, k, pool_size=pool_size, seed=seed)
        return clf, rest, {
            "k": k, "selection": "nearest", "calibration_rows": list(pool.indices),
            "n_calibration_rows_before": len(calibration), "file": NEAREST_FILE,
            "how": f"a seeded random pool of {len(pool.indices)} calibration rows, left out of calibration; every "
                   f"other text is asked with its {k} nearest pool rows (TF-IDF cosine, {k // len(clf.labels)} of "
                   "each class first), the most similar last",
            "summary": f"{len(pool.indices)} calibration rows become the shot pool; each text gets its {k} nearest"}
    if selection != "balanced":
        raise ConfigError(f"shot selection must be balanced or nearest, got {selection!r}")
    clf, rest, chosen = shot_classifier(clf, calibration, k, seed=seed)
    return clf, rest, {"k": k, "selection": "balanced", "calibration_rows": list(chosen.indices),
                       "n_calibration_rows_before": len(calibration),
                       "how": "class-balanced, seeded; the rows are left out of calibration",
                       "summary": f"{k} calibration rows become worked examples in the prompt"}


#: Calibration texts whose prompts :func:`prompt_cost` counts (tokenizing is cheap, but not free on big splits).
COST_SAMPLE = 200


def prompt_cost(clf: Classifier, texts) -> dict:
    """What scoring one item costs the logprob scorer: forward passes (one per prompt of an ensemble) and
    tokens (mean over ``texts``), whole prompts and past each prompt's shared prefix (whose KV cache is
    computed once per run)."""
    asked = clf.prompt_classifiers
    texts = list(texts)
    whole = sum(np.mean([a.backend.count_tokens(a.prompt(t)) for t in texts]) for a in asked) if texts else 0.0
    prefixes = sum(a.backend.count_tokens(a.prefix) for a in asked)
    return {"forward_passes_per_item": len(asked), "prompt_tokens_per_item": float(whole),
            "tokens_past_prefix_per_item": float(whole - prefixes) if texts else 0.0,
            "how": f"mean over {len(texts)} calibration texts; the prefix's tokens are computed once per run"}


def describe_answers(answers: Answers) -> str:
    """One line: what a black-box scorer's answers came to, and what they cost per item."""
    summary = answers.summary()
    counts = ", ".join(f"{count} {outcome}" for outcome, count in summary["outcomes"].items() if count)
    return (f"{summary['n']} rows: {counts or 'none'}; {summary['unusable_answers']} unusable answers in all; "
            f"{summary['calls_per_item']:.2f} generations and {summary['tokens_per_item']:.1f} generated tokens "
            "per item")


def split_for_evaluation(dataset: Dataset, *, seed: int = 42, calibration_fraction: float = 0.5) -> tuple[Dataset, Dataset]:
    """Deduplicate and split one labelled dataset into calibration and test (stratified, no shared text)."""
    if not 0 < calibration_fraction < 1:
        raise DataError(f"calibration fraction must be between 0 and 1, got {calibration_fraction}")
    splits = split_dataset(dataset, fractions=(0.0, calibration_fraction, 1 - calibration_fraction), seed=seed)
    return splits.calibration, splits.test


def check_evaluation_splits(calibration: Dataset, test: Dataset, labels: Sequence[str], *, how: str,
                            fraction: float | None = None) -> None:
    """Refuse splits ``evaluate`` cannot work with, before anything is scored: an empty test split, or a
    calibration split without rows of every label (calibrators and per-class prediction sets need them).

    ``how`` says where the splits came from (the two files, or the split of one); ``fraction`` is the
    calibration fraction when one file was split, so the advice can name it.
    """
    if not len(test):
        advice = "lower --calibration-fraction or label more data" if fraction is not None else "label more data"
        raise DataError(f"the test split has no rows ({how}): {advice}")
    missing = [label for label in labels if label not in set(calibration.labels or ())]
    if missing:
        advice = "raise --calibration-fraction or label more data" if fraction is not None else "label more data"
        raise DataError(f"the calibration split has {len(calibration)} row{'s' if len(calibration) != 1 else ''} "
                        f"({how}) and none labelled {', '.join(missing)}: every label needs calibration rows; "
                        f"{advice}")


def run_demo(out_dir: str | Path, *, clf: Classifier, n: int = 10000, eval_size: int = 1000, seed: int = 42,
             config: EvaluationConfig = DEFAULT_CONFIG, finetune_config=None,
             progress: bool = True) -> EvaluateResult:
    """The original study, honestly: generate, split without leaks, score, calibrate, report.

    With ``finetune_config`` (a :class:`~confidently.finetune.FinetuneConfig` for ``clf``'s model), a
    LoRA adapter is also trained on the train split, calibrated on the calibration split, and compared
    with the base model on the same test sample (``OUT/adapter``, ``OUT/compare/report.html``).
    """
    out = Path(out_dir)
    announce(f"generating {n:,} sentiment rows (seed {seed}) and splitting them 70/15/15 with no text shared",
             enabled=progress)
    dataset = generate_sentiment(n=n, seed=seed)
    splits = split_dataset(dataset, seed=seed)
    for name, ds in splits.items():
        save_dataset(ds, out / "data" / f"{name}.jsonl")
    test = stratified_sample(splits.test, min(eval_size, len(splits.test)), seed=seed)
    metadata = {"data": f"generated sentiment set, n={n}, seed={seed}; split 70/15/15 after deduplication; "
                        f"test = stratified sample of {len(test)} from the {len(splits.test)}-row test split"}
    result = run_evaluate(clf, splits.calibration, test, out, config=config, metadata=metadata, progress=progress,
                          title="confidently demo: calibrated sentiment on the generated 8-category set")
    if finetune_config is not None:
        from confidently.workflows.comparison import compare
        from confidently.finetune.report import write_comparison
        from confidently.finetune import finetune

        announce(f"fine-tuning a LoRA adapter on {len(splits.train):,} train rows, calibrating it on "
                 f"{len(splits.calibration):,}", enabled=progress)
        adapter = finetune(splits.train, out / "adapter", finetune_config, calibration=splits.calibration,
                           backend=clf.backend, progress=progress).path
        announce(f"comparing base and fine-tuned on the same {len(test):,} test rows", enabled=progress)
        comparison = compare(test, adapter, backend=clf.backend, calibration=splits.calibration,
                             cache_dir=out / "compare-cache", progress=progress)
        result.paths.update({f"compare_{k}": v for k, v in write_comparison(comparison, out / "compare").items()})
    return result
