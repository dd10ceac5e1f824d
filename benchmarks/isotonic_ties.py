"""What isotonic's flat steps cost the certified threshold, and what centring them gives back, on cached scores.

Isotonic regression's steps give every row of a step one calibrated confidence, so a threshold cannot keep
a step's strongest rows and drop its weakest; centred isotonic regression (the default of
:class:`~confidently.calibration.IsotonicCalibrator`) runs linearly between the centres of the steps that
hold both classes instead.
For each cached score set this prints, per method (raw scores, Platt, isotonic steps, centred isotonic):
the test coverage of the Learn-Then-Test threshold certified at 90% and 95% target accuracy (95%
confidence, the default fallback procedure) on the calibration rows' 5-fold cross-fitted scores, as
``evaluate`` does, with the accuracy of the automated test rows; the test log-loss and top-label ECE (20
equal-width bins, bootstrap-bias-corrected, 200 resamples, 95% interval); and which calibrator wins the
cross-fitted log-loss selection ``evaluate`` makes, once among its supervised methods with isotonic as
steps and once with it centred. Each set is split 50/50 with ``split_for_evaluation`` (``--split-seeds``:
42 alone by default, as ``benchmarks/boost.py``; more seeds repeat everything on other splits and print
how often each method certifies and its mean coverage, per set and over every set and split). Nothing is scored: the scores come from
``benchmarks/boost.py`` caches (``ScoreStore`` folders); rows a cache lacks (few-shot examples, left out of
scoring) are left out of both splits.

``--validity RUNS`` instead simulates the whole pipeline (cross-fit, certify, refit; the true accuracy above
the threshold integrated exactly: ``pipeline_failures`` of ``tests/test_certification_validity.py``) for
steps and centred isotonic, and prints how often a certified threshold falls below its target (promised at
most 5%) and how much it automates.

    PYTHONPATH=src python benchmarks/isotonic_ties.py \\
        --set "1.5B seed articles, zero-shot" /tmp/seed/cache15/zs-cache /tmp/seed/seed2000.jsonl
    PYTHONPATH=src python benchmarks/isotonic_ties.py --validity 1000
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from boost import TARGETS, certified_on_test
from confidently.calibration import CalibrationWarning, IsotonicCalibrator, cross_fit_predict, make_calibrator
from confidently.data import load_dataset
from confidently.errors import CalibrationError
from confidently.metrics.calibration_error import expected_calibration_error, negative_log_likelihood
from confidently.scoring.checkpointed import ScoreStore, text_key
from confidently.workflows.evaluation import SUPERVISED
from confidently.workflows.pipeline import split_for_evaluation

SST2 = "/work/shared/datasets/sst2_dev.jsonl"
SEED_ARTICLES = "/tmp/seed/seed2000.jsonl"
#: The caches this session's benchmarks wrote: (name, ScoreStore folder, labelled data file).
DEFAULT_SETS = (
    ("SST-2 dev, 0.5B zero-shot", "/tmp/boost/zs-cache", SST2),
    ("SST-2 dev, 0.5B prompt critic-liked", "/tmp/boost/prompt-critic-liked-cache", SST2),
    ("SST-2 dev, 0.5B prompt review-polarity", "/tmp/boost/prompt-review-polarity-cache", SST2),
    ("SST-2 dev, 0.5B 4-shot", "/tmp/boost/shots4-cache", SST2),
    ("SST-2 dev, 0.5B 16-shot", "/tmp/boost/shots16-cache", SST2),
    ("seed articles, 0.5B zero-shot", "/tmp/seed/cache/zs-cache", SEED_ARTICLES),
    ("seed articles, 0.5B prompt statement-polarity", "/tmp/seed/cache/prompt-statement-polarity-cache",
     SEED_ARTICLES),
    ("seed articles, 0.5B prompt writer-pleased", "/tmp/seed/cache/prompt-writer-pleased-cache", SEED_ARTICLES),
    ("seed articles, 0.5B 16-shot", "/tmp/seed/cache/shots16-cache", SEED_ARTICLES),
    ("seed articles, 1.5B zero-shot", "/tmp/seed/cache15/zs-cache", SEED_ARTICLES),
    ("movie-review snippets, 0.5B zero-shot", "/tmp/vader/movie-cache/zs-cache", "/tmp/vader/movie2000.jsonl"),
)
#: The compared methods: a factory of a fresh calibrator each, None for the raw scores.
METHODS = {
    "raw": None,
    "platt": lambda: make_calibrator("platt"),
    "isotonic steps": lambda: IsotonicCalibrator(centred=False),
    "isotonic centred": lambda: IsotonicCalibrator(),
}
#: Simulated settings of ``--validity``: (class mean of the log-odds mu, sigma, overconfidence factor, target,
#: calibration rows).
VALIDITY_SETTINGS = ((1.2, 1.0, 2.5, 0.90, 436), (1.2, 1.0, 2.5, 0.95, 1000), (1.6, 1.0, 2.5, 0.95, 500))
#: ``evaluate``'s label-using candidates that need no content-free scores (its defaults less contextual).
SELECTION = (*SUPERVISED, "batch", "batch+platt")


#: Least share of each split's rows a cache must hold (few-shot caches lack their examples; a cache being
#: written lacks most rows).
MIN_HELD = 0.9


class IncompleteCache(Exception):
    """A cache lacks too many of a split's rows (still being written, or scored on other data)."""


