"""Few-shot prompts: labelled examples from the calibration rows, placed in the prompt every text shares.

:func:`choose_shots` draws ``k`` calibration rows, class-balanced (round-robin over the classes, rows in
a seeded random order); :func:`with_shots` writes them into the task's template ahead of the question.
The examples sit before ``{text}``, so they are part of the shared prefix whose KV cache the local
backend computes once (:meth:`~confidently.backends.transformers_backend.TransformersBackend._prefix_kv`):
their cost is paid once per run, not per text. The rows used as shots are removed from calibration
(a calibrator must not be fitted on texts the prompt already answers) and reported; the test rows
are never drawn from. :func:`~confidently.tasks.nearest.nearest_shot_classifier` instead gives every text its own nearest examples
from a pool of calibration rows (:mod:`confidently.tasks.nearest`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from confidently.errors import DataError
from confidently.tasks.task import Task


@dataclass(frozen=True)
class Shots:
    """The calibration rows used as examples (``indices``) and those left to calibrate on (``rest``)."""

    indices: tuple[int, ...]
    rest: tuple[int, ...]


def choose_shots(labels: Sequence[int], k: int, *, n_classes: int, seed: int = 0,
                 texts: Sequence[str] | None = None) -> Shots:
    """``k`` class-balanced rows of a labelled calibration split (class indices ``labels``).

    Classes take turns (0, 1, ..., 0, 1, ...), each giving its next row in a seeded random order;
    rows whose text holds the ``{text}`` slot marker are never chosen (the template could not hold them).
    """
    y = np.asarray(labels)
    if k < 1:
        raise DataError(f"--shots must be at least 1, got {k}")
    rng = np.random.default_rng(seed)
    usable = np.array([texts is None or "{text}" not in texts[i] for i in range(y.size)], dtype=bool)
    queues = [list(rng.permutation(np.flatnonzero((y == c) & usable))) for c in range(n_classes)]
    if sum(len(q) for q in queues) - k < 2 * n_classes or any(len(q) < -(-k // n_classes) for q in queues):
        counts = ", ".join(f"class {c}: {len(q)}" for c, q in enumerate(queues))
        raise DataError(f"cannot take {k} class-balanced shots from the calibration split ({counts}) and still "
                        "calibrate on the rest: use fewer shots or label more rows")
    chosen: list[int] = []
    while len(chosen) < k:
        for queue in queues:
            if len(chosen) < k:
                chosen.append(int(queue.pop(0)))
    picked = set(chosen)
    return Shots(tuple(chosen), tuple(i for i in range(y.size) if i not in picked))


def worked_examples(task: Task, examples: Sequence[tuple[str, int]]) -> str:
    """The examples (text, class index) as ``task`` asks them, each followed by ``Answer: <word>`` (the label's
    first word, the answer the verbalizer reads), one blank line apart."""
    worked = []
    for text, label in examples:
        if "{text}" in text:
            raise DataError("a shot text holds the {text} slot marker; it cannot be written into the template")
        worked.append(f"{task.message(text)}\nAnswer: {task.labels[label].words[0]}")
    return "\n\n".join(worked)


def shots_template(task: Task, block: str) -> str:
    """``task``'s template with the worked examples ``block`` ahead of its question."""
    return "Examples:\n\n" + block + "\n\nNow this one.\n" + task.template


def with_shots(task: Task, examples: Sequence[tuple[str, int]]) -> Task:
    """``task`` with worked examples (text, class index) written ahead of its question.

    Each example is the task's own question for that text (:func:`worked_examples`); the question for the
    new text comes last. Every prompt of an ensemble gets the same examples, asked its own way.
    """
    if not examples:
        return task
    template = shots_template(task, worked_examples(task, examples))
    return replace(task, name=f"{task.name}+{len(examples)}shots", template=template,
                   ensemble=tuple(with_shots(prompt, examples) for prompt in task.ensemble))


def shot_classifier(clf, calibration, k: int, *, seed: int = 0):
    """``clf`` asking with ``k`` class-balanced shots from ``calibration``, and the calibration rows left.

    Returns ``(classifier, rest, shots)``: the new classifier shares ``clf``'s backend (no second model),
    ``rest`` is ``calibration`` without the shot rows, ``shots`` says which rows were used.
    """
    y = calibration.label_indices(clf.labels)
    shots = choose_shots(y, k, n_classes=len(clf.labels), seed=seed, texts=calibration.texts)
    task = with_shots(clf.task, [(calibration.texts[i], int(y[i])) for i in shots.indices])
    return clf.asking(task), calibration.subset(list(shots.rest)), shots
