"""Few-shot examples nearest to each text: a pool of labelled calibration rows and a TF-IDF index over it.

With ``--shot-selection nearest`` a seeded random pool of calibration rows is set aside (:func:`choose_pool`;
left out of calibration like balanced shots) and every other text is asked with its own ``k`` most similar
pool rows as worked examples (:meth:`NearestShots.examples`), the most similar last, next to the question.
Similarity is the cosine of TF-IDF vectors (word unigrams and bigrams, sublinear term frequency) fitted on
the pool: no extra forward pass, and the index is plain JSON (vocabulary and idf weights) in the bundle's
``nearest.json``, so a loaded bundle picks the same examples for a text as ``evaluate`` did.

The examples differ per text, so only the prompt's start before them (a chat template's header and
``Examples:``) is a shared prefix whose KV cache is computed once; the rest is paid per text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from functools import cached_property

import numpy as np

from confidently.errors import ArtifactError, DataError
from confidently.tasks.shots import Shots

#: The bundle file that holds the pool, its labels and the index.
NEAREST_FILE = "nearest.json"
#: TF-IDF settings; fixed (and recorded in ``nearest.json``) so a saved index is rebuilt exactly.
TFIDF_OPTIONS = {"lowercase": True, "ngram_range": [1, 2], "sublinear_tf": True, "norm": "l2",
                 "token_pattern": r"(?u)\b\w+\b"}
#: Bounds of the default pool: a quarter of the calibration rows, at least 4 per shot, at most this many.
MAX_DEFAULT_POOL = 256


def default_pool_size(n_rows: int, k: int) -> int:
    """A quarter of ``n_rows``, at least ``4 * k`` (choice among the nearest), at most :data:`MAX_DEFAULT_POOL`
    (every pool row is a label taken from calibration)."""
    return min(MAX_DEFAULT_POOL, max(4 * k, n_rows // 4))


def choose_pool(labels: Sequence[int], k: int, *, n_classes: int, size: int | None = None, seed: int = 0,
                texts: Sequence[str] | None = None, balanced: bool = True):
    """A seeded random pool of ``size`` calibration rows (default :func:`default_pool_size`) and the rest.

    Rows whose text holds the ``{text}`` slot marker are never pooled. Returns a
    :class:`~confidently.tasks.shots.Shots` (``indices``: the pool). Raises one :class:`DataError` line when
    the pool cannot hold ``k`` examples (``balanced``: ``ceil(k / n_classes)`` of each class) or leaves
    fewer than two rows of a class to calibrate on.
    """
    y = np.asarray(labels)
    if k < 1:
        raise DataError(f"--shots must be at least 1, got {k}")
    size = default_pool_size(y.size, k) if size is None else size
    usable = np.array([texts is None or "{text}" not in texts[i] for i in range(y.size)], dtype=bool)
    if size <= k or size > int(usable.sum()):
        raise DataError(f"--shot-pool {size} must be more than --shots {k} and at most the {int(usable.sum())} "
                        "usable calibration rows")
    pool = np.sort(np.random.default_rng(seed).permutation(np.flatnonzero(usable))[:size])
    rest = np.setdiff1d(np.arange(y.size), pool)
    in_pool, left = np.bincount(y[pool], minlength=n_classes), np.bincount(y[rest], minlength=n_classes)
    need = -(-k // n_classes) if balanced else 1
    if in_pool.min() < need or left.min() < 2:
        counts = "; ".join(f"class {c}: {in_pool[c]} pooled, {left[c]} left" for c in range(n_classes))
        raise DataError(f"a shot pool of {size} rows cannot give {k} nearest shots ({need} of each class) and "
                        f"leave two rows of each class to calibrate on ({counts}): change --shot-pool or --shots, "
                        "or label more rows")
    return Shots(tuple(int(i) for i in pool), tuple(int(i) for i in rest))


def _tfidf_vectorizer(**fixed):
    """scikit-learn's vectorizer with :data:`TFIDF_OPTIONS` (``fixed``: e.g. a saved vocabulary); the options keep
    ``ngram_range`` as a list, as JSON records it, and scikit-learn wants a tuple."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(**{**TFIDF_OPTIONS, "ngram_range": tuple(TFIDF_OPTIONS["ngram_range"])}, **fixed)


