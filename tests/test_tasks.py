import numpy as np
import pytest

from confidently.errors import TaskError
from confidently.tasks.task import SENTIMENT, Label, Task, Verbalizer, get_task, normalize_token


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
    # a task file name that does not exist says so, instead of "unknown task 'x.json': use ... a task .json file"
    with pytest.raises(TaskError, match=r"urgency\.json: no such task file$"):
        get_task(str(tmp_path / "urgency.json"))


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


# --- multi-token labels whose answers are prefixes of each other -------------------------------
# A toy vocabulary where "no" is one token and "not", "opinion", "sure", "way" are spelled in pieces.
TOY_VOCAB = ["<pad>", " no", "no", " No", "No", "t", " op", "inion", " sure", " way", " out", " yes", "x"]
TOY = {text: i for i, text in enumerate(TOY_VOCAB)}


def toy_encode(text: str) -> list[int]:
    """Greedy longest-match tokenization over TOY_VOCAB."""
    ids, rest = [], text
    while rest:
        match = max((t for t in TOY_VOCAB[1:] if rest.startswith(t)), key=len)
        ids.append(TOY[match])
        rest = rest[len(match):]
    return ids


def toy_task(*labels: tuple[str, tuple[str, ...]]) -> Task:
    return Task("toy", "{text}", tuple(Label(name, words) for name, words in labels), multi_token=True)


def reply_masses(verbalizer: Verbalizer, replies: dict[tuple[int, ...], float]) -> np.ndarray:
    """Mass the verbalizer gives each label when the model's whole reply is drawn from ``replies``.

    The first-token distribution and every sequence probability are computed from the replies, as a
    model's chain of next-token distributions would give them.
    """
    first = np.zeros((1, len(TOY_VOCAB)))
    for reply, prob in replies.items():
        first[0, reply[0]] += prob
    with np.errstate(divide="ignore"):
        mass = verbalizer.class_mass(np.log(first))
        sequence_logprobs = np.log([[sum(p for r, p in replies.items() if r[:len(s)] == s)
                                     for s in verbalizer.sequences]])
    return verbalizer.add_sequence_mass(mass, sequence_logprobs.reshape(1, -1))[0]


def truth(task: Task, replies: dict[tuple[int, ...], float]) -> np.ndarray:
    """Each reply counts for the label of the longest answer it starts with (the definition)."""
    answers = {}
    for j, label in enumerate(task.labels):
        for word in label.words:
            for form in {word, word.capitalize(), word.lower()}:
                for surface in (form, " " + form):
                    answers[tuple(toy_encode(surface))] = j
    mass = np.zeros(len(task.labels))
    for reply, prob in replies.items():
        starts = [a for a in answers if reply[:len(a)] == a]
        if starts:
            mass[answers[max(starts, key=len)]] += prob
    return mass


def test_a_longer_answer_takes_its_mass_from_the_answer_it_extends():
    task = toy_task(("no", ("no",)), ("no opinion", ("no opinion",)), ("not sure", ("not sure",)))
    verbalizer = Verbalizer(task, TOY_VOCAB, toy_encode)
    # " no opinion" and " not sure" both start with the token " no", which spells the label "no".
    assert (TOY[" no"], TOY[" op"], TOY["inion"]) in verbalizer.labels[1].sequences
    assert (TOY[" no"], TOY["t"], TOY[" sure"]) in verbalizer.labels[2].sequences
    replies = {(TOY[" no"], TOY[" op"], TOY["inion"]): 0.2, (TOY[" no"], TOY["t"], TOY[" sure"]): 0.15,
               (TOY[" no"], TOY["x"]): 0.25, (TOY[" no"], TOY["t"], TOY["x"]): 0.1, (TOY["No"],): 0.05,
               (TOY[" yes"],): 0.25}
    mass = reply_masses(verbalizer, replies)
    # "no": replies " no x" and "No"; " no t x" is "not…" but not "not sure", so it stays "no".
    np.testing.assert_allclose(mass, [0.25 + 0.1 + 0.05, 0.2, 0.15], atol=1e-12)
    np.testing.assert_allclose(mass, truth(task, replies), atol=1e-12)


def test_nested_answers_of_alternating_labels():
    # "no" (a), "no way" (b), "no way out" (a): each reply goes to the longest answer it starts with.
    task = toy_task(("a", ("no", "no way out")), ("b", ("no way",)))
    verbalizer = Verbalizer(task, TOY_VOCAB, toy_encode)
    np.testing.assert_allclose(verbalizer.sequence_weights.sum(axis=1), 0.0)  # each moves mass, adds none
    replies = {(TOY[" no"], TOY[" way"], TOY[" out"]): 0.3, (TOY[" no"], TOY[" way"]): 0.2,
               (TOY[" no"], TOY["x"]): 0.1, (TOY[" No"], TOY[" way"], TOY["x"]): 0.15, (TOY["x"],): 0.25}
    mass = reply_masses(verbalizer, replies)
    np.testing.assert_allclose(mass, truth(task, replies), atol=1e-12)
    np.testing.assert_allclose(mass, [0.3 + 0.1, 0.2 + 0.15], atol=1e-12)


def test_an_answer_extending_one_of_its_own_label_is_not_scored():
    # "no opinion" inside the label "no": its probability is already in " no"'s; nothing to move.
    task = toy_task(("no", ("no", "no opinion")), ("yes", ("yes",)))
    verbalizer = Verbalizer(task, TOY_VOCAB, toy_encode)
    assert verbalizer.sequences == () and not verbalizer.has_sequences


@pytest.mark.parametrize("seed", range(20))
def test_masses_match_the_definition_for_random_replies(seed):
    rng = np.random.default_rng(seed)
    task = toy_task(("no", ("no",)), ("no opinion", ("no opinion",)), ("not sure", ("not sure", "no way")),
                    ("out", ("no way out",)))
    verbalizer = Verbalizer(task, TOY_VOCAB, toy_encode)
    pieces = [TOY[t] for t in (" no", "No", " No", "t", " op", "inion", " sure", " way", " out", "x")]
    replies: dict[tuple[int, ...], float] = {}
    for _ in range(30):
        reply = tuple(rng.choice(pieces, size=rng.integers(1, 5)))
        replies[reply] = replies.get(reply, 0.0) + rng.random()
    total = sum(replies.values())
    replies = {r: p / total for r, p in replies.items()}
    mass = reply_masses(verbalizer, replies)
    np.testing.assert_allclose(mass, truth(task, replies), atol=1e-12)
    assert mass.sum() <= 1.0 + 1e-12
