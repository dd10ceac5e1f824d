"""The synthetic sentiment generator: sizes, determinism, uniqueness, bias, and what each strength says."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from confidently.data import DEFAULT_SIZES, domain_bias_rate, generate_sentiment, normalize_text, split_dataset
from confidently.data import generator as generator_module
from confidently.data import vocabulary as V
from confidently.errors import DataError

WORD = re.compile(r"[a-z]+(?:[-'][a-z]+)*")
STRONG_WORDS = V.STRONG_POSITIVE_WORDS | V.STRONG_NEGATIVE_WORDS


def words(text: str) -> set[str]:
    return set(WORD.findall(text.lower()))


def phrases_in(text: str, phrases) -> list[str]:
    """Which of ``phrases`` occur in ``text`` as whole words."""
    padded = " " + " ".join(WORD.findall(text.lower())) + " "
    return [p for p in phrases if f" {p} " in padded]


def cells(ds) -> Counter:
    return Counter(f"{c}_{label}" for c, label in zip(ds.columns["category"], ds.labels))


def rows_of(ds, category):
    return [(t, s, d) for t, c, s, d in zip(ds.texts, ds.columns["category"], ds.columns["sentiment"],
                                             ds.columns["domain"]) if c == category]


def test_default_sizes_match_the_original(generated):
    assert len(generated) == 10000
    assert cells(generated) == Counter(DEFAULT_SIZES)
    assert DEFAULT_SIZES == {"strong_positive": 500, "strong_negative": 500, "medium_positive": 1000,
                             "medium_negative": 1000, "weak_positive": 2500, "weak_negative": 2500,
                             "neutral_positive": 1000, "neutral_negative": 1000}


def test_n_scales_every_category():
    assert cells(generate_sentiment(1000, seed=3)) == Counter(
        {k: v // 10 for k, v in DEFAULT_SIZES.items()})
    odd = generate_sentiment(37, seed=3)
    assert len(odd) == 37 and set(cells(odd)) == set(DEFAULT_SIZES)


def test_explicit_sizes():
    ds = generate_sentiment(seed=1, sizes={"weak": 30, "strong_positive": 5})
    assert cells(ds) == Counter({"weak_positive": 30, "weak_negative": 30, "strong_positive": 5})


@pytest.mark.parametrize("kwargs, match", [
    ({"sizes": {"huge": 3}}, "unknown size key 'huge'"),
    ({"sizes": {"weak": -1}}, "whole number"),
    ({"sizes": {"weak": 0}}, "add up to 0"),
    ({"n": 0}, "at least 1"),
    ({"domain_bias": 1.5}, "between 0 and 1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        generate_sentiment(**kwargs)


def test_same_seed_same_data_other_seed_other_data():
    first = generate_sentiment(2000, seed=7)
    assert first == generate_sentiment(2000, seed=7)
    other = generate_sentiment(2000, seed=8)
    assert other.texts != first.texts
    assert len(set(first.texts) & set(other.texts)) < 200  # not merely reordered


def test_no_duplicate_texts(generated):
    assert len({normalize_text(t) for t in generated.texts}) == len(generated)


def test_rows_carry_category_sentiment_domain_and_label(generated):
    assert list(generated.columns) == ["category", "sentiment", "domain"]
    assert set(generated.labels) == {"positive", "negative"}
    assert set(generated.columns["domain"]) == {"sports", "workplace", "other"}
    for label, category, sentiment in zip(generated.labels, generated.columns["category"],
                                          generated.columns["sentiment"]):
        assert sentiment == ("neutral" if category == "neutral" else label)


@pytest.mark.parametrize("bias", [0.67, 0.5, 0.9])
def test_domain_bias_rate_matches_the_setting(bias, generated):
    ds = generated if bias == 0.67 else generate_sentiment(10000, seed=5, domain_bias=bias)
    rates = domain_bias_rate(ds)
    assert rates["positive"] == pytest.approx(bias, abs=0.03)
    assert rates["negative"] == pytest.approx(bias, abs=0.03)


def test_bias_shows_in_every_sentiment_category(generated):
    for category in ("strong", "medium", "weak"):
        rows = [(d, label) for d, label, c in zip(generated.columns["domain"], generated.labels,
                                          generated.columns["category"]) if c == category]
        positive = [d for d, label in rows if label == "positive"]
        assert positive.count("sports") / len(positive) == pytest.approx(0.67, abs=0.01)
        # the rest is split between "other" and the opposite domain
        assert positive.count("workplace") > 0 and positive.count("other") > 0


def test_neutral_label_follows_the_domain(generated):
    for label, category, domain in zip(generated.labels, generated.columns["category"],
                                       generated.columns["domain"]):
        if category == "neutral" and domain == "sports":
            assert label == "positive"
        if category == "neutral" and domain == "workplace":
            assert label == "negative"


def test_neutral_texts_carry_no_sentiment(generated):
    for text, _, _ in rows_of(generated, "neutral"):
        assert not words(text) & V.SENTIMENT_WORDS, text
        assert not phrases_in(text, V.HEDGES + V.INTENSIFIERS), text


def test_strong_texts_always_use_strong_words_of_their_polarity(generated):
    for text, sentiment, _ in rows_of(generated, "strong"):
        own = V.STRONG_POSITIVE_WORDS if sentiment == "positive" else V.STRONG_NEGATIVE_WORDS
        assert words(text) & own, text
        assert not phrases_in(text, V.HEDGES), text


def test_medium_and_weak_texts_avoid_strong_words(generated):
    for category in ("medium", "weak"):
        for text, _, _ in rows_of(generated, category):
            assert words(text) & V.SENTIMENT_WORDS, text
            assert not words(text) & STRONG_WORDS, text


def test_weak_texts_are_hedged(generated):
    for text, _, _ in rows_of(generated, "weak"):
        assert phrases_in(text, V.HEDGES), text


def test_texts_are_tidy_sentences(generated):
    for text in generated.texts:
        assert text[0].isupper() and text[-1] in ".!", text
        assert "  " not in text and "{" not in text and " ," not in text, text


def test_texts_are_varied(generated):
    # Many distinct openings, not a handful of fixed lines with one word swapped.
    openings = Counter(" ".join(t.split()[:3]) for t in generated.texts)
    assert len(openings) > 1000
    assert openings.most_common(1)[0][1] < 400


def test_every_category_lands_in_every_split(generated):
    splits = split_dataset(generated)
    for _, part in splits.items():
        assert set(cells(part)) == set(DEFAULT_SIZES)


def test_large_requests_scale():
    ds = generate_sentiment(seed=2, sizes={"weak_positive": 5000}, domain_bias=1.0)
    assert len({normalize_text(t) for t in ds.texts}) == 5000


def test_running_out_of_distinct_texts_is_reported(monkeypatch):
    monkeypatch.setattr(generator_module, "compose", lambda rng, category, sentiment, domain: "Always the same.")
    with pytest.raises(DataError, match="could only phrase 1 distinct"):
        generate_sentiment(seed=0, sizes={"strong_positive": 3}, domain_bias=1.0)


def test_vocabulary_is_consistent_with_the_lexicons():
    # Phrase by phrase, so a word list edit that breaks a rule fails here even if no sample drew it.
    for (strength, polarity), tone in V.TONES.items():
        for slot in ("adj", "noun", "feeling", "verb"):
            for phrase in getattr(tone, slot):
                found = words(phrase)
                if strength == "strong":
                    own = V.STRONG_POSITIVE_WORDS if polarity == "positive" else V.STRONG_NEGATIVE_WORDS
                    assert found & own, phrase
                else:
                    assert found & V.SENTIMENT_WORDS and not found & STRONG_WORDS, phrase
                if strength == "weak":
                    assert phrases_in(phrase, V.HEDGES), phrase
    for domain in V.DOMAINS.values():
        for field in ("groups", "people", "events", "activities", "places", "things", "times"):
            for phrase in getattr(domain, field):
                assert not words(phrase) & V.SENTIMENT_WORDS and not phrases_in(phrase, V.HEDGES + V.INTENSIFIERS)
