"""How much each Learn-Then-Test procedure certifies, side by side, on real cached scores.

Reads the class masses a scorer left in score caches (``confidently.scoring.checkpointed``: one folder
per prompt, the ``--cache`` folders of ``benchmarks/boost.py``), joins them to the labelled rows of
``--data`` by text, and for each cache, calibration size and random split does what the product does:
Platt cross-fitted (5 folds) on the calibration rows, every procedure certifying a threshold on those
out-of-fold confidences, Platt refitted on all calibration rows deciding the remaining rows (the test
rows). It prints, per target, the mean share of test rows each procedure automates (0 when it
certifies nothing), the share of splits where it certified anything, and the share of splits whose
automated test rows were less accurate than the target (a finite test split, so this scatters around
the true failure rate; the guarantee is checked exactly in ``tests/test_certification_validity.py``).

Procedures (every one keeps the chance of certifying a threshold below the target <= 1 - level):

* ``fixed-sequence``: the earlier default (strictest threshold with enough rows for one error first,
  stop at the first failure);
* ``fixed-seq from n/4``: the same, started at the strictest threshold automating a quarter of the rows
  (a label-free minimum count fixed in advance for power);
* ``bonferroni 2 starts``: two fixed sequences each at half of delta, one from the strictest threshold
  with enough rows for one error at that level, one from the strictest automating a quarter of the
  rows; certified: the looser of the two;
* ``selection split``: a random third of the calibration rows chooses where a fixed sequence at the
  whole delta starts (one grid step stricter than the loosest threshold those rows put at or above the
  target); the other two thirds test it (no row both chooses and tests);
* ``fallback``: the default (:mod:`confidently.decision.procedures`).

    PYTHONPATH=src python benchmarks/certification_power.py --data ../shared/datasets/sst2_dev.jsonl \\
        --caches /tmp/boost/zs-cache /tmp/boost/prompt-critic-liked-cache /tmp/boost/prompt-review-polarity-cache
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

from confidently.calibration import cross_fit_predict, make_calibrator
from confidently.data import load_dataset
from confidently.decision.binomial import min_automated_for
from confidently.decision.procedures import FALLBACK, FIXED_SEQUENCE
from confidently.decision.thresholds import certify_threshold, threshold_grid
from confidently.scoring.checkpointed import ScoreStore, text_key

PROCEDURES = ("fixed-sequence", "fixed-seq from n/4", "bonferroni 2 starts", "selection split", "fallback")


def cached_probs(cache: Path, texts: list[str]) -> np.ndarray:
    """Raw class probabilities of ``texts`` from one score cache (every text must be there)."""
    manifest = json.loads((cache / "manifest.json").read_text(encoding="utf-8"))
    keys, scores = ScoreStore(cache, manifest["fingerprint"], manifest["labels"]).load()
    row = {key: i for i, key in enumerate(keys)}
    missing = sum(text_key(t) not in row for t in texts)
    if missing:
        raise SystemExit(f"{cache}: {missing} of the {len(texts)} texts of --data are not in this cache")
    return scores.probs[[row[text_key(t)] for t in texts]]


def certify_all(conf: np.ndarray, correct: np.ndarray, target: float, level: float,
                rng: np.random.Generator) -> dict[str, float | None]:
    """The threshold every procedure certifies on these out-of-fold confidences (None: nothing)."""
    n = conf.size
    out = {name: certify_threshold(conf, correct, target_accuracy=target, level=level, procedure=name).threshold
           for name in (FIXED_SEQUENCE, FALLBACK)}
    quarter = max(min_automated_for(target, level), math.ceil(n / 4))
    out["fixed-seq from n/4"] = certify_threshold(conf, correct, target_accuracy=target, level=level,
                                                  procedure=FIXED_SEQUENCE, min_automated=quarter).threshold
    half = 1 - (1 - level) / 2
    strict = min_automated_for(target, half)
    both = [certify_threshold(conf, correct, target_accuracy=target, level=half, procedure=FIXED_SEQUENCE,
                              min_automated=count).threshold for count in (strict, max(strict, math.ceil(n / 4)))]
    out["bonferroni 2 starts"] = min((t for t in both if t is not None), default=None)
    out["selection split"] = selection_split(conf, correct, target, level, rng)
    return out


def selection_split(conf: np.ndarray, correct: np.ndarray, target: float, level: float,
                    rng: np.random.Generator) -> float | None:
    """A third of the rows picks the start (one step above the loosest threshold they put at or above the
    target); a fixed sequence from there tests on the other two thirds."""
    choose = np.zeros(conf.size, bool)
    choose[rng.choice(conf.size, size=conf.size // 3, replace=False)] = True
    grid = threshold_grid()
    good = [t for t in grid if (conf[choose] >= t).sum() > 0 and correct[choose][conf[choose] >= t].mean() >= target]
    start = grid[-1] if not good else grid[min(np.searchsorted(grid, min(good)) + 1, grid.size - 1)]
    tested = grid[grid <= start]
    return certify_threshold(conf[~choose], correct[~choose], target_accuracy=target, level=level,
                             thresholds=tested, procedure=FIXED_SEQUENCE).threshold


def run(probs: np.ndarray, y: np.ndarray, n_cal: int, splits: int, targets: list[float], level: float,
        seed: int) -> dict:
    """Per target and procedure: test coverage, whether anything was certified, and test accuracy below target."""
    rng = np.random.default_rng(seed)
    found = {t: {p: [] for p in PROCEDURES} for t in targets}
    for split in range(splits):
        order = rng.permutation(y.size)
        cal, test = order[:n_cal], order[n_cal:]
        out_of_fold = cross_fit_predict("platt", probs[cal], y[cal], n_splits=5, seed=split)
        on_test = make_calibrator("platt").fit(probs[cal], y[cal]).predict_proba(probs[test])
        right_on_test = on_test.argmax(1) == y[test]
        for target in targets:
            chosen = certify_all(out_of_fold.max(1), out_of_fold.argmax(1) == y[cal], target, level, rng)
            for name, threshold in chosen.items():
                automated = on_test.max(1) >= threshold if threshold is not None else np.zeros(test.size, bool)
                found[target][name].append((automated.mean(), threshold is not None,
                                            automated.any() and right_on_test[automated].mean() < target))
    return {t: {p: np.array(v, float).mean(0) for p, v in per.items()} for t, per in found.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="Labelled rows (text, label) the caches scored.")
    parser.add_argument("--caches", type=Path, nargs="+", required=True, help="Score-cache folders, one per scorer.")
    parser.add_argument("--n-cal", type=int, nargs="+", default=[200, 436, 600], help="Calibration sizes.")
    parser.add_argument("--targets", type=float, nargs="+", default=[0.95, 0.90])
    parser.add_argument("--level", type=float, default=0.95)
    parser.add_argument("--splits", type=int, default=100, help="Random calibration/test splits per setting.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    dataset = load_dataset(args.data, require_labels=True)
    labels = sorted(set(dataset.labels))
    started = time.time()
    results = {}
    for cache in args.caches:
        probs = cached_probs(cache, list(dataset.texts))
        manifest_labels = json.loads((cache / "manifest.json").read_text(encoding="utf-8"))["labels"]
        y = np.array([manifest_labels.index(label) for label in dataset.labels])
        for n_cal in args.n_cal:
            results[(cache.name, n_cal)] = run(probs, y, n_cal, args.splits, args.targets, args.level, args.seed)
    print(f"{args.data}: {len(dataset)} rows ({', '.join(labels)}); Platt cross-fitted (5 folds) on n_cal random "
          f"rows, refitted on them for the other rows; {args.splits} splits per row; level {args.level:.0%}; "
          f"{time.time() - started:.0f} s\n")
    for target in args.targets:
        print(f"target {target:.0%}: mean share of test rows automated (share of splits certified; share of "
              "splits whose automated test rows were below target)\n")
        print("| scores | n_cal | " + " | ".join(PROCEDURES) + " |")
        print("| --- | --- | " + " | ".join("---" for _ in PROCEDURES) + " |")
        for (cache, n_cal), per_target in results.items():
            cells = [f"{c:.1%} ({k:.0%}; {b:.0%})" for c, k, b in (per_target[target][p] for p in PROCEDURES)]
            print(f"| {cache} | {n_cal} | " + " | ".join(cells) + " |")
        pooled = [np.mean([r[target][p][0] for r in results.values()]) for p in PROCEDURES]
        print("| mean of all rows | | " + " | ".join(f"{c:.1%}" for c in pooled) + " |\n")


if __name__ == "__main__":
    main()
