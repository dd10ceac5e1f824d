"""The review page in a real headless Chromium (Debian's package, driven by playwright; no browser download).

Skips when chromium or playwright is missing.
"""

from __future__ import annotations

import shutil

import httpx
import pytest

from confidently.feedback import open_store

from .conftest import make_adapter

REVIEWERS = {"ann": "ann-token-0123456789", "bob": "bob-token-0123456789"}
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page_server(serve, tmp_path_factory, tiny_model_dir, weights_id):
    adapters = tmp_path_factory.mktemp("page-adapters")
    make_adapter(tiny_model_dir, adapters / "unsure", seed=6, weights_id=weights_id, threshold=None)
    db = tmp_path_factory.mktemp("page-feedback") / "feedback.db"
    with serve(adapters_dir=adapters, feedback_db=str(db), reviewer_tokens=REVIEWERS) as live:
        live.db = db
        yield live


def sign_in(browser, url: str, token: str):
    page = browser.new_context().new_page()
    page.goto(url + "/review")
    page.fill("#token", token)
    page.click("#start")
    return page


def test_reviewers_label_texts_in_the_browser(browser, page_server):
    texts = ["first text to review, a great film", "second text to review, an awful film"]
    with httpx.Client(base_url=page_server.url, timeout=60) as http:
        reply = http.post("/v1/classify", json={"texts": texts, "adapter": "unsure"}).json()
    request = reply["request_id"]

    ann = sign_in(browser, page_server.url, REVIEWERS["ann"])
    ann.wait_for_selector("#review:not([hidden])")
    assert ann.text_content("#text") == texts[0]
    assert ann.text_content("#model-label") == reply["results"][0]["label"]
    assert ann.text_content("#confidence") == f"{reply['results'][0]['confidence']:.3f}"
    # which probabilities are which: the calibrated ones the confidence comes from, and the raw shares
    first = reply["results"][0]
    assert ann.text_content("#confidence-kind") == "calibrated"
    shares = {kind: " · ".join(f"{label} {first[kind][label]:.3f}" for label in ("negative", "positive"))
              for kind in ("calibrated_probs", "raw_probs")}
    assert ann.text_content("#probs") == (f"calibrated probabilities: {shares['calibrated_probs']}; "
                                          f"raw (uncalibrated share of the label mass): {shares['raw_probs']}")
    assert ann.text_content("#decision") == "review: no threshold" and ann.is_hidden("#truncated")
    assert ann.text_content("#pending") == "2"
    assert ann.locator("#labels button").all_text_contents() == ["1 · negative", "2 · positive"]

    # A second reviewer, at the same time, gets the other text.
    bob = sign_in(browser, page_server.url, REVIEWERS["bob"])
    bob.wait_for_selector("#review:not([hidden])")
    assert bob.text_content("#text") == texts[1]

    ann.click("#labels button[data-label='positive']")
    ann.wait_for_selector("#empty:not([hidden])")  # bob holds the only other text
    assert "Saved “positive”" in ann.text_content("#status")
    bob.keyboard.press("1")  # keyboard shortcut: the first label
    bob.wait_for_selector("#empty:not([hidden])")

    with open_store(page_server.db) as store:
        labelled = {(r.request_id, r.position): (r.true_label, r) for r in store.labelled("unsure")}
    assert labelled[(request, 0)][0] == "positive"
    assert labelled[(request, 1)][0] == "negative"
    assert store.pending() == 0


def test_a_wrong_token_is_shown_and_nothing_is_claimed(browser, page_server):
    with httpx.Client(base_url=page_server.url, timeout=60) as http:
        http.post("/v1/classify", json={"texts": ["a text nobody may see"], "adapter": "unsure"}).raise_for_status()
    page = sign_in(browser, page_server.url, "not-the-right-token")
    page.wait_for_selector("#status.error")
    assert page.text_content("#status") == "wrong reviewer token"
    assert page.is_hidden("#review")
    with open_store(page_server.db) as store:
        item = store.claim("probe", lease_s=1)
    assert item.text == "a text nobody may see" and item.claimed_by == "probe"


def test_skip_shows_the_next_text(browser, page_server):
    with httpx.Client(base_url=page_server.url, timeout=60) as http:
        http.post("/v1/classify", json={"texts": ["skip me", "then me"], "adapter": "unsure"}).raise_for_status()
    page = sign_in(browser, page_server.url, REVIEWERS["bob"])
    page.wait_for_selector("#review:not([hidden])")
    seen = [page.text_content("#text")]
    for _ in range(3):
        page.click("#skip")
        page.wait_for_function("document.getElementById('text').textContent !== %r" % seen[-1])
        seen.append(page.text_content("#text"))
        if {"skip me", "then me"} <= set(seen):
            break
    assert {"skip me", "then me"} <= set(seen)
