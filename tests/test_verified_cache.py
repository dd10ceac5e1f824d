"""The de-quantized model cache: hashed when written, checked before use, rebuilt when damaged, built once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from confidently.models import verified_cache
from confidently.models.verified_cache import MANIFEST, cache_problem, ensure_cache

IDENTITY = {"gguf_file": "m.gguf", "gguf_sha256": "ab" * 32}
WEIGHTS = bytes(range(256)) * 4096  # 1 MiB that is not all zeros


def build(staging: Path) -> None:
    (staging / "model.safetensors").write_bytes(WEIGHTS)
    (staging / "config.json").write_text('{"model_type": "qwen2"}')


@pytest.fixture
def cache(tmp_path):
    messages: list[str] = []
    folder = tmp_path / "dequantized" / "abab"
    ensure_cache(folder, IDENTITY, build, say=messages.append)
    assert messages == [] and cache_problem(folder, IDENTITY) is None
    return folder, messages


def rebuild(folder, messages):
    ensure_cache(folder, IDENTITY, build, say=messages.append)
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS and cache_problem(folder, IDENTITY) is None
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")], "staging or discarded folders left"
    return messages


def test_the_manifest_records_every_files_size_and_sha256(cache):
    folder, _ = cache
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["gguf_sha256"] == IDENTITY["gguf_sha256"]
    assert set(manifest["files"]) == {"model.safetensors", "config.json"}
    assert manifest["files"]["model.safetensors"]["size"] == len(WEIGHTS)


def test_an_untouched_cache_is_not_rehashed(cache, monkeypatch):
    folder, _ = cache
    hashed = []
    monkeypatch.setattr(verified_cache, "sha256_file", lambda path: hashed.append(path) or "")
    assert cache_problem(folder, IDENTITY) is None and hashed == []


def test_a_truncated_file_is_rebuilt_with_one_line(cache):
    folder, messages = cache
    with open(folder / "model.safetensors", "r+b") as handle:
        handle.truncate(1000)
    assert "truncated" in cache_problem(folder, IDENTITY)
    assert len(rebuild(folder, messages)) == 1 and "discarding it and rebuilding" in messages[0]


def test_zeros_written_over_the_weights_are_detected(cache):
    folder, messages = cache
    with open(folder / "model.safetensors", "r+b") as handle:
        handle.seek(4096)
        handle.write(bytes(65536))
    assert "sha256 differs" in cache_problem(folder, IDENTITY)
    assert len(rebuild(folder, messages)) == 1


@pytest.mark.parametrize("damage,expected", [
    (lambda f: (f / MANIFEST).write_text(json.dumps(IDENTITY)), "without recorded file hashes"),
    (lambda f: (f / MANIFEST).write_text("{not json"), "unreadable"),
    (lambda f: (f / MANIFEST).unlink(), "no confidently-dequantized.json"),
    (lambda f: (f / "config.json").unlink(), "config.json is missing"),
    (lambda f: (f / "model.safetensors.index.json").write_text("{}"), "does not list"),
])
def test_an_unverifiable_cache_is_rebuilt(cache, damage, expected):
    folder, messages = cache
    damage(folder)
    assert expected in cache_problem(folder, IDENTITY)
    assert len(rebuild(folder, messages)) == 1


def test_a_cache_of_other_weights_is_rebuilt(cache):
    folder, messages = cache
    assert "gguf_sha256" in cache_problem(folder, {**IDENTITY, "gguf_sha256": "cd" * 32})


def test_leftovers_of_a_killed_build_are_removed(tmp_path):
    folder = tmp_path / "abab"
    (tmp_path / ".abab.x1.partial").mkdir(parents=True)
    (tmp_path / ".abab.x1.partial" / "model.safetensors").write_bytes(b"half")
    (tmp_path / "abab.partial").mkdir()  # the staging folder of earlier versions
    ensure_cache(folder, IDENTITY, build)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abab", "abab.lock"]


def test_three_concurrent_first_loads_build_once(tmp_path):
    """Three processes want the same missing cache at once: one builds, the others wait and use it."""
    folder, log = tmp_path / "cache" / "abab", tmp_path / "builds.log"
    script = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from confidently.models.verified_cache import ensure_cache

        def build(staging):
            with open({str(log)!r}, "a") as handle:
                handle.write(f"{{os.getpid()}}\\n")
            time.sleep(1.0)  # a slow build, so the others arrive while it runs
            (staging / "model.safetensors").write_bytes(b"w" * 100000)

        ensure_cache(Path({str(folder)!r}), {IDENTITY!r}, build, say=lambda m: print(m, file=sys.stderr))
        print((Path({str(folder)!r}) / "model.safetensors").stat().st_size)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(verified_cache.__file__).parents[2]),
                                                                      os.environ.get("PYTHONPATH")]))}
    runs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env) for _ in range(3)]
    results = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    assert [code for code, _, _ in results] == [0, 0, 0], [err for _, _, err in results]
    assert [out.strip() for _, out, _ in results] == ["100000"] * 3
    assert len(log.read_text().splitlines()) == 1
    assert cache_problem(folder, IDENTITY) is None
    assert sorted(p.name for p in folder.parent.iterdir()) == ["abab", "abab.lock"]


def test_a_damaged_dequantized_model_repairs_itself(tiny_gguf, tmp_path, monkeypatch):
    """The real path: a GGUF de-quantized into a temporary cache, 64 KB zeroed, loaded again."""
    from confidently.backends.transformers_backend import TransformersBackend

    monkeypatch.setenv("CONFIDENTLY_CACHE", str(tmp_path))
    prompts = ["the movie was great", "awful film"]
    expected = TransformersBackend(str(tiny_gguf), device="cpu", dtype="float32").next_token_logprobs(prompts)
    [folder] = [p for p in (tmp_path / "dequantized").iterdir() if p.is_dir()]
    weights = folder / "model.safetensors"
    with open(weights, "r+b") as handle:  # zeros over the weights, as in the issue (there 64 MB)
        handle.seek(weights.stat().st_size // 2)
        handle.write(bytes(65536))
    messages = []

    class Console:
        def print(self, message, **_):
            messages.append(str(message))

    repaired = TransformersBackend(str(tiny_gguf), device="cpu", dtype="float32", console=Console())
    assert [m for m in messages if "rebuilding" in m] == [
        f"the cache {folder} is not usable: model.safetensors changed since it was written (its sha256 differs); "
        "discarding it and rebuilding"]
    assert (repaired.next_token_logprobs(prompts) == expected).all()
    assert cache_problem(folder, {"gguf_sha256": repaired.weights_id}) is None
