"""An adapter whose files cannot be loaded (here: truncated weights whose manifest hashes still match)
is logged and skipped at start-up, and refused at run time with a 422 that names it; replies never
show absolute server paths."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from confidently.files import sha256_file

from .conftest import ADMIN_TOKEN, make_adapter

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def rehash(folder):
    """Record the files' current hashes, as if the broken files had been saved that way."""
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"] = {name: sha256_file(folder / name) for name in manifest["files"]}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def truncate_weights(folder):
    weights = folder / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    rehash(folder)


def garble_config(folder):
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "NO_SUCH_METHOD"}))
    rehash(folder)


@pytest.fixture(scope="module")
def broken_dir(tmp_path_factory, tiny_model_dir, weights_id):
    root = tmp_path_factory.mktemp("broken-adapters")
    make_adapter(tiny_model_dir, root / "alpha", seed=1, weights_id=weights_id)
    truncate_weights(make_adapter(tiny_model_dir, root / "broken", seed=5, weights_id=weights_id))
    garble_config(make_adapter(tiny_model_dir, root / "config", seed=7, weights_id=weights_id))
    bad_manifest = make_adapter(tiny_model_dir, root / "nested" / "garbled", seed=6, weights_id=weights_id)
    (bad_manifest / "manifest.json").write_text("{")
    return root


@pytest.fixture(scope="module")
def started(serve, broken_dir):
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("confidently.server")
    logger.addHandler(handler)
    try:
        with serve(adapters_dir=broken_dir) as live:
            yield live, [r.getMessage() for r in records]
    finally:
        logger.removeHandler(handler)


def test_a_broken_adapter_is_skipped_at_start_up(started):
    live, log = started
    assert [a["name"] for a in httpx.get(live.url + "/v1/adapters").json()["adapters"]] == ["alpha"]
    assert any(line.startswith("adapter broken not loaded: adapter 'broken' (broken) could not be loaded: "
                               "SafetensorError: ") for line in log), log
    assert any(line.startswith("adapter config not loaded: adapter 'config' (config) could not be loaded: ")
               for line in log), log


@pytest.mark.parametrize("name, error", [("broken", "SafetensorError: "), ("config", "KeyError: 'NO_SUCH_METHOD'")])
def test_loading_it_at_run_time_is_a_422_naming_it(started, broken_dir, name, error):
    live, _ = started
    reply = httpx.post(live.url + f"/v1/adapters/{name}", headers=ADMIN, timeout=60)
    assert reply.status_code == 422
    assert reply.json()["detail"].startswith(f"adapter {name!r} ({name}) could not be loaded: {error}"), reply.text
    assert str(broken_dir) not in reply.text
    assert httpx.post(live.url + "/v1/classify", json={"texts": ["still fine"], "adapter": "alpha"},
                      timeout=60).status_code == 200


def test_a_broken_replacement_keeps_the_adapter_it_would_replace(started):
    live, _ = started
    before = httpx.post(live.url + "/v1/classify", json={"texts": ["great"], "adapter": "alpha"}, timeout=60).json()
    reply = httpx.post(live.url + "/v1/adapters/alpha", json={"path": "broken"}, headers=ADMIN, timeout=60)
    assert reply.status_code == 422
    after = httpx.post(live.url + "/v1/classify", json={"texts": ["great"], "adapter": "alpha"}, timeout=60).json()
    assert after["results"][0]["raw_probs"] == before["results"][0]["raw_probs"]


def test_admin_errors_show_paths_relative_to_the_adapters_folder(started, broken_dir):
    live, _ = started
    reply = httpx.post(live.url + "/v1/adapters/garbled", json={"path": "nested/garbled"}, headers=ADMIN, timeout=60)
    assert reply.status_code == 422
    assert reply.json()["detail"] == "nested/garbled/manifest.json:1: not valid JSON: Expecting property name " \
                                     "enclosed in double quotes"
    assert str(broken_dir) not in reply.text
