"""The feedback store's contract, run against SQLite and a real PostgreSQL server alike."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from confidently.errors import DataError
from confidently.feedback import LabelConflictError, LoggedText, StoreError, UnknownItemError, open_store
from confidently.feedback.sql_store import SCHEMA_VERSION

PROBS = {"negative": 0.3, "positive": 0.7}


def logged(position: int, queue: str | None = "review", label: str = "positive", decision: str = "review"):
    return LoggedText(position=position, label=label, confidence=PROBS[label], decision=decision, probs=PROBS,
                      queue=queue, text=None if queue is None else f"text {position}")


def fill(store, n: int, *, adapter: str | None = "alpha", request: str = "req") -> list[tuple[str, int]]:
    store.record(request, adapter, "v1", [logged(i) for i in range(n)])
    return [(request, i) for i in range(n)]


def test_schema_is_versioned_and_migrated_once(store, store_url):
    assert store.schema_version() == SCHEMA_VERSION
    with open_store(store_url) as again:  # reopening applies nothing twice
        assert again.schema_version() == SCHEMA_VERSION
        fill(again, 1)
    assert store.pending() == 1


def test_sqlite_file_is_in_wal_mode(tmp_path):
    path = tmp_path / "sub" / "feedback.db"
    with open_store(path):
        pass
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = connection.execute("SELECT version, description FROM schema_migrations").fetchall()
    assert [v for v, _ in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "feedback.db"
    open_store(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1} is newer"):
        open_store(path)


def test_a_file_that_is_not_a_database_is_one_clear_error(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not sqlite at all " * 100)
    with pytest.raises(StoreError, match="notes.db"):
        open_store(path)


def test_claim_label_roundtrip(store):
    store.record("r1", "alpha", "v7", [logged(0), logged(1, queue=None, decision="automate"),
                                       logged(2, queue="audit", decision="automate")])
    assert store.pending() == 2
    first = store.claim("ann")
    assert (first.request_id, first.position, first.reason, first.text) == ("r1", 0, "review", "text 0")
    assert (first.adapter, first.bundle_version, first.label, first.labels) == ("alpha", "v7", "positive",
                                                                                 ["negative", "positive"])
    assert first.claimed_by == "ann" and first.claim_until > time.time()
    assert store.claim("ann").position == 0  # her claim again, e.g. after a reload
    assert store.claim("bob").position == 2
    assert store.claim("cy") is None

    feedback = store.label("r1", 0, "negative", reviewer="ann", source="page")
    assert (feedback.label, feedback.reviewer, feedback.source) == ("negative", "ann", "page")
    assert store.pending() == 1
    assert store.claim("ann") is None  # bob still holds the other one

    # Programs may label any logged text, queued or not.
    store.label("r1", 1, "positive", reviewer="batch-job")
    rows = store.labelled("alpha")
    assert [(r.position, r.true_label, r.correct, r.reason) for r in rows] == [
        (0, "negative", False, "review"), (1, "positive", True, None)]
    assert store.labelled("alpha", reason="audit") == []
    assert store.labelled(None) == []


def test_label_errors(store):
    fill(store, 1)
    with pytest.raises(UnknownItemError, match="no text was logged as request 'nope', position 0"):
        store.label("nope", 0, "positive", reviewer="ann")
    with pytest.raises(DataError, match="'maybe' is not one of this text's labels"):
        store.label("req", 0, "maybe", reviewer="ann")
    store.label("req", 0, "positive", reviewer="ann")
    again = store.label("req", 0, "positive", reviewer="bob")  # a retry: the first stands, no error
    assert again.reviewer == "ann"
    with pytest.raises(LabelConflictError, match="already labelled 'positive' by ann"):
        store.label("req", 0, "negative", reviewer="bob")
    assert [r.true_label for r in store.labelled("alpha")] == ["positive"]


def test_audit_counts_score_only_labelled_audit_texts(store):
    store.record("r", "alpha", "v1", [logged(0, queue="audit", decision="automate"),
                                      logged(1, queue="audit", decision="automate"),
                                      logged(2, queue="audit", decision="automate"),
                                      logged(3, queue="review"), logged(4, queue=None, decision="automate")])
    store.record("s", "alpha", "v2", [logged(0, queue="audit", decision="automate")])
    assert store.audit_counts("alpha") == (0, 0)
    for position, label in [(0, "positive"), (1, "negative"), (3, "positive"), (4, "positive")]:
        store.label("r", position, label, reviewer="ann")
    store.label("s", 0, "positive", reviewer="ann")
    assert store.audit_counts("alpha") == (2, 3)  # review and unqueued texts do not count; 2 is unlabelled
    assert store.audit_counts("alpha", bundle_version="v1") == (1, 2)
    assert store.audit_counts(None) == (0, 0)


def test_release_and_expired_leases_hand_the_item_on(store):
    fill(store, 1)
    assert store.claim("ann", lease_s=600).position == 0
    assert store.claim("bob") is None
    store.release("bob", "req", 0)  # not bob's claim: nothing changes
    assert store.claim("bob") is None
    store.release("ann", "req", 0)
    assert store.claim("bob", lease_s=0.2).claimed_by == "bob"
    store.record("req2", "alpha", None, [logged(0)])
    store.release("bob", "req", 0)  # skipped: the newer, unskipped item comes first
    assert store.claim("bob", lease_s=0.2).request_id == "req2"
    time.sleep(0.3)
    assert store.claim("ann").request_id == "req2"  # bob's lease ran out


def test_claims_can_be_scoped_to_one_adapter(store):
    store.record("a", "alpha", None, [logged(0)])
    store.record("b", None, None, [logged(0)])
    assert store.pending("alpha", any_adapter=False) == 1
    item = store.claim("ann", adapter=None, any_adapter=False)
    assert (item.request_id, item.adapter) == ("b", None)
    assert store.claim("ann", adapter=None, any_adapter=False).request_id == "b"
    assert store.claim("bob", adapter="alpha", any_adapter=False).request_id == "a"
    assert store.claim("cy", adapter=None, any_adapter=False) is None


def test_concurrent_reviewers_in_threads_never_share_an_item(store):
    items = set(fill(store, 60))
    got: dict[str, list] = {name: [] for name in (f"r{i}" for i in range(6))}
    start = threading.Barrier(6)

    def review(name: str) -> None:
        start.wait()
        while (item := store.claim(name)) is not None:
            got[name].append((item.request_id, item.position))
            time.sleep(0.002)  # reading the text
            store.label(item.request_id, item.position, "positive", reviewer=name)

    threads = [threading.Thread(target=review, args=(name,)) for name in got]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    claimed = [item for mine in got.values() for item in mine]
    assert sorted(claimed) == sorted(items)  # every item once, none twice
    assert sum(1 for mine in got.values() if mine) > 1  # the reviewers really overlapped
    assert store.pending() == 0


REVIEWER = """
import json, sys
from confidently.feedback import open_store
store = open_store(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()  # all start together
seen = []
while (item := store.claim(sys.argv[2], lease_s=600)) is not None:
    seen.append([item.request_id, item.position])
    store.label(item.request_id, item.position, "positive", reviewer=sys.argv[2])
print(json.dumps(seen))
"""


def test_concurrent_reviewers_in_processes_never_share_an_item(store, store_url):
    items = set(fill(store, 80))
    workers = [subprocess.Popen([sys.executable, "-c", REVIEWER, store_url, f"p{i}"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True) for i in range(4)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        worker.stdin.write("go\n")
        worker.stdin.flush()
    claimed = []
    for worker in workers:
        out, _ = worker.communicate(timeout=120)
        claimed += [tuple(item) for item in json.loads(out)]
    assert sorted(claimed) == sorted(items)  # every item once, none twice
    assert store.pending() == 0


def test_a_queued_item_says_which_probabilities_are_calibrated(store):
    calibrated = {"negative": 0.1, "positive": 0.9}
    store.record("req", "alpha", "v1", [
        LoggedText(position=0, label="positive", confidence=0.9, decision="review", probs=PROBS, queue="review",
                   text="cut text", calibrated_probs=calibrated, review_reason="truncated"),
        LoggedText(position=1, label="positive", confidence=0.7, decision="review", probs=PROBS, queue="review",
                   text="raw text", review_reason="below_threshold")])
    first, second = store.item("req", 0), store.item("req", 1)
    assert (first.probs, first.calibrated_probs, first.calibrated, first.review_reason) == \
        (PROBS, calibrated, True, "truncated")
    assert (second.probs, second.calibrated_probs, second.calibrated, second.review_reason) == \
        (PROBS, None, False, "below_threshold")


def test_items_logged_before_calibrated_probabilities_were_stored_stay_readable(store_url, monkeypatch):
    import confidently.feedback.sql_store as sql_store

    with monkeypatch.context() as old_version:  # a store written by a version-1 confidently
        old_version.setattr(sql_store, "MIGRATIONS", sql_store.MIGRATIONS[:1])
        old_version.setattr(sql_store, "SCHEMA_VERSION", 1)
        with open_store(store_url) as old:
            assert old.schema_version() == 1
            with old._transaction() as execute:  # the row as version 1 wrote it
                execute("INSERT INTO decisions (request_id, position, adapter, bundle_version, label, confidence, "
                        "decision, probs, created_at) VALUES ('old', 0, 'alpha', 'v1', 'positive', 0.7, 'review', "
                        "?, 0)", (json.dumps(PROBS),))
                execute("INSERT INTO queue (request_id, position, adapter, reason, text) VALUES "
                        "('old', 0, 'alpha', 'review', 'an old text')", ())
    with open_store(store_url) as upgraded:
        assert upgraded.schema_version() == SCHEMA_VERSION
        item = upgraded.item("old", 0)
        assert (item.text, item.probs, item.calibrated, item.calibrated_probs, item.review_reason) == \
            ("an old text", PROBS, None, None, None)
        assert upgraded.label("old", 0, "negative", reviewer="ann").label == "negative"


def test_features_round_trip_with_their_dimension_and_space(store):
    # What a probe or combiner read is kept per decision as float32 bytes, tagged with where it comes from;
    # a text logged without features (a calibrator that reads class probabilities) reads back as None.
    import numpy as np

    from confidently.feedback.features import FeatureVector

    hidden = np.random.default_rng(0).normal(size=(2, 640))
    vectors = [FeatureVector.of(row, "probe:0123456789abcdef") for row in hidden]
    store.record("req", "alpha", "v1", [
        LoggedText(position=i, label="positive", confidence=0.7, decision="review", probs=PROBS, queue="review",
                   text=f"text {i}", features=vectors[i] if i < 2 else None) for i in range(3)])
    for i in range(3):
        store.label("req", i, "negative", reviewer="ann")
    rows = store.labelled("alpha")
    assert [r.features for r in rows] == [*vectors, None]
    assert rows[0].features.dim == 640 and len(rows[0].features.blob) == 640 * 4
    np.testing.assert_array_equal(rows[1].features.values(), hidden[1].astype(np.float32))


def test_a_feature_vector_with_the_wrong_byte_count_is_refused():
    from confidently.feedback.features import FeatureVector

    with pytest.raises(DataError, match="dimension 3 needs 12 bytes; got 8"):
        FeatureVector("probe:x", 3, b"\0" * 8)


def test_a_store_from_before_features_is_migrated_and_its_rows_read_without_them(tmp_path):
    from confidently.feedback.sql_store import MIGRATIONS

    path = tmp_path / "feedback.db"
    with sqlite3.connect(path) as connection:  # the schema an older confidently wrote, with one labelled text
        connection.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                           "applied_at REAL NOT NULL)")
        for statement in MIGRATIONS[0][2]:
            connection.execute(statement.format(seq="INTEGER PRIMARY KEY AUTOINCREMENT", real="REAL"))
        connection.execute("INSERT INTO schema_migrations VALUES (1, 'v1', 0)")
        connection.execute("INSERT INTO decisions VALUES ('old', 0, 'alpha', 'v1', 'positive', 0.7, 'review', ?, 0)",
                           (json.dumps(PROBS),))
        connection.execute("INSERT INTO queue (request_id, position, adapter, reason, text) VALUES "
                           "('old', 0, 'alpha', 'review', 'an old text')")
    with open_store(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        store.label("old", 0, "positive", reviewer="ann")
        fill(store, 1, request="new")
        [old] = store.labelled("alpha")
    assert old.request_id == "old" and old.features is None and old.probs == PROBS
