"""The production loop in a real server: request ids, the review queue, feedback, drift and live accuracy.

Adapters here: ``sure`` (threshold 0: every text automated, so with ``audit_fraction=1`` every text is
audited), ``unsure`` (no threshold: every text sent to review), and ``alpha-ref``, which ships a
reference distribution computed from the server's own answers.
"""

from __future__ import annotations

import logging

import httpx
import pytest

from confidently.bundle.bundle import read_bundle
from confidently.feedback import open_store
from confidently.monitoring import Reference

from .conftest import ADMIN_TOKEN, make_adapter

REVIEWERS = {"ann": "ann-token-0123456789", "bob": "bob-token-0123456789"}
TEXTS = [f"review text number {i}: the film was {'great' if i % 2 else 'awful'}" for i in range(30)]


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


ANN, BOB, ADMIN = bearer(REVIEWERS["ann"]), bearer(REVIEWERS["bob"]), bearer(ADMIN_TOKEN)


@pytest.fixture(scope="module")
def loop_adapters(tmp_path_factory, tiny_model_dir, weights_id):
    root = tmp_path_factory.mktemp("loop-adapters")
    make_adapter(tiny_model_dir, root / "sure", seed=5, weights_id=weights_id, threshold=0.0)
    make_adapter(tiny_model_dir, root / "unsure", seed=6, weights_id=weights_id, threshold=None)
    return root


@pytest.fixture(scope="module")
def loop_server(serve, loop_adapters, tmp_path_factory):
    db = tmp_path_factory.mktemp("feedback") / "feedback.db"
    with serve(adapters_dir=loop_adapters, feedback_db=str(db), audit_fraction=1.0,
               reviewer_tokens=REVIEWERS) as live:
        live.db = db
        yield live


@pytest.fixture()
def client(loop_server):
    with httpx.Client(base_url=loop_server.url, timeout=60) as http:
        yield http


def classify(client, adapter: str, texts: list[str]) -> dict:
    reply = client.post("/v1/classify", json={"texts": texts, "adapter": adapter})
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_responses_carry_a_request_id_and_bundle_version(client, loop_adapters):
    first, second = classify(client, "sure", TEXTS[:2]), classify(client, "sure", TEXTS[:2])
    assert len(first["request_id"]) == 32 and first["request_id"] != second["request_id"]
    assert first["bundle_version"] == read_bundle(loop_adapters / "sure").manifest_sha256[:12] + ".v1"


def test_review_and_audit_texts_enter_the_queue_with_their_text(client, loop_server):
    reviewed = classify(client, "unsure", TEXTS[:3])
    audited = classify(client, "sure", TEXTS[3:5])
    assert {r["decision"] for r in reviewed["results"]} == {"review"}
    assert {r["decision"] for r in audited["results"]} == {"automate"}
    with open_store(loop_server.db) as store:
        review_item = store.item(reviewed["request_id"], 2)
        audit_item = store.item(audited["request_id"], 1)
    assert (review_item.reason, review_item.text, review_item.adapter) == ("review", TEXTS[2], "unsure")
    assert (audit_item.reason, audit_item.text, audit_item.label) == ("audit", TEXTS[4],
                                                                      audited["results"][1]["label"])
    assert audit_item.probs == audited["results"][1]["raw_probs"]


def test_review_needs_a_reviewer_or_admin_token(client):
    assert client.get("/v1/review/next").status_code == 401
    wrong = client.get("/v1/review/next", headers=bearer("not-a-token-at-all"))
    assert wrong.status_code == 403 and wrong.json()["detail"] == "wrong reviewer token"
    assert client.post("/v1/feedback", json={"request_id": "x", "position": 0, "label": "positive"}).status_code == 401
    classify(client, "unsure", TEXTS[:1])
    item = client.get("/v1/review/next", params={"adapter": "unsure"}, headers=ADMIN).json()["item"]
    assert item["claim_until"] is not None
    done = client.post(f"/v1/review/{item['request_id']}/{item['position']}", json={"label": "positive"},
                       headers=ADMIN)
    assert done.status_code == 200 and done.json()["reviewer"] == "admin" and done.json()["source"] == "page"


