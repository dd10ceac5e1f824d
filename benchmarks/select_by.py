"""Would choosing the shipped calibrator by certified coverage beat ``evaluate``'s cross-fitted log-loss choice?
Measured on cached real scores; it does not (README, Guarantees), so ``evaluate`` keeps log-loss.

The coverage rule measured: every candidate certifies its threshold at level ``1 - delta / M`` (``M``
candidates; Bonferroni, so the chosen one keeps the guarantee at ``1 - delta`` whichever is chosen), and the
one whose certificate automates the largest share of its out-of-fold calibration rows ships (ties: the lower
cross-fitted log-loss). The log-loss rule is ``evaluate_scores`` itself.

For every cached score set of ``benchmarks/isotonic_ties.py`` (``DEFAULT_SETS``, those that exist and are
complete; its ``complete_sets`` loads them) and every split seed (42 and 1-9 by default: 50/50 splits by
``split_for_evaluation``), ``evaluate_scores`` runs once per target accuracy (95% and 90%; level 95%, the
fallback procedure, 5 folds) with the candidates ``evaluate`` has without content-free scores (the supervised
calibrators, ``batch`` and ``batch+platt``; ``--methods`` names others), and the coverage rule chooses among
the same out-of-fold scores. Printed per set and over all set-splits, per target and rule: in how many
set-splits a threshold is certified, the mean share of the test rows it automates (0 where none), in how many
its automated test rows are less accurate than the target (a finite test sample: this counts test noise too,
not only broken guarantees), and which methods shipped. Nothing is scored.

``--validity RUNS`` instead simulates why the split is needed: M methods rank the same rows by uninformative
confidences, every row right with probability 0.898, so every certificate at 90% is wrong; choosing the
largest certified coverage is then wrong whenever any method certifies.

    PYTHONPATH=src python benchmarks/select_by.py --out /tmp/select_by.json
    PYTHONPATH=src python benchmarks/select_by.py --methods platt,isotonic
    PYTHONPATH=src python benchmarks/select_by.py --validity 1000
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from boost import LEVEL, TARGETS
from isotonic_ties import SELECTION, complete_sets
from confidently.calibration import CalibrationWarning
from confidently.decision.thresholds import certify_threshold
from confidently.workflows.evaluation import Evaluation, EvaluationConfig, evaluate_scores

SPLIT_SEEDS = (42, *range(1, 10))
RULES = ("log-loss", "coverage")


def outcome(method: str, threshold: float | None, test_probs: np.ndarray, y_test: np.ndarray, target: float) -> dict:
    """What automating ``method``'s test rows at ``threshold`` (None: nothing) does."""
    automated = test_probs.max(1) >= threshold if threshold is not None else np.zeros(y_test.size, bool)
    accuracy = float((test_probs.argmax(1) == y_test)[automated].mean()) if automated.any() else None
    return {"method": method, "threshold": threshold, "coverage": float(automated.mean()),
            "accuracy_automated": accuracy, "below_target": accuracy is not None and accuracy < target}


def by_coverage(evaluation: Evaluation, target: float) -> dict:
    """The coverage rule on the study's candidates: each certified at 1 - delta/M, the largest share ships."""
    candidates = [name for name in evaluation.methods if name != "raw"]
    level = 1 - (1 - LEVEL) / len(candidates)
    y_cal = evaluation.y_calibration
    certificates = {name: certify_threshold(evaluation.methods[name].crossfit_probs.max(1),
                                            evaluation.methods[name].crossfit_probs.argmax(1) == y_cal,
                                            target_accuracy=target, level=level) for name in candidates}
    nll = {name: evaluation.methods[name].crossfit["metrics"]["nll"]["value"] for name in candidates}
    best = min(candidates, key=lambda name: (-certificates[name].coverage, nll[name]))
    return {**outcome(best, certificates[best].threshold, evaluation.methods[best].test_probs, evaluation.y_test,
                      target), "n_candidates": len(candidates), "level_per_method": level}


