"""The scorers side by side on the same rows: ``confidently compare-scorers``.

Each scorer gets a full ``evaluate`` run in ``OUT/<scorer>/`` (report, calibration bundle recording
that scorer), on the same calibration and test splits and with the same study settings; the table
puts their test-split figures next to each other, with what their scores cost.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from confidently.scoring.classifier import Classifier
from confidently.data import Dataset
from confidently.workflows.evaluation import EvaluationConfig
from confidently.files import atomic_write_json, atomic_write_text
from confidently.workflows.pipeline import DEFAULT_CONFIG, EvaluateResult, run_evaluate
from confidently.progress import announce
from confidently.scorers import ScorerSpec
from confidently.scoring.checkpointed import score_datasets


@dataclass
class ScorerRun:
    """One scorer's evaluate run and the wall time its scoring took (both splits)."""

    spec: ScorerSpec
    result: EvaluateResult
    scoring_s: float


def with_scorer(clf: Classifier, spec: ScorerSpec) -> Classifier:
    """``clf`` with another scorer, on the same loaded backend (the model is not loaded again)."""
    return Classifier(clf.backend.model_name, clf.task, backend=clf.backend, batch_size=clf.batch_size,
                      chat=clf.chat, max_text_tokens=clf.max_text_tokens, max_text_chars=clf.max_text_chars,
                      truncation=clf.truncation, scorer=spec)


def compare_scorers(clf: Classifier, specs: Sequence[ScorerSpec], calibration: Dataset, test: Dataset,
                    out_dir: str | Path, *, config: EvaluationConfig = DEFAULT_CONFIG,
                    metadata: dict | None = None, progress: bool = True) -> list[ScorerRun]:
    """Run ``evaluate`` once per scorer on the same splits; write ``scorers.json`` and ``scorers.md``."""
    out = Path(out_dir)
    runs = []
    for spec in specs:
        scored = with_scorer(clf, spec)
        folder = out / spec.name
        announce(f"scorer {spec.describe()}", enabled=progress)
        started = time.perf_counter()
        # Scored here first, timed on its own; run_evaluate then finds every row in the same cache.
        score_datasets(scored, {"calibration": calibration, "test": test}, folder / "score-cache", progress=progress)
        scoring_s = time.perf_counter() - started
        result = run_evaluate(scored, calibration, test, folder, config=config, progress=progress,
                              title=f"confidently evaluation, scorer {spec.name}",
                              metadata={**(metadata or {}), "scoring wall time (s)": round(scoring_s, 1)})
        runs.append(ScorerRun(spec, result, scoring_s))
    rows = comparison_rows(runs)
    atomic_write_json(out / "scorers.json", {"how": HOW, "rows": rows})
    atomic_write_text(out / "scorers.md", comparison_markdown(rows))
    return runs


HOW = ("same calibration and test rows for every scorer; figures on the test split with 95% bootstrap intervals; "
       "AUROC of the raw confidence at telling right from wrong answers; ECE with 20 equal-width bins, raw and "
       "after the calibrator the study chose on the calibration split (cross-fitted NLL); certified threshold "
       "chosen on the calibration split (Learn-Then-Test) and its coverage measured on the test split; "
       "calls = model calls per item (one forward pass, or one generated answer); tokens = generated tokens "
       "per item; scoring wall time for both splits on this machine")


def comparison_rows(runs: Sequence[ScorerRun]) -> list[dict]:
    """One JSON-able row per scorer (the figures :data:`HOW` describes)."""
    rows = []
    for run in runs:
        evaluation = run.result.evaluation
        headline = evaluation.headline()
        raw = evaluation.methods["raw"].test["metrics"]
        scores = run.result.scores
        answers = [s.answers for s in scores.values()] if scores else []
        n_items = sum(len(s) for s in scores.values()) if scores else 0
        if answers and all(a is not None for a in answers):
            calls = sum(int(a.calls.sum()) for a in answers) / n_items
            tokens = sum(int(a.tokens.sum()) for a in answers) / n_items
            unusable_rows = sum(int((a.outcome != "ok").sum()) for a in answers)
            outcomes = {o: sum(a.summary()["outcomes"][o] for a in answers) for o in answers[0].summary()["outcomes"]}
        else:
            calls, tokens, unusable_rows, outcomes = 1.0, 0.0, 0, {"ok": n_items}
        on_test = headline["policy_on_test"]
        rows.append({
            "scorer": run.spec.name, "parameters": run.spec.to_dict(), "n_calibration": headline["n_calibration"],
            "n_test": headline["n_test"], "accuracy_raw": raw["accuracy"], "auroc_raw": raw["auroc"],
            "ece_raw": headline["ece_raw"], "ece_calibrated": headline["ece_calibrated"],
            "calibrator": headline["best_method"], "threshold": evaluation.policy.threshold,
            "target_accuracy": evaluation.config.target_accuracy, "coverage_on_test": on_test["coverage"],
            "accuracy_automated_on_test": on_test["accuracy_automated"], "calls_per_item": calls,
            "tokens_per_item": tokens, "rows_without_usable_answer": unusable_rows, "outcomes": outcomes,
            "scoring_wall_s": run.scoring_s,
        })
    return rows


def _metric(metric: dict) -> str:
    value, low, high = metric.get("value"), metric.get("ci_low"), metric.get("ci_high")
    if value is None:
        return "–"
    return f"{value:.3f}" if low is None or high is None else f"{value:.3f} [{low:.3f}, {high:.3f}]"


def comparison_markdown(rows: Sequence[dict]) -> str:
    """The side-by-side table as Markdown, with how every figure was computed."""
    header = ("| scorer | accuracy | AUROC | ECE raw | ECE calibrated | certified coverage | accuracy automated "
              "| calls/item | tokens/item | rows without a usable answer | scoring wall s |")
    lines = [header, "|" + " --- |" * (header.count("|") - 1)]
    for row in rows:
        threshold = "none" if row["threshold"] is None else f"{row['coverage_on_test']:.1%} (t={row['threshold']:.2f})"
        automated = row["accuracy_automated_on_test"]
        lines.append(
            f"| {row['scorer']} | {_metric(row['accuracy_raw'])} | {_metric(row['auroc_raw'])} | "
            f"{_metric(row['ece_raw'])} | {_metric(row['ece_calibrated'])} ({row['calibrator']}) | {threshold} | "
            f"{'–' if automated is None else f'{automated:.1%}'} | {row['calls_per_item']:.2f} | "
            f"{row['tokens_per_item']:.1f} | {row['rows_without_usable_answer']} | {row['scoring_wall_s']:.0f} |")
    n_cal, n_test = (rows[0]["n_calibration"], rows[0]["n_test"]) if rows else (0, 0)
    target = rows[0]["target_accuracy"] if rows else 0.95
    return ("\n".join(lines) + f"\n\nn = {n_cal} calibration + {n_test} test rows; certified coverage: share of the "
            f"test split automated at the {target:.0%} accuracy target. How: {HOW}.\n")