def test_two_reviewers_get_different_items_until_labelled(client):
    request = classify(client, "unsure", TEXTS[5:7])["request_id"]
    for _ in range(20):  # earlier tests may have left items of this adapter: work through to ours
        ann = client.get("/v1/review/next", params={"adapter": "unsure"}, headers=ANN).json()["item"]
        if ann["request_id"] == request:
            break
        client.post(f"/v1/review/{ann['request_id']}/{ann['position']}", json={"label": "negative"}, headers=ANN)
    bob = client.get("/v1/review/next", params={"adapter": "unsure"}, headers=BOB).json()["item"]
    assert (ann["request_id"], ann["position"]) != (bob["request_id"], bob["position"])
    again = client.get("/v1/review/next", params={"adapter": "unsure"}, headers=ANN).json()["item"]
    assert (again["request_id"], again["position"]) == (ann["request_id"], ann["position"])
    assert ann["text"] == TEXTS[5] and ann["labels"] == ["negative", "positive"]
    client.post(f"/v1/review/{ann['request_id']}/{ann['position']}", json={"label": "negative"}, headers=ANN)
    client.post(f"/v1/review/{bob['request_id']}/{bob['position']}", json={"label": "positive"}, headers=BOB)
    assert client.get("/v1/review/next", params={"adapter": "unsure"}, headers=ANN).json() == {"item": None,
                                                                                                "pending": 0}


def test_skipping_hands_the_item_to_the_next_reviewer(client):
    request = classify(client, "unsure", TEXTS[7:8])["request_id"]
    item = client.get("/v1/review/next", params={"adapter": "unsure"}, headers=ANN).json()["item"]
    assert item["request_id"] == request
    assert client.get("/v1/review/next", params={"adapter": "unsure"}, headers=BOB).json()["item"] is None
    assert client.post(f"/v1/review/{request}/0/release", headers=ANN).status_code == 204
    assert client.get("/v1/review/next", params={"adapter": "unsure"}, headers=BOB).json()["item"]["request_id"] \
        == request
    client.post(f"/v1/review/{request}/0", json={"label": "positive"}, headers=BOB)


def test_feedback_endpoint(client):
    request = classify(client, "sure", TEXTS[8:10])["request_id"]
    ok = client.post("/v1/feedback", json={"request_id": request, "position": 1, "label": "positive"}, headers=BOB)
    assert ok.status_code == 200 and ok.json()["source"] == "api" and ok.json()["reviewer"] == "bob"
    again = client.post("/v1/feedback", json={"request_id": request, "position": 1, "label": "positive"},
                        headers=ANN)
    assert again.status_code == 200 and again.json()["reviewer"] == "bob"
    conflict = client.post("/v1/feedback", json={"request_id": request, "position": 1, "label": "negative"},
                           headers=ANN)
    assert conflict.status_code == 409 and "the first label stands" in conflict.json()["detail"]
    unknown = client.post("/v1/feedback", json={"request_id": "feedface", "position": 0, "label": "positive"},
                          headers=ANN)
    assert unknown.status_code == 404 and "no text was logged as request 'feedface'" in unknown.json()["detail"]
    bad = client.post("/v1/feedback", json={"request_id": request, "position": 0, "label": "meh"}, headers=ANN)
    assert bad.status_code == 422 and "'meh' is not one of this text's labels" in bad.json()["detail"]
    typo = client.post("/v1/feedback", json={"request_id": request, "position": 0, "lable": "x"}, headers=ANN)
    assert typo.status_code == 422


def test_live_accuracy_of_audited_texts_raises_an_alarm(client, caplog):
    caplog.set_level(logging.WARNING, logger="confidently.server")
    reply = classify(client, "sure", TEXTS[:30])
    labels = reply["labels"]
    before = client.get("/v1/adapters/sure/drift").json()["live_accuracy"]
    for i, result in enumerate(reply["results"]):
        # The first 20 as the model said; then 10 the other way: 20/30 plus earlier ones.
        truth = result["label"] if i < 20 else next(x for x in labels if x != result["label"])
        client.post("/v1/feedback", json={"request_id": reply["request_id"], "position": i, "label": truth},
                    headers=ANN)
    live = client.get("/v1/adapters/sure/drift").json()["live_accuracy"]
    assert live["n"] == before["n"] + 30 and live["correct"] == before["correct"] + 20
    assert live["target"] == 0.9 and live["alarm"] and live["status"] == "below target"
    assert live["lower"] < live["accuracy"] < live["upper"]
    # the verdict reads an anytime-valid confidence sequence, and says so; the single-look bounds are extra
    assert live["bounds"].startswith("anytime-valid 95% confidence sequence (Robbins' beta-binomial mixture")
    assert live["lower"] < live["single_look_lower"] < live["single_look_upper"] < live["upper"]
    alarms = [r.getMessage() for r in caplog.records if "live accuracy alarm for sure" in r.getMessage()]
    assert alarms and "anytime-valid 95% bounds" in alarms[0] and "below target: the anytime upper bound" in alarms[0]
    help_line = next(line for line in client.get("/metrics").text.splitlines()
                     if line.startswith("# HELP confidently_live_accuracy "))
    assert "anytime-valid 95% confidence sequence" in help_line


