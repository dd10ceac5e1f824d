"""Checkpoint edge states: a kill at any step of scoring leaves a state the next run can use, and a
damaged checkpoint is one clear line saying how to start over, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from confidently.scoring import checkpointed as scoring
from confidently.scoring.classifier import Classifier
from confidently.errors import ArtifactError
from confidently.workflows.score_file import score_file

TEXTS = [f"the film was {w} and I {v} it" for w in ("great", "awful", "dull", "fine") for v in ("love", "hate")]


@pytest.fixture()
def clf(tiny_backend):
    return Classifier(backend=tiny_backend, batch_size=4)


@pytest.fixture()
def data(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    return path


def killed_after_checkpoints(clf, data, out, monkeypatch, n_chunks=2):
    """Run score_file until ``n_chunks`` checkpoints are saved, then 'kill' it."""
    original, calls = clf.score, []

    def dies(texts, **kw):
        if len(calls) == n_chunks:
            raise KeyboardInterrupt
        calls.append(len(texts))
        return original(texts, **kw)

    monkeypatch.setattr(clf, "score", dies)
    with pytest.raises(KeyboardInterrupt):
        score_file(clf, data, out, checkpoint_every=3, progress=False)
    monkeypatch.setattr(clf, "score", original)
    return out.with_name(out.name + ".partial")


def test_a_kill_during_the_final_clean_up_leaves_a_usable_state(clf, data, tmp_path, monkeypatch):
    out = tmp_path / "scores.parquet"
    real_rmtree = scoring.shutil.rmtree

    def killed_half_way(path, **kw):  # deletes one chunk, then the process dies
        next(Path(path).glob("chunk-*.parquet")).unlink()
        raise KeyboardInterrupt

    monkeypatch.setattr(scoring.shutil, "rmtree", killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        score_file(clf, data, out, checkpoint_every=3, progress=False)
    monkeypatch.setattr(scoring.shutil, "rmtree", real_rmtree)
    expected = pd.read_parquet(out)
    frame = score_file(clf, data, out, checkpoint_every=3, progress=False, resume=True)
    assert not out.with_name("scores.parquet.partial").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected)
    assert len(frame) == len(TEXTS)


def test_a_kill_at_the_final_rename_leaves_no_temporary_file(clf, data, tmp_path, monkeypatch):
    out = tmp_path / "scores.parquet"
    partial = killed_after_checkpoints(clf, data, out, monkeypatch)
    # what SIGKILL leaves behind: atomic writes' temporary files, never renamed
    (tmp_path / ".scores.parquet.k1ll3d.tmp").write_bytes(b"half a parquet file")
    (partial / ".chunk-00002.parquet.k1ll3d.tmp").write_bytes(b"half a chunk")
    (partial / ".manifest.json.k1ll3d.tmp").write_text('{"chunks": [')
    score_file(clf, data, out, checkpoint_every=3, progress=False, resume=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "scores.parquet"]
    np.testing.assert_allclose(pd.read_parquet(out)["raw_p_positive"], clf.score(TEXTS).probs[:, 1], atol=1e-5)


def test_a_folder_without_manifest_holds_no_rows_and_is_replaced(clf, data, tmp_path):
    out = tmp_path / "scores.csv"
    partial = tmp_path / "scores.csv.partial"
    partial.mkdir()
    (partial / "chunk-00000.parquet").write_bytes(b"from a run killed before its first manifest")
    score_file(clf, data, out, progress=False)  # no --resume needed: there was nothing to resume
    assert len(pd.read_csv(out)) == len(TEXTS) and not partial.exists()


@pytest.mark.parametrize("damage,expected", [
    (lambda p: (p / "manifest.json").write_text('{"fingerprint": "x", "chunks": [trunc'), "manifest.json: unreadable"),
    (lambda p: (p / "manifest.json").write_text("[1, 2]"), "expected a fingerprint and a list"),
    (lambda p: (p / "manifest.json").write_text(json.dumps({**json.loads((p / "manifest.json").read_text()),
                                                             "chunks": ["../../../etc/passwd"]})), "chunk-NNNNN"),
    (lambda p: (p / "chunk-00001.parquet").write_bytes((p / "chunk-00001.parquet").read_bytes()[:100]),
     "chunk-00001.parquet: unreadable"),
    (lambda p: (p / "chunk-00000.parquet").unlink(), "chunk-00000.parquet: unreadable"),
])
def test_a_damaged_checkpoint_says_how_to_start_over(clf, data, tmp_path, monkeypatch, damage, expected):
    out = tmp_path / "scores.parquet"
    partial = killed_after_checkpoints(clf, data, out, monkeypatch)
    damage(partial)
    with pytest.raises(ArtifactError) as error:
        score_file(clf, data, out, checkpoint_every=3, progress=False, resume=True)
    assert expected in str(error.value)
    assert f"the checkpoint in {partial} is damaged; delete that folder to start over" in str(error.value)


def test_a_chunk_with_impossible_masses_is_refused(clf, data, tmp_path, monkeypatch):
    out = tmp_path / "scores.parquet"
    partial = killed_after_checkpoints(clf, data, out, monkeypatch)
    chunk = pd.read_parquet(partial / "chunk-00000.parquet")
    chunk["mass_positive"] = 7.0
    chunk.to_parquet(partial / "chunk-00000.parquet", index=False)
    with pytest.raises(ArtifactError, match="outside"):
        score_file(clf, data, out, checkpoint_every=3, progress=False, resume=True)


def test_the_cli_reports_a_damaged_checkpoint_in_one_line(tiny_model_dir, data, tmp_path):
    out = tmp_path / "scores.parquet"
    partial = tmp_path / "scores.parquet.partial"
    partial.mkdir()
    (partial / "manifest.json").write_text("\x00\x00garbage")
    result = subprocess.run([str(Path(sys.executable).with_name("confidently")), "score", str(data), "--out", str(out),
                             "--model", str(tiny_model_dir), "--resume"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith(f"error: {partial / 'manifest.json'}: unreadable")
    assert "delete that folder to start over" in result.stderr


def test_a_left_over_checkpoint_without_resume_is_refused_before_the_model_loads(data, tmp_path):
    # a model that does not exist: reaching the model would name it instead of the checkpoint
    out = tmp_path / "scores.parquet"
    partial = tmp_path / "scores.parquet.partial"
    partial.mkdir()
    (partial / "manifest.json").write_text('{"chunks": []}')
    result = subprocess.run([str(Path(sys.executable).with_name("confidently")), "score", str(data), "--out", str(out),
                             "--model", "no-such-model"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "no-such-model" not in result.stderr
    assert result.stderr.splitlines()[-1] == (f"error: {partial} holds rows from an earlier run: pass --resume to "
                                              "continue it, or delete it to start over")
    assert (partial / "manifest.json").exists()
