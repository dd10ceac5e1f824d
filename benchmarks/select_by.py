"""Choosing the shipped calibrator by certified coverage (``--select-by coverage``) against by log-loss, on
cached real scores.

For every cached score set of ``benchmarks/isotonic_ties.py`` (``DEFAULT_SETS``, those that exist and are
complete; its ``cached_splits`` loads them) and every split seed (42 and 1-9 by default: 50/50 splits by
``split_for_evaluation``), ``evaluate_scores`` runs once per rule and target accuracy (95% and 90%; level 95%,
the fallback procedure, 5 folds) with the candidates ``evaluate`` has without content-free scores (the
supervised calibrators, ``batch`` and ``batch+platt``; ``--methods`` names others). Printed per set and over all set-splits, per rule
and target: in how many set-splits the shipped policy certifies a threshold, the mean share of the test
rows it automates (0 where none), and in how many set-splits its automated test rows are less accurate
than the target (what the guarantee bounds: at most 5% of calibration draws); with which method won.
Nothing is scored.

    PYTHONPATH=src python benchmarks/select_by.py --out /tmp/select_by.json
    PYTHONPATH=src python benchmarks/select_by.py --methods platt,isotonic
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from boost import TARGETS
from isotonic_ties import DEFAULT_SETS, SELECTION, IncompleteCache, cached_splits
from confidently.calibration import CalibrationWarning
from confidently.defaults import SELECTION_RULES
from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores

SPLIT_SEEDS = (42, *range(1, 10))


def shipped(cal, y_cal, test, y_test, rule: str, target: float, methods: tuple[str, ...] = SELECTION) -> dict:
    """What the policy ``evaluate`` ships under ``rule``, choosing among ``methods``, does on the test split."""
    config = EvaluationConfig(methods=methods, target_accuracy=target, select_by=rule, budget_sizes=(),
                              budget_methods=(), n_resamples=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)
        evaluation = evaluate_scores(cal, y_cal, test, y_test, labels=tuple(map(str, range(cal.shape[1]))), config=config)
    on_test = evaluation.policy_on_test
    accuracy = on_test["accuracy_automated"]
    return {"method": evaluation.best, "threshold": evaluation.policy.threshold, "coverage": on_test["coverage"],
            "accuracy_automated": accuracy, "below_target": accuracy is not None and accuracy < target,
            "level_per_method": evaluation.selection.level_per_method}


def summary(rows: list[dict]) -> str:
    """Per target and rule: set-splits certified, mean test coverage, set-splits below target, winners."""
    lines = []
    for target in TARGETS:
        for rule in SELECTION_RULES:
            cells = [r[f"{rule} at {target:.2f}"] for r in rows]
            wins = Counter(c["method"] for c in cells)
            lines.append(f"  {target:.0%} target, {rule}: certifies in {sum(c['threshold'] is not None for c in cells)}"
                         f"/{len(cells)}, mean test coverage {np.mean([c['coverage'] for c in cells]):.1%}, "
                         f"automated test accuracy below target in {sum(c['below_target'] for c in cells)}; "
                         f"shipped {', '.join(f'{m} {k}' for m, k in wins.most_common())}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split-seeds", type=int, nargs="+", default=list(SPLIT_SEEDS))
    parser.add_argument("--methods", default=",".join(SELECTION),
                        help="the candidates, comma-separated (default: evaluate's without content-free scores)")
    parser.add_argument("--out", default=None, help="write every figure as JSON here")
    args = parser.parse_args()
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    sets = [s for s in DEFAULT_SETS if (Path(s[1]) / "manifest.json").exists() and Path(s[2]).exists()]
    results: dict[str, list[dict]] = {}
    for name, cache, data in sets:
        try:
            splits = {seed: cached_splits(cache, data, seed) for seed in args.split_seeds}
        except IncompleteCache as error:
            print(f"{name}: skipped, {error}", flush=True)
            continue
        rows = []
        for seed, split in splits.items():
            row = {"seed": seed, "n_calibration": int(split[1].size), "n_test": int(split[3].size)}
            for target in TARGETS:
                for rule in SELECTION_RULES:
                    row[f"{rule} at {target:.2f}"] = shipped(*split, rule, target, methods)
            rows.append(row)
        results[name] = rows
        print(f"{name} ({rows[0]['n_calibration']} + {rows[0]['n_test']} rows, {len(rows)} splits):\n{summary(rows)}",
              flush=True)
    every = [row for rows in results.values() for row in rows]
    print(f"\nOver all {len(every)} set-splits ({len(results)} sets):\n{summary(every)}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
