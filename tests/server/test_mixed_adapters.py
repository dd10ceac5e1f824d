"""Mixed-adapter batches: texts for different adapters (and the bare base model) in one forward pass.

The property test draws random mixes of three adapters and the base model, with the prompt prefix
cached or not, and requires each text's class probabilities to equal the ones it gets in a batch of
its own adapter (float32: within 1e-6; batch-invariant bfloat16: bit-identical). The server test
checks that requests for different adapters queued together share one forward pass and get the
answers they get alone.
"""

from __future__ import annotations

import threading

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confidently.scoring.adapter_batches import AdapterGroup, score_groups
from confidently.backends.transformers_backend import TransformersBackend
from confidently.scoring.classifier import Classifier
from confidently.errors import ArtifactError, ConfigError
from confidently.tasks.task import SENTIMENT

from .conftest import TRIAGE, HeldModel, make_adapter, wait_until

POOL = ["yes", "I hate it", "the movie was great", "a wonderful film and I love it",
        "boring film, terrible and bad, I hate it so much",
        "the movie was great and I love it, a wonderful film " * 3]
NAMES = ["a", "b", "c", None]


def with_adapters(backend: TransformersBackend, folders) -> TransformersBackend:
    for name, folder in zip("abc", folders):
        backend.load_adapter(folder, name, activate=False)
    return backend


@pytest.fixture(scope="module")
def adapter_folders(tmp_path_factory, tiny_model_dir, weights_id):
    root = tmp_path_factory.mktemp("mixed")
    return [make_adapter(tiny_model_dir, root / name, seed=20 + i, weights_id=weights_id)
            for i, name in enumerate("abc")]


@pytest.fixture(scope="module")
def backend(tiny_model_dir, adapter_folders):
    return with_adapters(TransformersBackend(str(tiny_model_dir), dtype="float32"), adapter_folders)


def class_probs(clf, logprobs):
    mass = clf.verbalizer.class_mass(logprobs)
    return mass / mass.sum(axis=1, keepdims=True)


def per_adapter(backend, clf, prompts, adapters, shared_prefix):
    """Each prompt's log-probs from a batch of its own adapter's prompts alone."""
    out = np.empty((len(prompts), len(backend.vocabulary())), dtype=np.float32)
    for name in set(adapters):
        rows = [i for i, a in enumerate(adapters) if a == name]
        backend.set_adapter(name)
        out[rows] = backend.next_token_logprobs([prompts[i] for i in rows], shared_prefix=shared_prefix)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(st.integers(0, len(POOL) - 1), st.sampled_from(NAMES)), min_size=1, max_size=12),
       prefix_cache=st.booleans(), active=st.sampled_from(NAMES))
def test_mixed_batch_scores_equal_single_adapter_batches(backend, rows, prefix_cache, active):
    clf = Classifier(backend=backend)
    prompts = [clf.prompt(POOL[i]) for i, _ in rows]
    adapters = [a for _, a in rows]
    prefix = clf.prefix if prefix_cache else ""
    backend.set_adapter(active)
    mixed = backend.next_token_logprobs(prompts, shared_prefix=prefix, adapters=adapters)
    assert backend.active_adapter == active  # a mixed batch leaves the active adapter as it was
    alone = per_adapter(backend, clf, prompts, adapters, prefix)
    assert np.abs(class_probs(clf, mixed) - class_probs(clf, alone)).max() <= 1e-6
    assert np.abs(mixed - alone).max() <= 1e-5


def test_the_adapters_really_differ(backend):
    """Sensitivity check: the property test's adapters move the scores, so mixing them up would fail it."""
    clf = Classifier(backend=backend)
    prompts = [clf.prompt(t) for t in POOL]
    probs = [class_probs(clf, backend.next_token_logprobs(prompts, adapters=[name] * len(prompts))) for name in NAMES]
    for i in range(len(probs)):
        for j in range(i):
            assert np.abs(probs[i] - probs[j]).max() > 1e-3


def test_mixed_batch_is_bit_identical_in_the_invariant_mode(wide_tiny_model_dir, tmp_path):
    wide_id = TransformersBackend(str(wide_tiny_model_dir), dtype="float32").weights_id
    folders = [make_adapter(wide_tiny_model_dir, tmp_path / name, seed=30 + i, weights_id=wide_id)
               for i, name in enumerate("abc")]
    invariant = with_adapters(TransformersBackend(str(wide_tiny_model_dir), device="cpu", dtype="bf16-invariant"),
                              folders)
    clf = Classifier(backend=invariant)
    prompts = [clf.prompt(t) for t in POOL] * 2
    adapters = [NAMES[i % 4] for i in range(len(prompts))]
    for prefix in (clf.prefix, ""):
        mixed = invariant.next_token_logprobs(prompts, shared_prefix=prefix, adapters=adapters)
        for i, (prompt, name) in enumerate(zip(prompts, adapters)):
            invariant.set_adapter(name)
            assert np.array_equal(invariant.next_token_logprobs([prompt], shared_prefix=prefix)[0], mixed[i])


def test_groups_of_different_tasks_score_as_their_classifiers_do(backend):
    sentiment, triage = Classifier(backend=backend, task=SENTIMENT), Classifier(backend=backend, task=TRIAGE)
    groups = [AdapterGroup(sentiment, "a", POOL[:3]), AdapterGroup(triage, "b", POOL[2:]),
              AdapterGroup(sentiment, None, POOL[1:4])]
    scored = score_groups(groups)
    for group, scores in zip(groups, scored):
        backend.set_adapter(group.adapter)
        expected = group.classifier.score(group.texts)
        assert scores.labels == expected.labels
        assert np.abs(scores.probs - expected.probs).max() <= 1e-6
        assert np.array_equal(scores.truncated, expected.truncated)


