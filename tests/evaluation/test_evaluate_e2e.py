"""`confidently evaluate` end to end on the real default model, and the report in a real browser."""

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from confidently.data import generate_sentiment, save_dataset, stratified_sample

CLI = [sys.executable, "-m", "confidently.cli.__main__"]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    if os.environ.get("CONFIDENTLY_SKIP_MODEL_TESTS"):
        pytest.skip("CONFIDENTLY_SKIP_MODEL_TESTS is set")
    folder = tmp_path_factory.mktemp("evaluate")
    data = folder / "data.jsonl"
    save_dataset(stratified_sample(generate_sentiment(2000, seed=7), 200, seed=7), data)
    run = subprocess.run([*CLI, "evaluate", "--data", str(data), "--out", str(folder / "run"), "--budget-repeats", "3",
                          "--dtype", "float32"], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "Warning" not in run.stderr and "Warning" not in run.stdout  # small samples get plain notes instead
    return folder / "run", run.stdout


@pytest.mark.model
def test_report_files_exist_and_agree_with_metrics(evaluated):
    run, stdout = evaluated
    for name in ("report.html", "metrics.json", "summary.md", "calibrator.json", "policy.json", "conformal.json",
                 "scores.parquet", "calibrators/platt.json"):
        assert (run / name).exists(), name
    metrics = json.loads((run / "metrics.json").read_text())
    head = metrics["headline"]
    assert head["n_calibration"] + head["n_test"] == 200
    raw_ece = metrics["methods"]["raw"]["test_split"]["metrics"]["ece"]["value"]
    best = head["best_method"]
    best_ece = metrics["methods"][best]["test_split"]["metrics"]["ece"]["value"]
    report = (run / "report.html").read_text()
    summary = (run / "summary.md").read_text()
    for text in (report, summary):
        assert f"{raw_ece:.4f}" in text and f"{best_ece:.4f}" in text
    assert f"{raw_ece:.4f}" in stdout or f"{raw_ece:.3f}" in stdout
    import pandas as pd

    scores = pd.read_parquet(run / "scores.parquet")
    assert len(scores) == 200 and set(scores["split"]) == {"calibration", "test"}
    assert set(scores["decision"]) <= {"automate", "review"}


@pytest.mark.model
def test_guarantees_on_real_scores(evaluated):
    """The policy states its guarantee; prediction sets cover real held-out rows as split conformal promises."""
    import numpy as np
    import pandas as pd

    from confidently.decision.conformal import ConformalPredictor
    from confidently.decision.policy import DecisionPolicy

    run, stdout = evaluated
    policy = DecisionPolicy.load(run / "policy.json")
    assert policy.level == 0.95 and "Learn-Then-Test" in policy.method
    assert f"guarantee: {policy.guarantee}" in " ".join(stdout.split())  # the console wraps long lines
    metrics = json.loads((run / "metrics.json").read_text())
    assert "thresholds_on_test_split" not in json.dumps(metrics)
    shipped = ConformalPredictor.load(run / "conformal.json")
    assert shipped.alpha == 0.1 and shipped.name == metrics["prediction_sets"]["shipped"]
    # The model's raw probabilities on these 200 real texts are a fixed score function, so random
    # calibration/test splits of them are exchangeable: averaged over splits, test coverage must fall
    # in [1 - alpha, 1 - alpha + 1/(n + 1)] up to Monte-Carlo error.
    scores = pd.read_parquet(run / "scores.parquet")
    probs = scores[["raw_p_negative", "raw_p_positive"]].to_numpy()
    y = (scores["label"] == "positive").to_numpy().astype(int)
    rng = np.random.default_rng(0)
    n_cal, coverage = y.size // 2, {"lac": [], "aps": []}
    for _ in range(2000):
        order = rng.permutation(y.size)
        cal, test = order[:n_cal], order[n_cal:]
        for score, values in coverage.items():
            sets = ConformalPredictor(0.1, score=score).fit(probs[cal], y[cal]).predict_set(probs[test])
            values.append(sets[np.arange(test.size), y[test]].mean())
    for score, values in coverage.items():
        mean, error = np.mean(values), 3 * np.std(values) / np.sqrt(len(values))
        assert 0.9 - error <= mean, (score, mean)
        if score == "lac":  # APS ties at the top label, which voids only the upper end
            assert mean <= 0.9 + 1 / (n_cal + 1) + error, (score, mean)


@pytest.mark.model
def test_rerun_reuses_the_score_cache(evaluated):
    run, _ = evaluated
    chunks = sorted((run / "score-cache").glob("chunk-*.parquet"))
    assert chunks and json.loads((run / "score-cache" / "manifest.json").read_text())["chunks"]


@pytest.mark.model
def test_report_renders_in_headless_chromium_without_network(evaluated, tmp_path):
    run, _ = evaluated
    html = (run / "report.html").read_text()
    # Self-contained: every image inline, no script, no external reference of any kind.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html, re.I)
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    assert html.count("data:image/png;base64,") >= 6
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000",
                    f"--screenshot={shot}", (run / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert image.size == (1200, 3000)
    colours = len(set(image.getdata()))
    assert colours > 50  # charts drew: a blank or error page has a handful of grey levels
