"""The production loop's figures on a real model: canary deviations across precisions, and drift.

1. ``evaluate`` (``run_evaluate``) on ``--n`` calibration and ``--n`` test rows of the generated
   sentiment set writes a calibration bundle with its canary, reference and calibration rows.
2. Canary: the bundle's golden prompts re-scored by a fresh float32 model and by a bfloat16 one;
   max / mean deviation of the raw class probabilities (what ``confidently canary`` reports).
3. Drift: the server's drift monitor on ``--n`` texts like the calibration rows (the test split), and
   on ``--n`` neutral texts only (a shifted stream); PSI (reference deciles) and KS per feature.

Usage: python benchmarks/production_loop.py --model gemma-3-270m --n 150 --out /tmp/loop
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from confidently.bundle.bundle import read_bundle
from confidently.monitoring.canary import Canary
from confidently.scoring.classifier import Classifier
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.decision.calibrated import CalibratedClassifier
from confidently.workflows.evaluation import EvaluationConfig
from confidently.monitoring import DriftMonitor, Reference
from confidently.workflows.pipeline import run_evaluate


def drift_line(name: str, calibrated: CalibratedClassifier, texts: list[str], reference: Reference) -> str:
    predictions = calibrated.classify_many(texts)
    monitor = DriftMonitor(calibrated.labels, reference)
    monitor.observe([p.raw_confidence for p in predictions], [p.other_mass for p in predictions],
                    [p.label for p in predictions], [p.decision for p in predictions])
    report = monitor.report()
    parts = [f"{f.feature}: PSI {f.psi:.3f}" + ("" if f.ks_pvalue is None else f", KS {f.ks_statistic:.3f} "
             f"(p {f.ks_pvalue:.2g})") + (" ALARM" if f.alarm else "") for f in report.features]
    return f"{name} (n={report.n_live} vs {report.n_reference} reference rows): status {report.status}; " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; model {args.model}")

    splits = split_dataset(generate_sentiment(4 * args.n + 400, seed=args.seed), seed=args.seed)
    calibration = stratified_sample(splits.calibration, args.n, seed=args.seed)
    test = stratified_sample(splits.test, args.n, seed=args.seed)
    clf = Classifier(model=args.model, dtype="float32")
    started = time.perf_counter()
    config = EvaluationConfig(methods=("platt", "temperature", "isotonic"), budget_sizes=(50,), budget_repeats=2,
                              n_resamples=200, target_accuracy=0.9)
    run_evaluate(clf, calibration, test, args.out, config=config, progress=False)
    bundle = read_bundle(args.out)
    print(f"evaluate: {len(calibration)} calibration + {len(test)} test rows in {time.perf_counter() - started:.0f} s; "
          f"bundle files {sorted(bundle.files)}")

    canary = Canary.from_bundle(bundle)
    for dtype in ("float32", "bfloat16"):
        fresh = Classifier(model=args.model, dtype=dtype)
        check = canary.check(fresh.score(list(canary.texts)).probs)
        print(f"canary re-scored in {dtype}: {check.describe()}")

    calibrated = CalibratedClassifier(clf, bundle=bundle)
    reference = Reference.from_bundle(bundle)
    print(drift_line("traffic like the calibration rows (test split)", calibrated, list(test.texts), reference))
    neutral = generate_sentiment(args.n, seed=args.seed + 1, sizes={"neutral": args.n // 2})
    print(drift_line("neutral texts only", calibrated, list(neutral.texts), reference))


if __name__ == "__main__":
    main()