class TextIndex:
    """TF-IDF vectors (:data:`TFIDF_OPTIONS`) with a fixed vocabulary and idf weights."""

    def __init__(self, vocabulary: Sequence[str], idf: Sequence[float]):
        self.vocabulary = tuple(vocabulary)
        self._vectorizer = _tfidf_vectorizer(vocabulary={term: i for i, term in enumerate(self.vocabulary)})
        self._vectorizer.idf_ = np.asarray(idf, dtype=np.float64)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> TextIndex:
        fitted = _tfidf_vectorizer().fit(texts)
        vocabulary = sorted(fitted.vocabulary_, key=fitted.vocabulary_.get)
        return cls(vocabulary, fitted.idf_)

    @property
    def idf(self) -> np.ndarray:
        return self._vectorizer.idf_

    def vectors(self, texts: Sequence[str]):
        """Unit-length sparse TF-IDF rows, one per text (all zero for a text with no known term)."""
        return self._vectorizer.transform(list(texts))


class NearestShots:
    """A labelled pool and how to pick each text's examples from it.

    Parameters
    ----------
    texts, labels : the pool rows (class indices in the task's label order).
    k : examples per text.
    balanced : take ``k // n_classes`` nearest of each class, then the nearest of any class for the rest.
    n_classes : the task's class count.
    index : the TF-IDF index (default: fitted on ``texts``).
    """

    def __init__(self, texts: Sequence[str], labels: Sequence[int], k: int, *, balanced: bool, n_classes: int,
                 index: TextIndex | None = None):
        self.texts, self.labels = tuple(texts), np.asarray(labels, dtype=int)
        self.k, self.balanced, self.n_classes = int(k), bool(balanced), int(n_classes)
        if not 1 <= self.k < len(self.texts):
            raise DataError(f"{self.k} nearest shots need a pool of more than {self.k} rows; it has {len(self.texts)}")
        self.index = index or TextIndex.fit(self.texts)
        self._pool = self.index.vectors(self.texts)
        self._references: dict[tuple[str, ...], dict] = {}

    def examples(self, text: str) -> list[tuple[str, int]]:
        """The ``k`` pool rows most similar to ``text`` as (text, class index), the most similar last; a pool
        row with the same text is never its own example. Ties go to the earlier pool row."""
        similarity = self.similarity(text)
        candidates = [i for i in np.lexsort((np.arange(similarity.size), -similarity))
                      if self.texts[i].strip() != text.strip()]
        if self.balanced:
            each = self.k // self.n_classes
            chosen = [i for c in range(self.n_classes) for i in [j for j in candidates if self.labels[j] == c][:each]]
            chosen += [i for i in candidates if i not in chosen][: self.k - len(chosen)]
        else:
            chosen = candidates[: self.k]
        chosen.sort(key=lambda i: (similarity[i], -i))
        return [(self.texts[i], int(self.labels[i])) for i in chosen]

    def similarity(self, text: str) -> np.ndarray:
        """Cosine similarity of ``text`` to every pool row."""
        return (self._pool @ self.index.vectors([text]).T).toarray().ravel()

    def to_dict(self, label_names: Sequence[str]) -> dict:
        return {"similarity": "tf-idf cosine", "tfidf": TFIDF_OPTIONS, "k": self.k, "balanced": self.balanced,
                "texts": list(self.texts), "labels": [label_names[i] for i in self.labels],
                "vocabulary": list(self.index.vocabulary), "idf": self.index.idf.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping, label_names: Sequence[str], *, where: str = NEAREST_FILE) -> NearestShots:
        """Read :meth:`to_dict`'s payload; every field checked, errors name ``where``."""
        fields = ("k", "balanced", "texts", "labels", "vocabulary", "idf", "tfidf")
        if not isinstance(data, Mapping) or any(name not in data for name in fields):
            raise ArtifactError(f"{where}: expected an object with {', '.join(fields)}")
        if data["tfidf"] != TFIDF_OPTIONS:
            raise ArtifactError(f"{where}: written with TF-IDF settings {data['tfidf']!r}; this confidently reads "
                                f"{TFIDF_OPTIONS!r}")
        texts, labels = data["texts"], data["labels"]
        if (not isinstance(texts, list) or not all(isinstance(t, str) and t for t in texts)
                or not isinstance(labels, list) or len(labels) != len(texts)
                or not all(label in label_names for label in labels)):
            raise ArtifactError(f"{where}: texts and labels must be lists of equal length (labels among "
                                f"{', '.join(label_names)})")
        vocabulary, idf = data["vocabulary"], data["idf"]
        if (not isinstance(vocabulary, list) or not all(isinstance(v, str) for v in vocabulary)
                or not isinstance(idf, list) or len(idf) != len(vocabulary)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in idf)):
            raise ArtifactError(f"{where}: vocabulary (strings) and idf (positive numbers) must be lists of equal "
                                "length")
        if isinstance(data["k"], bool) or not isinstance(data["k"], int) or not isinstance(data["balanced"], bool):
            raise ArtifactError(f"{where}: k must be a whole number and balanced true or false")
        try:
            return cls(texts, [label_names.index(label) for label in labels], data["k"], balanced=data["balanced"],
                       n_classes=len(label_names), index=TextIndex(vocabulary, idf))
        except DataError as error:
            raise ArtifactError(f"{where}: {error}") from None

    def reference(self, label_names: Sequence[str]) -> dict:
        """What the task records of the pool (the pool itself lives in :data:`NEAREST_FILE`): enough for a
        fingerprint that changes with any pool row, label or index weight (computed once per label names)."""
        key = tuple(label_names)
        if key not in self._references:
            payload = json.dumps(self.to_dict(key), sort_keys=True).encode("utf-8")
            self._references[key] = {"file": NEAREST_FILE, "k": self.k, "balanced": self.balanced,
                                     "pool_rows": len(self.texts), "sha256": hashlib.sha256(payload).hexdigest()}
        return dict(self._references[key])

    @cached_property
    def longest_texts(self) -> tuple[str, ...]:
        """The ``k`` longest pool texts: the most room a text's examples can take."""
        return tuple(sorted(self.texts, key=len)[-self.k:])


def nearest_shot_classifier(clf, calibration, k: int, *, pool_size: int | None = None, seed: int = 0,
                            balanced: bool = True):
    """``clf`` asking every text with its ``k`` nearest rows of a shot pool drawn from ``calibration``
    (:class:`NearestShots`), and the calibration rows left.

    Returns ``(classifier, rest, pool)`` as :func:`shot_classifier` does; ``pool.indices`` are the pool rows.
    """
    if clf.task.ensemble:
        raise DataError("nearest shots work with one prompt, not a prompt ensemble (--prompts): use "
                        "--shot-selection balanced or drop --prompts")
    y = calibration.label_indices(clf.labels)
    pool = choose_pool(y, k, n_classes=len(clf.labels), size=pool_size, seed=seed, texts=calibration.texts,
                       balanced=balanced)
    nearest = NearestShots([calibration.texts[i] for i in pool.indices], y[list(pool.indices)], k,
                           balanced=balanced, n_classes=len(clf.labels))
    task = replace(clf.task, name=f"{clf.task.name}+{k}nearest", nearest=nearest)
    return clf.asking(task), calibration.subset(list(pool.rest)), pool