def cached_splits(cache: str, data: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Raw probabilities and labels of the calibration and test rows a cache holds (at least :data:`MIN_HELD` of each)."""
    manifest = json.loads((Path(cache) / "manifest.json").read_text(encoding="utf-8"))
    labels = tuple(manifest["labels"])
    keys, scores = ScoreStore(cache, manifest["fingerprint"], labels).load()
    row_of = {key: i for i, key in enumerate(keys)}
    calibration, test = split_for_evaluation(load_dataset(data, labels=labels, require_labels=True), seed=seed)
    out = []
    for name, split in (("calibration", calibration), ("test", test)):
        rows = np.array([row_of.get(text_key(text), -1) for text in split.texts])
        held = rows >= 0
        if held.mean() < MIN_HELD:
            raise IncompleteCache(f"{cache} holds {held.sum()} of the {len(split)} {name} rows (still being written?)")
        out += [scores.probs[rows[held]], np.asarray(split.label_indices(labels))[held]]
    return tuple(out)


def complete_sets(sets, seeds):
    """``(name, {seed: cached_splits(...)})`` of each ``(name, cache, data)`` set (default: the
    :data:`DEFAULT_SETS` that exist) whose cache holds every split; a skipped set is printed with why."""
    sets = sets or [s for s in DEFAULT_SETS if (Path(s[1]) / "manifest.json").exists() and Path(s[2]).exists()]
    for name, cache, data in sets:
        try:
            yield name, {seed: cached_splits(cache, data, seed) for seed in seeds}
        except IncompleteCache as error:
            print(f"\n{name}: skipped, {error}", flush=True)


def measure(cal: np.ndarray, y_cal: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> dict:
    """Every method of :data:`METHODS` on one split, and the selection winners."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CalibrationWarning)  # isotonic's small-sample warning, on every fold
        for name, build in METHODS.items():
            crossfit, on_test = ((cal, test) if build is None else
                                 (cross_fit_predict(build, cal, y_cal, n_splits=5, seed=0),
                                  build().fit(cal, y_cal).predict_proba(test)))
            nll = negative_log_likelihood(on_test, y_test, n_resamples=200)
            ece = expected_calibration_error(on_test, y_test, n_bins=20, n_resamples=200)
            out[name] = {"test_nll": [nll.value, nll.ci_low, nll.ci_high], "test_ece": [ece.value, ece.ci_low, ece.ci_high],
                         **{f"at_{t:.2f}": certified_on_test(crossfit, y_cal, on_test, y_test, t) for t in TARGETS}}
        crossfit_nll = {}
        for method in (*SELECTION, "isotonic centred"):
            build = METHODS["isotonic steps"] if method == "isotonic" else METHODS.get(method, method)
            try:
                crossfit = cross_fit_predict(build, cal, y_cal, n_splits=5, seed=0)
            except CalibrationError:
                continue
            crossfit_nll[method] = negative_log_likelihood(crossfit, y_cal, n_resamples=0).value
    with_steps = {m: v for m, v in crossfit_nll.items() if m != "isotonic centred"}
    with_centred = {m: v for m, v in crossfit_nll.items() if m != "isotonic"}
    return {"n_calibration": int(y_cal.size), "n_test": int(y_test.size), "methods": out,
            "crossfit_nll": crossfit_nll,
            "winner_with_steps": min(with_steps, key=with_steps.get),
            "winner_with_centred": min(with_centred, key=with_centred.get)}


def cell(at: dict) -> str:
    if at["threshold"] is None:
        return "none"
    accuracy = f", {at['accuracy_automated']:.3f} correct" if at["n_automated"] else ""
    return f"{at['coverage']:.1%} (t={at['threshold']:.2f}{accuracy})"


def interval(values: list[float]) -> str:
    return f"{values[0]:.3f} [{values[1]:.3f}, {values[2]:.3f}]"


def summary(runs: list[dict]) -> str:
    """Per method, over every split of ``runs`` (per-seed results of some sets): splits certified and mean
    test coverage at each target, and mean test ECE and log-loss."""
    lines = ["splits certified and mean test coverage at 95% / 90%; mean test ECE, log-loss:"]
    measured = [r["methods"] for per_seed in runs for r in per_seed.values()]
    for method in METHODS:
        parts = []
        for t in TARGETS:
            cells = [m[method][f"at_{t:.2f}"] for m in measured]
            parts.append(f"{sum(c['threshold'] is not None for c in cells)}/{len(cells)}, "
                         f"{np.mean([c['coverage'] for c in cells]):.1%}")
        lines.append(f"  {method}: {' / '.join(parts)}; ECE {np.mean([m[method]['test_ece'][0] for m in measured]):.4f}, "
                     f"log-loss {np.mean([m[method]['test_nll'][0] for m in measured]):.4f}")
    return "\n".join(lines)


def validity(runs: int) -> None:
    """The pipeline simulation of ``tests/test_certification_validity.py``, steps against centred."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_certification_validity import pipeline_failures

    for mu, sigma, scale, target, n in VALIDITY_SETTINGS:
        for method in ("isotonic steps", "isotonic centred"):
            failures, certified, automated = pipeline_failures(METHODS[method], mu, sigma, scale, target, n, runs,
                                                               seed=12)
            print(f"mu={mu}, sigma={sigma}, {scale}x overconfident, {target:.0%} target, {n} rows, {method}: "
                  f"{certified} of {runs} runs certified, {failures} below target ({failures / max(certified, 1):.1%}), "
                  f"{automated:.1%} automated on average", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", nargs=3, action="append", metavar=("NAME", "CACHE", "DATA"),
                        help="a cached score set (default: this session's caches, those that exist)")
    parser.add_argument("--split-seeds", type=int, nargs="+", default=[42])
    parser.add_argument("--out", default=None, help="write every figure as JSON here")
    parser.add_argument("--validity", type=int, default=None, metavar="RUNS",
                        help="only simulate the pipeline's guarantee, RUNS runs per setting")
    args = parser.parse_args()
    if args.validity:
        validity(args.validity)
        return
    results = {}
    for name, splits in complete_sets(args.set, args.split_seeds):
        per_seed = {seed: measure(*split) for seed, split in splits.items()}
        results[name] = per_seed
        first_seed = args.split_seeds[0]
        first = per_seed[first_seed]
        print(f"\n{name}: {first['n_calibration']} calibration + {first['n_test']} test rows (split seed {first_seed}); selection winner "
              f"{first['winner_with_steps']} with isotonic steps, {first['winner_with_centred']} with it centred")
        print("| method | coverage at 95% (test) | coverage at 90% (test) | test log-loss | test ECE |")
        print("| --- | --- | --- | --- | --- |")
        for method, m in first["methods"].items():
            print(f"| {method} | {cell(m['at_0.95'])} | {cell(m['at_0.90'])} | {interval(m['test_nll'])} | "
                  f"{interval(m['test_ece'])} |")
        if len(args.split_seeds) > 1:
            print(f"Over {len(args.split_seeds)} splits (seeds {', '.join(map(str, args.split_seeds))}): "
                  + summary([per_seed]))
    runs = list(results.values())
    print(f"\nOver all {sum(map(len, runs))} set-splits: " + summary(runs))
    for key in ("winner_with_steps", "winner_with_centred"):
        wins = Counter(r[key] for per_seed in runs for r in per_seed.values())
        print(f"Cross-fitted log-loss winners, {key.replace('_', ' ')}: "
              + ", ".join(f"{method} {count}" for method, count in wins.most_common()))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