def test_drift_against_a_reference_from_the_same_traffic(client, loop_server, loop_adapters, tiny_model_dir,
                                                         weights_id):
    texts = [f"{t} (again {i})" for i, t in enumerate(TEXTS * 4)]  # 120 texts: above min_n
    answers = [r for chunk in range(0, 120, 60) for r in classify(client, "sure", texts[chunk:chunk + 60])["results"]]
    labels = ["negative", "positive"]
    reference = Reference.from_scores([[r["raw_probs"][x] for x in labels] for r in answers],
                                      [r["other_mass"] for r in answers], labels=labels, source="this test")
    # The same adapter (seed, weights, calibrator) with the reference in its bundle.
    make_adapter(tiny_model_dir, loop_adapters / "sure-ref", seed=5, weights_id=weights_id, threshold=0.0,
                 extra_json={"reference.json": reference.to_dict()})
    client.post("/v1/adapters/sure-ref", headers=ADMIN).raise_for_status()
    for chunk in range(0, 120, 60):
        classify(client, "sure-ref", texts[chunk:chunk + 60])

    report = client.get("/v1/adapters/sure-ref/drift").json()
    drift = report["drift"]
    assert drift["status"] == "ok" and drift["n_live"] == 120 and drift["n_reference"] == 120
    assert drift["reference_source"] == "this test" and drift["alarms"] == []
    assert drift["reference_decided_by"] == "no decision (no policy)"
    assert [f["feature"] for f in drift["features"]] == ["raw_confidence", "other_mass", "label"]
    assert all(f["psi"] < 1e-3 for f in drift["features"])
    assert client.get("/v1/adapters/sure/drift").json()["drift"]["status"] == "no reference"
    assert client.get("/v1/adapters/nope/drift").status_code == 404

    from prometheus_client.parser import text_string_to_metric_families

    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    psi = {tuple(s.labels.values()): s.value for s in families["confidently_drift_psi"].samples}
    assert psi[("sure-ref", "raw_confidence")] < 1e-3
    accuracy = {tuple(s.labels.values()): s.value for s in families["confidently_live_accuracy"].samples}
    assert accuracy[("sure", "lower")] < accuracy[("sure", "estimate")]
    window = {s.labels["adapter"]: s.value for s in families["confidently_drift_window_texts"].samples}
    assert window["sure-ref"] == 120
    raw = families["confidently_raw_confidence"].samples
    assert any(s.name == "confidently_raw_confidence_count" and s.labels["adapter"] == "sure-ref"
               and s.value == 120 for s in raw)


def test_without_a_feedback_db_there_is_no_queue(serve, loop_adapters):
    with serve(adapters_dir=loop_adapters, reviewer_tokens=REVIEWERS) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        reply = http.post("/v1/classify", json={"texts": ["fine"], "adapter": "unsure"}).json()
        assert len(reply["request_id"]) == 32
        missing = http.get("/v1/review/next", headers=ANN)
        assert missing.status_code == 404 and "--feedback-db" in missing.json()["detail"]
        assert http.get("/v1/adapters/unsure/drift").json()["live_accuracy"] is None
        assert http.get("/review").status_code == 200


def test_audit_fraction_zero_queues_only_review(serve, loop_adapters, tmp_path):
    db = tmp_path / "feedback.db"
    with serve(adapters_dir=loop_adapters, feedback_db=str(db), audit_fraction=0.0) as live, \
            httpx.Client(base_url=live.url, timeout=60) as http:
        http.post("/v1/classify", json={"texts": TEXTS[:4], "adapter": "sure"}).raise_for_status()
        http.post("/v1/classify", json={"texts": TEXTS[:2], "adapter": "unsure"}).raise_for_status()
        disabled = http.get("/v1/review/next", headers=ANN)
        assert disabled.status_code == 403  # no reviewer tokens: only the admin may review
        assert http.get("/v1/review/next", headers=ADMIN).json()["pending"] == 2
    with open_store(db) as store:
        assert store.pending("sure", any_adapter=False) == 0 and store.pending("unsure", any_adapter=False) == 2
