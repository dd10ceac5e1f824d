import numpy as np
import pytest

from confidently.errors import TaskError
from confidently.tasks import SENTIMENT, Label, Task, Verbalizer, get_task, normalize_token


def test_normalize_token_strips_whitespace_punctuation_and_case():
    assert normalize_token(" Yes") == "yes"
    assert normalize_token("YES.") == "yes"
    assert normalize_token("\tno") == "no"
    assert normalize_token("yesterday") == "yesterday"


def test_template_needs_exactly_one_text_slot():
    with pytest.raises(TaskError, match="exactly once"):
        Task("t", "no slot here", (Label("a", ("x",)), Label("b", ("y",))))
    with pytest.raises(TaskError, match="exactly once"):
        Task("t", "{text} {text}", (Label("a", ("x",)), Label("b", ("y",))))


def test_word_given_for_two_labels_is_refused():
    with pytest.raises(TaskError, match="both"):
        Task("t", "{text}", (Label("a", ("yes",)), Label("b", ("YES",))))


def test_message_keeps_braces_in_text():
    assert SENTIMENT.message("a {b} c").endswith('"a {b} c"')


def test_task_round_trips_through_dict(tmp_path):
    path = tmp_path / "task.json"
    path.write_text(__import__("json").dumps(SENTIMENT.to_dict()))
    assert get_task(str(path)) == SENTIMENT
    with pytest.raises(TaskError, match="unknown task"):
        get_task("nope")


def test_verbalizer_counts_every_variant_and_nothing_else():
    vocab = ["yes", " Yes", "YES", "yesterday", "no", " No.", "maybe", "n", "y", "true", "False", " positive",
             "negative", "untrue"]
    verbalizer = Verbalizer(SENTIMENT, vocab)
    negative, positive = verbalizer.labels
    assert sorted(vocab[i] for i in positive.token_ids) == sorted(["yes", " Yes", "YES", "y", "true", " positive"])
    assert sorted(vocab[i] for i in negative.token_ids) == sorted(["no", " No.", "n", "False", "negative"])
    logprobs = np.log(np.full((1, len(vocab)), 1 / len(vocab)))
    np.testing.assert_allclose(verbalizer.class_mass(logprobs), [[5 / 14, 6 / 14]])


def test_word_spelled_by_no_token_is_named():
    task = Task("t", "{text}", (Label("a", ("alpha",)), Label("b", ("beta", "gamma"))))
    with pytest.raises(TaskError, match="'gamma'"):
        Verbalizer(task, ["alpha", "beta"])


def test_top_k_maps_use_the_same_rules():
    verbalizer = Verbalizer(SENTIMENT, ["yes", "no", "y", "n", "true", "false", "positive", "negative"])
    mass = verbalizer.class_mass_from_top([{" Yes": np.log(0.5), "no": np.log(0.25), "x": np.log(0.1)}])
    np.testing.assert_allclose(mass, [[0.25, 0.5]])
