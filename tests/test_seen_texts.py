"""A bundle records which texts it was fitted on or saw (seen_texts.json), and `score` with labels says when a
scored file overlaps them: one warning line, and the figures again on the rows the bundle never saw.

Without the record, accuracy on calibration or shot rows passed for out-of-sample with no warning.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from confidently.bundle.bundle import read_bundle
from confidently.bundle.seen import PREFIX_HEX, SEEN_FILE, SeenTexts, fingerprint, seen_payload
from confidently.decision.exact_share import ExactShare
from confidently.data import generate_sentiment, split_dataset, stratified_sample
from confidently.errors import ArtifactError
from confidently.scoring.checkpointed import text_key
from confidently.scoring.classifier import Classifier
from confidently.tasks.shots import shot_classifier
from confidently.workflows.evaluation import EvaluationConfig
from confidently.workflows.pipeline import run_evaluate

from test_bundle import make_bundle

CLI = [sys.executable, "-m", "confidently"]
CONFIG = EvaluationConfig(methods=("platt",), budget_sizes=(), budget_repeats=1, n_resamples=30)


def score(*args):
    result = subprocess.run([*CLI, "score", *map(str, args)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def write_rows(path, dataset, indices):
    path.write_text("".join(json.dumps({"text": dataset.texts[i], "label": dataset.labels[i]}) + "\n"
                            for i in indices), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def evaluated(tiny_model_dir, tmp_path_factory):
    """An evaluate run with 2 balanced shots: its folder, the calibration rows left, the shot rows, the test rows."""
    clf = Classifier(model=str(tiny_model_dir), dtype="float32")
    splits = split_dataset(generate_sentiment(300, seed=2), seed=2)
    test = stratified_sample(splits.test, 20, seed=2)
    _, rest, shots = shot_classifier(clf, splits.calibration, 2, seed=CONFIG.seed)
    folder = tmp_path_factory.mktemp("run")
    run_evaluate(clf, splits.calibration, test, folder, config=CONFIG, progress=False, shots=2)
    return folder, rest, [splits.calibration.texts[i] for i in shots.indices], test


def test_a_fingerprint_is_the_score_caches_text_key_cut_to_64_bits():
    assert fingerprint("a text") == text_key("a text")[:PREFIX_HEX] and PREFIX_HEX == 16
    assert fingerprint("a text") != fingerprint("a text ")  # no normalisation: the model sees the text as given
    payload = seen_payload({"calibration": ["b", "a", "a"], "shots": ["c"]})
    assert payload["roles"]["calibration"] == sorted({fingerprint("a"), fingerprint("b")})
    overlap = SeenTexts.from_dict(payload, "x").overlap(["a", "c", "d", "b"])
    assert overlap.seen.tolist() == [True, True, False, True] and overlap.by_role == {"calibration": 2, "shots": 1}
    with pytest.raises(ArtifactError, match="x: 'roles' must map"):
        SeenTexts.from_dict({**payload, "roles": {"calibration": ["short"]}}, "x")


def test_evaluate_records_the_calibration_and_shot_rows_hashed_in_the_manifest(evaluated, tmp_path):
    folder, rest, shot_texts, test = evaluated
    bundle = read_bundle(folder)
    assert SEEN_FILE in bundle.files
    seen = SeenTexts.from_bundle(bundle)
    assert seen.roles["calibration"] == {fingerprint(t) for t in rest.texts}
    assert seen.roles["shots"] == {fingerprint(t) for t in shot_texts} and len(seen.roles["shots"]) == 2
    assert not seen.overlap(test.texts).seen.any()
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    payload = json.loads((copy / SEEN_FILE).read_text())
    payload["roles"]["calibration"] = payload["roles"]["calibration"][1:]  # hide a row it was fitted on
    (copy / SEEN_FILE).write_text(json.dumps(payload))
    with pytest.raises(ArtifactError, match=f"{SEEN_FILE} changed since the bundle was written"):
        read_bundle(copy)


def test_score_warns_and_gives_the_figures_on_unseen_rows_when_the_file_overlaps_the_bundle(evaluated, tmp_path):
    folder, rest, shot_texts, test = evaluated
    data = tmp_path / "mixed.jsonl"
    rows = [json.dumps({"text": t, "label": lab}) for t, lab in zip(rest.texts[:3], rest.labels[:3])]
    rows += [json.dumps({"text": t, "label": lab}) for t, lab in zip(test.texts[:4], test.labels[:4])]
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = score(data, "--out", out, "--calibration", folder)
    warning = " ".join(result.stderr.split())
    assert "warning: 3 of 7 labelled rows have texts the bundle" in warning and "(3 as calibration)" in warning
    frame = pd.read_json(out, lines=True)
    unseen, truth = frame.iloc[3:], list(test.labels[:4])
    right = int((unseen["calibrated_prediction"] == truth).sum())
    raw_right = int((unseen["raw_prediction"] == truth).sum())
    summary = " ".join(result.stdout.split())
    assert (f"on the 4 rows the bundle never saw: raw accuracy {ExactShare(raw_right, 4).text()}, calibrated "
            f"accuracy {ExactShare(right, 4).text()}") in summary
    record = json.loads(score(data, "--out", tmp_path / "again.jsonl", "--calibration", folder, "--json").stdout)
    assert record["seen_by_bundle"]["n_rows"] == 3 and record["seen_by_bundle"]["by_role"]["calibration"] == 3
    assert record["unseen"]["rows"] == 4 and record["unseen"]["calibrated_accuracy"]["k"] == right
    assert record["unseen"]["calibrated_accuracy"]["n"] == 4 and record["calibrated_accuracy"]["n"] == 7
    assert record["unseen"]["set_coverage"]["n"] == 4


def test_score_counts_shot_rows_too(evaluated, tmp_path):
    folder, rest, shot_texts, test = evaluated
    data = tmp_path / "shots.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": "positive"}) + "\n" for t in shot_texts),
                    encoding="utf-8")
    result = score(data, "--out", tmp_path / "out.jsonl", "--calibration", folder)
    assert "(2 as shots)" in " ".join(result.stderr.split())
    assert "every row was seen by the bundle: no out-of-sample figures" in " ".join(result.stdout.split())


def test_score_says_nothing_when_the_file_shares_no_text_with_the_bundle(evaluated, tmp_path):
    folder, rest, shot_texts, test = evaluated
    data = write_rows(tmp_path / "test.jsonl", test, range(5))
    result = score(data, "--out", tmp_path / "out.jsonl", "--calibration", folder)
    assert "warning" not in result.stderr and "never saw" not in result.stdout
    record = json.loads(score(data, "--out", tmp_path / "again.jsonl", "--calibration", folder, "--json").stdout)
    assert record["seen_by_bundle"]["n_rows"] == 0 and record["unseen"] is None


def test_an_old_bundle_without_the_record_still_scores_and_says_it_is_unknown(tiny_model_dir, tmp_path):
    folder = tmp_path / "old"
    make_bundle(folder, Classifier(model=str(tiny_model_dir), dtype="float32"))  # no seen_texts.json, as before
    data = tmp_path / "in.jsonl"
    data.write_text(json.dumps({"text": "the movie was great", "label": "positive"}) + "\n", encoding="utf-8")
    result = score(data, "--out", tmp_path / "out.jsonl", "--calibration", folder)
    assert "warning" not in result.stderr
    assert "the bundle does not record which texts it saw" in " ".join(result.stdout.split())
    record = json.loads(score(data, "--out", tmp_path / "again.jsonl", "--calibration", folder, "--json").stdout)
    assert record["seen_by_bundle"] == "unknown" and record["calibrated_accuracy"]["n"] == 1
