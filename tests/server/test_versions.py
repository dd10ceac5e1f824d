"""A recalibrated version reaches a running server without a restart; every reply names its version."""

from __future__ import annotations

import time

import httpx
import numpy as np

from confidently.bundle.bundle import read_bundle
from confidently.feedback import open_store
from confidently.feedback.recalibration import CALIBRATION_ROWS_FILE, CalibrationRows, recalibrate

from .conftest import ADMIN_TOKEN, make_adapter

TEXTS = [f"version test text {i}, {'lovely' if i % 3 else 'dreadful'} film" for i in range(90)]


def test_serve_switches_to_a_new_version_and_keeps_the_old(serve, tmp_path, tiny_model_dir, weights_id):
    adapters = tmp_path / "adapters"
    # The rows make_adapter fits the calibrator on (same seed, same draws), stored in the bundle.
    rng = np.random.default_rng(5)
    probs = rng.dirichlet(np.ones(2), size=200)
    y = np.array([rng.choice(2, p=p) for p in probs])
    rows = CalibrationRows(("negative", "positive"), probs, y, np.zeros(200))
    folder = make_adapter(tiny_model_dir, adapters / "sure", seed=5, weights_id=weights_id, threshold=0.0,
                          extra_json={CALIBRATION_ROWS_FILE: rows.to_dict()})
    db = tmp_path / "feedback.db"
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with serve(adapters_dir=adapters, feedback_db=str(db), audit_fraction=1.0, version_poll_s=0.2,
               max_texts=128) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        first = http.post("/v1/classify", json={"texts": TEXTS, "adapter": "sure"}).json()
        assert first["bundle_version"] == read_bundle(folder).manifest_sha256[:12] + ".v1"
        assert first["threshold"] == 0.0
        # Reviewers find the model wrong every time: the calibrator should become far less sure.
        for i, result in enumerate(first["results"]):
            wrong = "negative" if result["label"] == "positive" else "positive"
            http.post("/v1/feedback", json={"request_id": first["request_id"], "position": i, "label": wrong},
                      headers=admin).raise_for_status()
        with open_store(db) as store:
            result = recalibrate(folder, store, adapter="sure")
        assert result.adopted and result.version == 2, result.describe()
        version = read_bundle(folder / "versions" / "v2")

        deadline = time.monotonic() + 30
        while True:
            reply = http.post("/v1/classify", json={"texts": TEXTS[:2], "adapter": "sure"}).json()
            if reply["bundle_version"].endswith(".v2") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert reply["bundle_version"] == version.manifest_sha256[:12] + ".v2"
        assert reply["threshold"] == version.policy.threshold
        old_conf = first["results"][0]["confidence"]
        assert reply["results"][0]["confidence"] < old_conf  # the new calibrator is less sure
        assert read_bundle(folder).calibrator is not None and version.calibrator is not None  # both kept
        info = http.get("/v1/adapters").json()
        [sure] = [a for a in info["adapters"] if a["name"] == "sure"]
        assert sure["bundle_version"] == reply["bundle_version"]
        with open_store(db) as store:  # the log names the version that decided each text
            assert store.item(reply["request_id"], 0).bundle_version == reply["bundle_version"]
