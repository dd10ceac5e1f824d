"""How often the bootstrap intervals of the calibration errors cover the true value, old and new.

Draws many test sets from a known 3-class score model (labels from softmax(z), scores
softmax(sharpen * z): sharpen 1 is perfectly calibrated, 1.5 over-confident), computes each
metric's 95% interval on every set, and compares it with the metric's population value (the same
binned metric on 2,000,000 rows; for the debiased CE, the plug-in ℓ2 error it estimates). Prints,
per metric, sharpening and n: the coverage of confidently's interval (bias-corrected for these
metrics), the coverage of the plain percentile interval it replaced, and how often that
percentile interval excluded its own point estimate.

Usage: python benchmarks/interval_coverage.py [--reps 200] [--resamples 300]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.special import softmax

from confidently import metrics as m

METRICS = (("ece", {}), ("classwise_ece", {}), ("debiased_ce", {"scheme": "equal_mass"}))


def draw(rng: np.random.Generator, n: int, sharpen: float) -> tuple[np.ndarray, np.ndarray]:
    z = rng.normal(0.0, 1.2, (n, 3))
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(softmax(z, axis=1), axis=1)).sum(axis=1), 2)
    return softmax(sharpen * z, axis=1), y


def population_value(name: str, params: dict, sharpen: float) -> float:
    probs, y = draw(np.random.default_rng(0), 2_000_000, sharpen)
    if name == "debiased_ce":
        return float(m.metric_function(name, **params).reference(probs[None], y[None])[0])
    return float(m.metric_function(name, **params)(probs[None], y[None])[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=200, help="test sets per setting")
    parser.add_argument("--resamples", type=int, default=300, help="bootstrap resamples per interval")
    args = parser.parse_args()
    print("| metric | sharpen | n | true value | coverage, confidently | coverage, plain percentile "
          "| percentile excludes its estimate |\n|---|---|---|---|---|---|---|")
    for name, params in METRICS:
        fn = m.metric_function(name, **params)
        for sharpen in (1.0, 1.5):
            truth = population_value(name, params, sharpen)
            for n in (200, 1000):
                rng = np.random.default_rng(1)
                new = old = excluded = 0
                for rep in range(args.reps):
                    probs, y = draw(rng, n, sharpen)
                    interval = m.bootstrap_ci(fn, probs, y, n_resamples=args.resamples, seed=rep)
                    new += interval.low <= truth <= interval.high
                    index = np.random.default_rng(rep).integers(0, n, (args.resamples, n))
                    low, high = np.quantile(fn(probs[index], y[index]), [0.025, 0.975])
                    old += low <= truth <= high
                    excluded += not low <= fn(probs[None], y[None])[0] <= high
                print(f"| {name} | {sharpen} | {n} | {truth:.4f} | {new / args.reps:.2f} | {old / args.reps:.2f} "
                      f"| {excluded / args.reps:.2f} |", flush=True)


if __name__ == "__main__":
    main()
