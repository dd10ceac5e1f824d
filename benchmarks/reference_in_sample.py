"""How far the drift reference's automate rate, computed in sample, is from the rate on new texts, on cached scores.

The reference (``reference.json``) decides its calibration rows with the calibrator the server applies, which
was fitted on those same rows: in sample. This measures what that costs. Each repeat draws ``--calibration``
rows of a cached score set at random (the rest are the *new* texts), fits a calibrator on them and compares
the share whose calibrated confidence reaches ``--threshold``: on the calibration rows by the calibrator
fitted on them (in sample, what the reference records), on the same rows by 5-fold cross-fitted copies
(out of fold, what the threshold is certified on) and on the new rows by the fitted calibrator (what the
server will see). It prints, per method, the mean and sample standard deviation over the repeats of each
rate minus the new-text rate, how many repeats had it positive (optimistic) and the mean absolute gap.
Nothing is scored: the scores (and hidden states, for the probe) come from a ``ScoreStore`` folder
(``benchmarks/boost.py --cache``) and the labels from the data file.

    PYTHONPATH=src python benchmarks/reference_in_sample.py --cache /tmp/vader/movie-cache/zs-cache \\
        --data /tmp/vader/movie2000.jsonl --calibration 500 --repeats 10
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from confidently.calibration import cross_fit_predict, make_calibrator
from confidently.calibration.probe import HiddenStateProbe, cross_fit_probe
from confidently.data import load_dataset
from confidently.scoring.checkpointed import ScoreStore, text_key

METHODS = ("probe", "platt", "isotonic")


def cached_rows(cache: str, data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw probabilities, hidden states and label indices of the data file's rows the cache holds."""
    manifest = json.loads((Path(cache) / "manifest.json").read_text(encoding="utf-8"))
    labels = tuple(manifest["labels"])
    keys, scores = ScoreStore(cache, manifest["fingerprint"], labels).load(hidden=True)
    row_of = {key: i for i, key in enumerate(keys)}
    dataset = load_dataset(data, labels=labels, require_labels=True)
    rows = np.array([row_of.get(text_key(text), -1) for text in dataset.texts])
    held = rows >= 0
    return scores.probs[rows[held]], scores.hidden[rows[held]], np.asarray(dataset.label_indices(labels))[held]


def automate_rates(method: str, probs: np.ndarray, hidden: np.ndarray, y: np.ndarray, calibration: np.ndarray,
                   new: np.ndarray, threshold: float, seed: int) -> tuple[float, float, float]:
    """Shares automated: in sample, out of fold (both on the calibration rows) and on the new rows."""
    k = probs.shape[1]
    if method == "probe":
        fitted = HiddenStateProbe(seed=seed).fit(hidden[calibration], y[calibration], n_classes=k)
        in_sample, on_new = fitted.predict_proba(hidden[calibration]), fitted.predict_proba(hidden[new])
        out_of_fold = cross_fit_probe(hidden[calibration], y[calibration], n_classes=k, seed=seed)
    else:
        fitted = make_calibrator(method).fit(probs[calibration], y[calibration])
        in_sample, on_new = fitted.predict_proba(probs[calibration]), fitted.predict_proba(probs[new])
        out_of_fold = cross_fit_predict(method, probs[calibration], y[calibration], n_splits=5, seed=seed)
    return tuple(float(np.mean(p.max(axis=1) >= threshold)) for p in (in_sample, out_of_fold, on_new))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="ScoreStore folder with hidden states")
    parser.add_argument("--data", required=True, help="the labelled JSON Lines file the cache scored")
    parser.add_argument("--calibration", type=int, default=500, help="calibration rows per repeat")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    probs, hidden, y = cached_rows(args.cache, args.data)
    print(f"{len(y)} rows; {args.calibration} calibration rows, {len(y) - args.calibration} new, {args.repeats} "
          f"random splits (seeds 0-{args.repeats - 1}); automate = calibrated confidence >= {args.threshold}")
    warnings.simplefilter("ignore")  # small-sample notes from the calibrators: the rates below are what counts
    for method in METHODS:
        rates = []
        for seed in range(args.repeats):
            order = np.random.default_rng(seed).permutation(len(y))
            rates.append(automate_rates(method, probs, hidden, y, order[:args.calibration],
                                        order[args.calibration:], args.threshold, seed))
        rates = np.array(rates)
        line = [f"{method:9s} new-text rate {rates[:, 2].mean():.3f}"]
        for i, name in ((0, "in sample"), (1, "out of fold")):
            gap = rates[:, i] - rates[:, 2]
            line.append(f"{name} minus new {gap.mean():+.4f} (sd {gap.std(ddof=1):.4f}, positive in "
                        f"{(gap > 0).sum()}/{len(gap)}, mean |gap| {np.abs(gap).mean():.4f})")
        print("; ".join(line))


if __name__ == "__main__":
    main()
