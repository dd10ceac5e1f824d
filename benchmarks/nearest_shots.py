"""Nearest-to-the-text few-shot examples against class-balanced ones, on the same rows as ``boost.py``.

The same 50/50 split (seed 42) as :mod:`boost`. Balanced k-shot prompts take k calibration rows; nearest
shots set a pool aside (:func:`confidently.tasks.nearest.choose_pool`, default size) and ask every other
text with its own k nearest pool rows. Both are calibrated and certified on the same calibration rows
(those outside the pool and the balanced shots) and measured on the same test rows; ``--calibration-rows``
and ``--test-rows`` take the first rows of each (a stated subset when a full run would take too long on
CPU). Scores are cached under ``--cache`` (``shots<k>-cache``: the balanced scores ``boost.py`` wrote;
``nearest<k>-cache``: this script's), so a rerun scores nothing again.

    PYTHONPATH=src python benchmarks/nearest_shots.py --data ../shared/datasets/sst2_dev.jsonl --k 4 \\
        --cache /tmp/nearest/boost --test-rows 150 --calibration-rows 150 --out /tmp/nearest/table.md
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from boost import SEED, TARGETS, best_calibrator, cost, method_table, row

from confidently.data import load_dataset
from confidently.scoring.checkpointed import score_datasets
from confidently.scoring.classifier import Classifier
from confidently.tasks.nearest import nearest_shot_classifier
from confidently.tasks.shots import shot_classifier
from confidently.workflows.evaluation import EvaluationConfig, evaluate_scores
from confidently.workflows.pipeline import split_for_evaluation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--pool", type=int, default=None, help="shot pool rows (default: the library's default)")
    parser.add_argument("--unbalanced", action="store_true", help="the k nearest of any class")
    parser.add_argument("--cache", default="/tmp/nearest/boost")
    parser.add_argument("--calibration-rows", type=int, default=None)
    parser.add_argument("--test-rows", type=int, default=None)
    parser.add_argument("--timing-texts", type=int, default=8)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()

    started = time.time()
    clf = Classifier(model=args.model, task="sentiment", dtype="float32")
    data = load_dataset(args.data, labels=clf.labels, require_labels=True)
    calibration, test = split_for_evaluation(data, seed=SEED)
    balanced_clf, balanced_rest, _ = shot_classifier(clf, calibration, args.k, seed=SEED)
    nearest_clf, nearest_rest, pool = nearest_shot_classifier(clf, calibration, args.k, seed=SEED,
                                                              pool_size=args.pool, balanced=not args.unbalanced)
    both = set(balanced_rest.texts)
    common = [i for i, text in enumerate(nearest_rest.texts) if text in both][:args.calibration_rows]
    cal = nearest_rest.subset(common)
    on_test = test.subset(list(range(min(len(test), args.test_rows or len(test)))))
    y_cal, y_test = cal.label_indices(clf.labels), on_test.label_indices(clf.labels)
    config = EvaluationConfig(target_accuracy=TARGETS[0], budget_sizes=(), budget_repeats=1,
                              budget_methods=("platt",), n_resamples=200)
    cache, texts = Path(args.cache), list(on_test.texts)
    name = f"nearest{args.k}{'-unbalanced' if args.unbalanced else ''}-pool{len(pool.indices)}"
    configurations = (("zero-shot", clf, "zs-cache"), (f"{args.k} class-balanced shots", balanced_clf,
                                                        f"shots{args.k}-cache"),
                      (f"{args.k} nearest shots ({'any class' if args.unbalanced else 'class-balanced'}, "
                       f"pool {len(pool.indices)})", nearest_clf, f"{name}-cache"))
    rows = []
    for label, asked, folder in configurations:
        t0 = time.time()
        scores = score_datasets(asked, {"calibration": cal, "test": on_test}, cache / folder)
        print(f"[{time.time() - started:.0f} s] {label}: scored in {time.time() - t0:.0f} s", flush=True)
        study = evaluate_scores(scores["calibration"].probs, y_cal, scores["test"].probs, y_test, labels=clf.labels,
                                config=config)
        rows.append(row(label, study, best_calibrator(study), len(calibration),
                        cost(asked, texts, hidden=False, timing_texts=args.timing_texts)))
    write(args, rows, cal, on_test, len(pool.indices), started)


def write(args, rows: list[dict], cal, test, pool: int, started: float) -> None:
    lines = method_table(rows)
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    summary = (f"{args.data}, split 50/50 (seed {SEED}); {pool} calibration rows form the nearest-shot pool. Every "
               f"configuration is calibrated and certified (Learn-Then-Test, 95% confidence) on the same {len(cal)} "
               f"calibration rows (outside the pool and the balanced shots) and measured on the same {len(test)} "
               f"test rows; model {args.model} float32 on CPU, one thread; ms/item over {args.timing_texts} texts "
               f"(load average at the end {load}); wall time {time.time() - started:.0f} s.")
    text = "\n".join([summary, "", *lines])
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
        Path(args.out).with_suffix(".json").write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
