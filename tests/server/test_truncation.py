"""``serve`` treats a long text as ``score`` and ``classify`` do: cut, flagged, decided review, never refused."""

from __future__ import annotations

import pytest

from confidently.decision.calibrated import CalibratedClassifier
from confidently.decision.policy import DecisionPolicy
from confidently.scoring.classifier import Classifier

#: Automates everything it is asked about: only the truncation rule can send a text to review.
AUTOMATE_ALL = DecisionPolicy(threshold=0.0, target_accuracy=None, certified=False, method="test: automate all")
SHORT = "the movie was great"
LONG = "a wonderful film, I love it " * 10  # 280 characters, over the 50-character cap below


@pytest.fixture(scope="module")
def bundle(tiny_backend, tmp_path_factory):
    from test_bundle import make_bundle

    folder = tmp_path_factory.mktemp("automate-all")
    make_bundle(folder, Classifier(backend=tiny_backend), policy=AUTOMATE_ALL)
    return folder


REVIEWER = {"ann": "ann-token-0123456789"}


@pytest.fixture(scope="module")
def server(serve, bundle, tmp_path_factory):
    db = tmp_path_factory.mktemp("feedback") / "feedback.db"
    with serve(calibration=bundle, max_text_chars=50, max_request_cost=4000, feedback_db=str(db),
               audit_fraction=0.0, reviewer_tokens=REVIEWER) as live:
        yield live


def test_a_text_over_the_cap_is_cut_flagged_and_reviewed_not_refused(http, tiny_backend, bundle):
    reply = http.post("/v1/classify", json={"texts": [SHORT, LONG]})
    assert reply.status_code == 200, reply.text
    results = reply.json()["results"]
    assert [r["truncated"] for r in results] == [False, True]
    assert [(r["decision"], r["review_reason"]) for r in results] == [("automate", None), ("review", "truncated")]
    # the same cap through the Python API (what score and classify use) gives the same answer
    local = CalibratedClassifier(Classifier(backend=tiny_backend, max_text_chars=50), bundle=bundle)
    expected = local.classify_many([SHORT, LONG])
    for got, want in zip(results, expected):
        assert got["raw_probs"] == pytest.approx(want.raw_probs, abs=1e-5)
        assert (got["decision"], got["review_reason"]) == (want.decision, want.review_reason)


def test_the_cap_is_published_and_a_long_text_costs_only_the_cap(http):
    limits = http.get("/healthz").json()["limits"]
    assert limits["max_text_chars"] == 50
    # 64 texts of 280 characters would cost 17,920 uncut, over the budget of 4,000; cut, each costs 50 (3,200)
    reply = http.post("/v1/classify", json={"texts": [LONG] * 64})
    assert reply.status_code == 200, reply.text
    assert all(r["truncated"] and r["review_reason"] == "truncated" for r in reply.json()["results"])


def test_the_review_queue_says_why_and_which_probabilities_are_which(http):
    reply = http.post("/v1/classify", json={"texts": [SHORT, LONG + " queued"]}).json()
    cut = reply["results"][1]
    token = {"Authorization": f"Bearer {REVIEWER['ann']}"}
    item = None
    while item is None or item["request_id"] != reply["request_id"]:  # earlier tests queued cut texts too
        found = http.get("/v1/review/next", headers=token).json()["item"]
        assert found is not None, "the truncated text was not queued"
        if found["request_id"] != reply["request_id"]:
            http.post(f"/v1/review/{found['request_id']}/{found['position']}", json={"label": "positive"},
                      headers=token)
        item = found
    assert (item["position"], item["text"]) == (1, LONG + " queued")  # the reviewer reads the whole text
    assert (item["review_reason"], item["calibrated"]) == ("truncated", True)
    assert item["raw_probs"] == pytest.approx(cut["raw_probs"]) and "probs" not in item
    assert item["calibrated_probs"] == pytest.approx(cut["calibrated_probs"])
    assert item["confidence"] == pytest.approx(cut["calibrated_probs"][item["label"]])


def test_metrics_count_texts_reviewed_because_they_were_cut(http):
    def truncated_count() -> float:
        lines = http.get("/metrics").text.splitlines()
        found = [line for line in lines if line.startswith('confidently_review_reasons_total{adapter="(base)",'
                                                           'reason="truncated"}')]
        return float(found[0].split()[-1]) if found else 0.0

    before = truncated_count()
    assert http.post("/v1/classify", json={"texts": [LONG, SHORT, LONG + "!"]}).status_code == 200
    assert truncated_count() == before + 2
