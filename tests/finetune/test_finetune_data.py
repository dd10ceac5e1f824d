"""Training data: the prompt is exactly the scoring prompt, only answer positions carry loss."""

import numpy as np
import pytest

from confidently.scoring.classifier import Classifier
from confidently.data import Dataset
from confidently.errors import DataError
from confidently.finetune.data import (IGNORE, answer_targets, bucketed_batches, check_labels, collate,
                                       encode_examples, make_splits)


@pytest.fixture(scope="module")
def classifier(tiny_backend):
    return Classifier(backend=tiny_backend)


def test_only_answer_positions_carry_loss(classifier, separable):
    data = separable(12, seed=3)
    targets = answer_targets(classifier, data.texts)
    encoded = encode_examples(classifier, data, targets)
    batch = collate(encoded, range(len(data)), classifier.backend.pad_id)
    y = data.label_indices(classifier.labels)
    for i, text in enumerate(data.texts):
        answer = targets.token_ids[y[i]]
        labelled = np.flatnonzero(batch.labels[i].numpy() != IGNORE)
        width = batch.labels.shape[1]
        # exactly the last len(answer) positions: the ones that predict the answer tokens
        assert labelled.tolist() == list(range(width - len(answer), width))
        assert batch.labels[i, labelled].tolist() == list(answer)
        # the model sees the scoring prompt, then all but the last answer token
        real = batch.input_ids[i][batch.attention_mask[i] == 1].tolist()
        assert list(encoded.prefix) + real == classifier.backend.encode(classifier.prompt(text)) + list(answer[:-1])
    assert batch.n_answer_tokens == sum(len(targets.token_ids[j]) for j in y)


def test_an_ensemble_asks_every_text_each_way_with_each_prompts_answers(tiny_backend, separable):
    from dataclasses import replace

    from confidently.finetune.data import encode_every_prompt, every_prompt_targets
    from confidently.tasks.task import SENTIMENT, Label

    other = replace(SENTIMENT, name="plain", template="{text}\nSentiment, positive or negative?",
                    labels=(Label("negative", ("negative",)), Label("positive", ("positive",))))
    ensemble = Classifier(backend=tiny_backend, task=replace(SENTIMENT, ensemble=(other,)))
    data = separable(6, seed=3)
    targets = every_prompt_targets(ensemble, data.texts)
    # each prompt's own label words, spelled as its own prompt is followed
    assert targets[0].texts == ("no", "yes") and [w.strip() for w in targets[1].texts] == ["negative", "positive"]
    encoded = encode_every_prompt(ensemble, data, targets)
    y = data.label_indices(ensemble.labels)
    assert len(encoded) == 12 and encoded.prompt_index.tolist() == [0] * 6 + [1] * 6
    assert encoded.label_index.tolist() == [*y, *y]
    for i, (asked, target) in enumerate(zip(ensemble.prompt_classifiers, targets)):
        for j, text in enumerate(data.texts):  # the prompts' shared tokens, then the rest of that prompt
            row, answer = encoded.rows[6 * i + j], target.token_ids[y[j]]
            assert encoded.answers[6 * i + j] == answer
            assert list(encoded.prefix + row) == tiny_backend.encode(asked.prompt(text)) + list(answer[:-1])
    single = Classifier(backend=tiny_backend)  # one prompt: exactly encode_examples
    alone = encode_examples(single, data, answer_targets(single, data.texts))
    merged = encode_every_prompt(single, data, every_prompt_targets(single, data.texts))
    assert (merged.prefix, merged.rows, merged.answers) == (alone.prefix, alone.rows, alone.answers)
    assert merged.label_index.tolist() == alone.label_index.tolist() and not merged.prompt_index.any()


def test_answer_is_the_first_label_word_spelled_as_after_the_prompt(classifier, separable):
    targets = answer_targets(classifier, separable(8, seed=0).texts)
    # the tiny chat template ends the prompt with "assistant\n": no space before the word
    assert targets.texts == ("no", "yes")
    for label, ids in zip(classifier.verbalizer.labels, targets.token_ids):
        assert ids[0] in label.token_ids


def test_length_buckets_cover_every_row_once_with_little_padding():
    lengths = np.random.default_rng(0).integers(5, 60, size=203)
    batches = bucketed_batches(lengths, batch_size=8, pool_batches=4, rng=np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(203))
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    assert spread < np.ptp(lengths) / 3
    again = bucketed_batches(lengths, batch_size=8, pool_batches=4, rng=np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))


def test_unknown_labels_are_named(classifier):
    data = Dataset(["a", "b", "c", "d"], ["positive", "meh", "bad", "meh"])
    with pytest.raises(DataError, match="does not know: 'bad', 'meh'"):
        check_labels(data, classifier.task, role="training")
    with pytest.raises(DataError, match="has no labels"):
        check_labels(Dataset(["a"], None), classifier.task, role="training")


def test_splits_are_disjoint_and_calibration_must_be_held_out(separable, tiny_config):
    data = separable(200, seed=0)
    parts = make_splits(data, None, tiny_config())
    texts = [set(part.texts) for part in (parts.train, parts.validation, parts.calibration)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert parts.calibration_source == "carved" and sum(parts.sizes().values()) == 200
    with pytest.raises(DataError, match="calibration texts also appear in the training data"):
        make_splits(data, data.subset(range(30)), tiny_config())