def test_an_unknown_adapter_or_a_foreign_backend_is_refused(backend, tiny_model_dir):
    clf = Classifier(backend=backend)
    with pytest.raises(ArtifactError, match="no adapter named 'zeta' is loaded"):
        backend.next_token_logprobs([clf.prompt("yes")], adapters=["zeta"])
    other = Classifier(backend=TransformersBackend(str(tiny_model_dir), dtype="float32"))
    with pytest.raises(ConfigError, match="one backend"):
        score_groups([AdapterGroup(clf, None, ["yes"]), AdapterGroup(other, None, ["no"])])


@pytest.fixture(scope="module")
def server(serve, adapters_dir):
    with serve(adapters_dir=adapters_dir, batch_size=16) as live:
        yield live


def test_requests_for_different_adapters_share_one_forward_pass(server):
    service = server.app.state.service
    bodies = {"alpha": {"texts": POOL[:3], "adapter": "alpha"}, "beta": {"texts": POOL[2:], "adapter": "beta"},
              "base": {"texts": POOL[1:4]}, "top": {"texts": POOL[:1], "adapter": "alpha", "top_tokens": 3}}
    with httpx.Client(base_url=server.url, timeout=120) as client:
        alone = {name: client.post("/v1/classify", json=body).json() for name, body in bodies.items()}
    batches: list[int] = []
    inner = service.batcher._handler
    service.batcher._handler = lambda key, jobs: batches.append(len(jobs)) or inner(key, jobs)
    replies: dict[str, httpx.Response] = {}
    try:
        with HeldModel(server) as held:
            threads = [threading.Thread(target=lambda n=name, b=body: replies.__setitem__(
                n, httpx.post(server.url + "/v1/classify", json=b, timeout=120))) for name, body in bodies.items()]
            for thread in threads:
                thread.start()
            wait_until(lambda: held.batcher.queued == 11, what="every request to queue")
        for thread in threads:
            thread.join(120)
    finally:
        service.batcher._handler = inner
    assert batches == [4]  # four requests, two adapters and the base model, one forward pass
    for name, reply in replies.items():
        assert reply.status_code == 200
        together, single = reply.json(), alone[name]
        assert together["adapter"] == single["adapter"] and together["labels"] == single["labels"]
        for mixed, own in zip(together["results"], single["results"]):
            assert mixed["raw_probs"] == pytest.approx(own["raw_probs"], abs=1e-6)
            assert mixed["label"] == own["label"] and mixed["decision"] == own["decision"]
            assert [t["token"] for t in mixed["top_tokens"] or []] == [t["token"] for t in own["top_tokens"] or []]


def test_an_entry_calibrated_on_hidden_states_keeps_its_answers_in_a_mixed_batch(backend):
    """A probe reads hidden states, which the mixed pass does not keep: its entry gets a pass of its own."""
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.calibration.probe import HiddenStateProbe
    from confidently.server.served import Served, classify_together

    clf = Classifier(backend=backend)
    backend.set_adapter("a")
    hidden = clf.score(POOL * 4, hidden=True).hidden
    probe = HiddenStateProbe(n_splits=2).fit(hidden, np.arange(len(hidden)) % 2, n_classes=2)
    entries = [Served("a", CalibratedClassifier(clf, calibrator=probe), "tiny"),
               Served("b", CalibratedClassifier(Classifier(backend=backend)), "tiny"),
               Served(None, CalibratedClassifier(Classifier(backend=backend, task=TRIAGE)), "tiny")]
    together = classify_together([(entry, POOL) for entry in entries])
    for entry, results in zip(entries, together):
        for mixed, own in zip(results, entry.classify(POOL)):
            assert mixed.raw_probs == pytest.approx(own.raw_probs, abs=1e-6)
            assert (mixed.calibrated_probs is None) == (own.calibrated_probs is None)
            assert mixed.calibrated_probs == (None if own.calibrated_probs is None
                                              else pytest.approx(own.calibrated_probs, abs=1e-6))
    assert together[0][0].calibrated and not together[1][0].calibrated  # the probe did decide the first entry


def test_an_entry_scored_by_generated_answers_keeps_its_answers_in_a_mixed_batch(backend):
    """A black-box scorer generates answers, which no shared forward pass gives: its entry is scored on its own."""
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.scorers import ScorerSpec
    from confidently.server.served import Served, classify_together

    spec = ScorerSpec.make("consistency", samples=2, seed=3)
    entries = [Served("a", CalibratedClassifier(Classifier(backend=backend, scorer=spec)), "tiny"),
               Served("b", CalibratedClassifier(Classifier(backend=backend)), "tiny"),
               Served(None, CalibratedClassifier(Classifier(backend=backend)), "tiny")]
    together = classify_together([(entry, POOL) for entry in entries])
    for entry, results in zip(entries, together):
        assert [r.raw_probs for r in results] == [pytest.approx(r.raw_probs, abs=1e-6) for r in entry.classify(POOL)]
    # two samples per text (two labels): the consistency shares are halves, never a softmax's fractions
    assert all(p in (0.0, 0.5, 1.0) for r in together[0] for p in r.raw_probs.values())
    assert not all(p in (0.0, 0.5, 1.0) for r in together[1] for p in r.raw_probs.values())
