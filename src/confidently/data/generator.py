"""A synthetic 8-category sentiment dataset with a deliberate domain bias.

Four strengths (strong, medium, weak, neutral) × two labels (positive, negative), as in the original
"classification with confidence" study. The bias: about two-thirds (``domain_bias``) of positive
examples are set in sports and as many negative ones in the workplace. Sentiment-bearing examples
put the rest half in everyday "other" settings and half in the opposite domain; neutral examples
carry no sentiment at all, so their label is the domain's: neutral sports text is labelled
positive, neutral workplace text negative, and the remaining neutral "other" text gets either
label. A model that learns the shortcut "sports means positive" therefore gains on neutral
examples and loses on the opposite-domain ones, which is the point of the set.

Texts are composed from sentence frames and vocabularies (:mod:`confidently.data.vocabulary`);
every text is unique after :func:`normalize_text`, and the same seed gives the same dataset.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Mapping

from confidently.data.dataset import Dataset, allocate, normalize_text
from confidently.data.vocabulary import (
    DOMAINS,
    NEUTRAL_FRAMES,
    NEUTRAL_SLOTS,
    POLARITY_FRAMES,
    SENTIMENT_FRAMES,
    SPANS,
    STRONG_FRAMES,
    TIMES,
    TONES,
    WEAK_FRAMES,
)
from confidently.errors import DataError

CATEGORIES = ("strong", "medium", "weak", "neutral")
LABELS = ("positive", "negative")
#: Each label's own domain; the bias puts ``domain_bias`` of that label's examples there.
HOME_DOMAIN = {"positive": "sports", "negative": "workplace"}
#: Examples per category and label in the original study (10,000 in all).
DEFAULT_SIZES: dict[str, int] = {
    f"{category}_{label}": size
    for category, size in (("strong", 500), ("medium", 1000), ("weak", 2500), ("neutral", 1000))
    for label in LABELS
}
# Rejection sampling gives up after this many tries per wanted text: far more than a healthy
# vocabulary ever needs, so hitting it means the request exceeds what the frames can express.
_TRIES_PER_TEXT = 200


def generate_sentiment(n: int = 10000, *, seed: int = 42, domain_bias: float = 0.67,
                       sizes: Mapping[str, int] | None = None) -> Dataset:
    """Generate the synthetic sentiment dataset.

    Parameters
    ----------
    n : int
        Total number of examples; the original category sizes (strong 500, medium 1,000, weak 2,500,
        neutral 1,000 per label) are scaled to add up to it. Ignored when ``sizes`` is given.
    seed : int
        The same seed gives the same rows in the same order.
    domain_bias : float in [0, 1]
        Share of positive examples set in sports and of negative examples set in the workplace.
    sizes : mapping of str to int, optional
        Exact counts, keyed ``"{category}_{label}"`` (``"weak_positive"``) or ``"{category}"`` for
        both labels of a category. Categories not named get no examples.

    Returns
    -------
    Dataset
        Labels ``"positive"``/``"negative"``; columns ``category`` (strength), ``sentiment``
        (``"positive"``, ``"negative"`` or ``"neutral"``: what the text expresses) and ``domain``
        (``"sports"``, ``"workplace"`` or ``"other"``). Rows are shuffled.

    Raises
    ------
    DataError
        For a bad size, an unknown size key, a bias outside [0, 1], or more examples than the
        vocabulary can phrase distinctly.

    Examples
    --------
    >>> ds = generate_sentiment(80, seed=1)
    >>> len(ds), sorted(set(ds.columns["category"]))
    (80, ['medium', 'neutral', 'strong', 'weak'])
    """
    if not 0.0 <= domain_bias <= 1.0:
        raise DataError(f"domain_bias must be between 0 and 1, got {domain_bias}")
    counts = _resolve_sizes(n, sizes)
    rng = random.Random(seed)
    seen: set[str] = set()
    rows: list[tuple[str, str, str, str, str]] = []  # text, label, category, sentiment, domain
    for key, total in counts.items():
        category, label = key.split("_")
        for domain, quota in _domain_quotas(category, label, total, domain_bias).items():
            sentiment = "neutral" if category == "neutral" else label
            for text in _distinct_texts(rng, category, sentiment, domain, quota, seen):
                rows.append((text, label, category, sentiment, domain))
    # Cells were filled one after another; shuffle so any prefix of the file is a fair mix.
    rng.shuffle(rows)
    texts, labels, categories, sentiments, domains = (tuple(column) for column in zip(*rows))
    return Dataset(texts, labels, {"category": categories, "sentiment": sentiments, "domain": domains})


def domain_bias_rate(dataset: Dataset) -> dict[str, float]:
    """Measured bias: the share of each label's examples set in that label's own domain.

    Returns
    -------
    dict
        ``{"positive": share of positive rows in sports, "negative": share of negative rows in the
        workplace}``; a label with no rows is left out.
    """
    if dataset.labels is None or "domain" not in dataset.columns:
        raise DataError("measuring the domain bias needs labels and a 'domain' column", path=dataset.source)
    rates: dict[str, float] = {}
    for label, home in HOME_DOMAIN.items():
        domains = [d for d, lab in zip(dataset.columns["domain"], dataset.labels) if lab == label]
        if domains:
            rates[label] = domains.count(home) / len(domains)
    return rates


def _resolve_sizes(n: int, sizes: Mapping[str, int] | None) -> dict[str, int]:
    """Exact count per ``{category}_{label}``, from explicit sizes or by scaling the defaults to n."""
    if sizes is None:
        if n < 1:
            raise DataError(f"n must be at least 1, got {n}")
        return dict(zip(DEFAULT_SIZES, allocate(n, list(DEFAULT_SIZES.values()))))
    counts = dict.fromkeys(DEFAULT_SIZES, 0)
    for key, value in sizes.items():
        targets = [f"{key}_{label}" for label in LABELS] if key in CATEGORIES else [key]
        if any(target not in counts for target in targets):
            raise DataError(f"unknown size key {key!r}; use one of {', '.join(CATEGORIES)} "
                            f"or {', '.join(DEFAULT_SIZES)}")
        if not isinstance(value, int) or value < 0:
            raise DataError(f"size of {key!r} must be a whole number >= 0, got {value!r}")
        for target in targets:
            counts[target] = value
    if sum(counts.values()) < 1:
        raise DataError("sizes add up to 0 examples")
    return counts


def _domain_quotas(category: str, label: str, total: int, bias: float) -> dict[str, int]:
    """How many of one cell's examples go to each domain.

    Exact quotas (largest-remainder rounding), not a random draw per row, so the measured bias
    equals the setting up to rounding instead of wandering by a binomial error.
    """
    home = HOME_DOMAIN[label]
    away = HOME_DOMAIN["negative" if label == "positive" else "positive"]
    # Neutral text has no sentiment of its own: it is never put in the opposite domain, which is
    # what makes "neutral sports text is positive, neutral workplace text negative" hold exactly.
    away_share = 0.0 if category == "neutral" else (1.0 - bias) / 2
    shares = {home: bias, "other": 1.0 - bias - away_share, away: away_share}
    return dict(zip(shares, allocate(total, list(shares.values())))) if total else dict.fromkeys(shares, 0)


def _distinct_texts(rng: random.Random, category: str, sentiment: str, domain: str, quota: int,
                    seen: set[str]) -> list[str]:
    """``quota`` texts for one cell, none equal (after normalisation) to any text made before."""
    made: list[str] = []
    tries = 0
    while len(made) < quota:
        tries += 1
        if tries > _TRIES_PER_TEXT * quota + 1000:
            raise DataError(f"could only phrase {len(made)} distinct {category} {sentiment} {domain} texts of "
                            f"{quota} asked for; ask for fewer examples (--n / --sizes)")
        text = compose(rng, category, sentiment, domain)
        key = normalize_text(text)
        if key not in seen:
            seen.add(key)
            made.append(text)
    return made


# Slot name -> DomainVocabulary attribute.
_DOMAIN_SLOTS = {"subject": "subjects", "group": "groups", "event": "events", "activity": "activities",
                 "place": "places", "thing": "things"}


def compose(rng: random.Random, category: str, sentiment: str, domain: str) -> str:
    """One sentence of the given strength, sentiment (positive/negative/neutral) and domain.

    Picks a frame that suits the strength, then fills each of its slots from the domain's and the
    tone's vocabularies. Only the slots a frame names are drawn, so every random choice matters.
    """
    vocab = DOMAINS[domain]
    if category == "neutral":
        frames = NEUTRAL_FRAMES
        tone = None
    else:
        tone = TONES[(category, sentiment)]
        frames = SENTIMENT_FRAMES + {"strong": STRONG_FRAMES, "weak": WEAK_FRAMES + POLARITY_FRAMES[sentiment]}.get(
            category, ())
    frame = rng.choice(frames)
    values: dict[str, str] = {}
    for _, slot, _, _ in string.Formatter().parse(frame):
        if slot is None or slot in values:
            continue
        if slot == "time":
            options = TIMES + vocab.times
        elif slot == "span":
            options = SPANS
        elif slot == "daypair":
            first, second = rng.sample(NEUTRAL_SLOTS["day"], 2)
            values[slot] = f"from {first} to {second}"
            continue
        elif slot in NEUTRAL_SLOTS:
            options = NEUTRAL_SLOTS[slot]
        elif slot in _DOMAIN_SLOTS:
            options = getattr(vocab, _DOMAIN_SLOTS[slot])
        else:
            options = getattr(tone, slot)
        values[slot] = rng.choice(options)
    return _tidy(frame.format(**values))


_SENTENCE_START = re.compile(r"(^|[.!?]\s+)([a-z])")


def _tidy(text: str) -> str:
    """Collapse spaces and capitalise the start of each sentence (frames start with slot text)."""
    text = " ".join(text.split())
    return _SENTENCE_START.sub(lambda m: m.group(1) + m.group(2).upper(), text)