def both_rules(cal, y_cal, test, y_test, target: float, methods: tuple[str, ...]) -> dict:
    config = EvaluationConfig(methods=methods, target_accuracy=target, level=LEVEL, budget_sizes=(),
                              budget_methods=(), n_resamples=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        evaluation = evaluate_scores(cal, y_cal, test, y_test, labels=tuple(map(str, range(cal.shape[1]))),
                                     config=config)
    chosen = evaluation.methods[evaluation.best]
    return {"log-loss": outcome(evaluation.best, evaluation.policy.threshold, chosen.test_probs, y_test, target),
            "coverage": by_coverage(evaluation, target)}


def summary(rows: list[dict]) -> str:
    """Per target and rule: set-splits certified, mean test coverage, set-splits below target, winners."""
    lines = []
    for target in TARGETS:
        for rule in RULES:
            cells = [r[f"{target:.2f}"][rule] for r in rows]
            wins = Counter(c["method"] for c in cells)
            lines.append(f"  {target:.0%} target, {rule}: certifies in {sum(c['threshold'] is not None for c in cells)}"
                         f"/{len(cells)}, mean test coverage {np.mean([c['coverage'] for c in cells]):.1%}, "
                         f"automated test accuracy below target in {sum(c['below_target'] for c in cells)}; "
                         f"shipped {', '.join(f'{m} {k}' for m, k in wins.most_common())}")
        gains = [r[f"{target:.2f}"]["coverage"]["coverage"] - r[f"{target:.2f}"]["log-loss"]["coverage"] for r in rows]
        lines.append(f"  {target:.0%} target, coverage rule against log-loss: more test coverage in "
                     f"{sum(g > 1e-12 for g in gains)}, less in {sum(g < -1e-12 for g in gains)}, the same in "
                     f"{sum(abs(g) <= 1e-12 for g in gains)}")
    return "\n".join(lines)


def validity(runs: int, n_methods: tuple[int, ...] = (2, 4, 8), n: int = 436, target: float = 0.9) -> None:
    """Failure rate of the coverage choice among M uninformative methods, with and without the delta/M split."""
    rng = np.random.default_rng(0)
    for m in n_methods:
        for level in (LEVEL, 1 - (1 - LEVEL) / m):
            failures = 0
            for _ in range(runs):
                right = rng.random(n) < target - 0.002
                # confidence 0.5 + 0.5 * Beta(5, 1), unrelated to being right: every certificate is wrong
                failures += any(certify_threshold(0.5 + 0.5 * rng.beta(5, 1, n), right, target_accuracy=target,
                                                  level=level).certified for _ in range(m))
            print(f"M = {m}, each certified at {level:.4g}: the chosen certificate is wrong in {failures} of {runs} "
                  f"runs ({failures / runs:.1%}; promised <= {1 - LEVEL:.0%})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-seeds", type=int, nargs="+", default=list(SPLIT_SEEDS))
    parser.add_argument("--methods", default=",".join(SELECTION),
                        help="the candidates, comma-separated (default: evaluate's without content-free scores)")
    parser.add_argument("--out", default=None, help="write every figure as JSON here")
    parser.add_argument("--validity", type=int, default=None, metavar="RUNS",
                        help="only simulate the choice's guarantee with and without the delta/M split")
    args = parser.parse_args()
    if args.validity:
        validity(args.validity)
        return
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    results: dict[str, list[dict]] = {}
    for name, splits in complete_sets(None, args.split_seeds):
        rows = [{"seed": seed, "n_calibration": int(split[1].size), "n_test": int(split[3].size),
                 **{f"{target:.2f}": both_rules(*split, target, methods) for target in TARGETS}}
                for seed, split in splits.items()]
        results[name] = rows
        print(f"{name} ({rows[0]['n_calibration']} + {rows[0]['n_test']} rows, {len(rows)} splits):\n{summary(rows)}",
              flush=True)
    every = [row for rows in results.values() for row in rows]
    print(f"\nOver all {len(every)} set-splits ({len(results)} sets):\n{summary(every)}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
