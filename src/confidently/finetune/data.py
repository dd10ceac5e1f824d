"""Training data for LoRA: splits, answer targets, token ids, length-bucketed batches and collation.

The training prompt is exactly :meth:`Classifier.prompt` (same chat template, prefix and suffix) and
the target is each label's first word spelled the way the model would emit it right after that
prompt, so the adapter is scored by the same code path as the base model. Loss falls on the answer
tokens only: every other position's label is ``-100``. A task with a prompt ensemble asks every
training text each way it asks (:func:`encode_every_prompt`), so the adapter learns every prompt its
combiner reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from confidently.scoring.classifier import Classifier
from confidently.data import Dataset, split_dataset
from confidently.data.dataset import normalize_text
from confidently.errors import DataError, TaskError
from confidently.finetune.config import FinetuneConfig
from confidently.tasks.task import Task

#: Label value of positions that carry no loss (PyTorch's ``cross_entropy`` ``ignore_index``).
IGNORE = -100
#: Prompts the base model is asked about when choosing how answers are spelled.
_SPELLING_SAMPLE = 16


# -- splits ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainingSplits:
    """Rows a run trains on, validates on (early stopping) and calibrates on; never the test split.

    ``calibration_source`` is ``"given"`` (separate calibration data) or ``"carved"`` (from the training data).
    """

    train: Dataset
    validation: Dataset
    calibration: Dataset
    calibration_source: str

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "calibration": len(self.calibration)}


def check_labels(dataset: Dataset, task: Task, *, role: str) -> np.ndarray:
    """Label indices of ``dataset`` in the task's label order.

    Raises
    ------
    DataError
        When the data is unlabelled, or naming every label that is not one of the task's.
    """
    if dataset.labels is None:
        raise DataError(f"the {role} data has no labels; fine-tuning needs a label column", path=dataset.source)
    unknown = sorted(set(dataset.labels) - set(task.label_names))
    if unknown:
        raise DataError(
            f"the {role} data has labels that task {task.name!r} does not know: {', '.join(map(repr, unknown))} "
            f"(task labels: {', '.join(task.label_names)})", path=dataset.source)
    return dataset.label_indices(task.label_names)


def make_splits(train: Dataset, calibration: Dataset | None, config: FinetuneConfig) -> TrainingSplits:
    """Carve validation (and, when not given, calibration) rows out of ``train``.

    Uses :func:`confidently.data.split_dataset` (deduplicated, stratified by label and category,
    seeded by ``config.seed``), so no text is in two parts. Given calibration data must not share a
    text with the training data.
    """
    n = len(train)
    validation = min(config.validation_fraction, config.max_validation / max(n, 1))
    carved = config.calibration_fraction if calibration is None else 0.0
    splits = split_dataset(train, fractions=(1.0 - validation - carved, carved, validation), seed=config.seed)
    if calibration is not None:
        seen = {normalize_text(t) for t in train.texts}
        shared = sum(normalize_text(t) in seen for t in calibration.texts)
        if shared:
            raise DataError(f"{shared} calibration texts also appear in the training data; the calibration "
                            "data must be held out", path=calibration.source)
    parts = TrainingSplits(splits.train, splits.test, calibration if calibration is not None else splits.calibration,
                           "carved" if calibration is None else "given")
    for role, part, least in (("training", parts.train, 2), ("validation", parts.validation, 2),
                              ("calibration", parts.calibration, 30)):
        if len(part) < least:
            raise DataError(f"only {len(part)} {role} rows after splitting {n} rows; need at least {least}: "
                            "give more data", path=train.source)
    return parts


# -- answer targets ----------------------------------------------------------------------------

@dataclass(frozen=True)
class AnswerTargets:
    """The token ids each label is trained to produce right after the prompt.

    Attributes
    ----------
    texts : per label, the answer as spelled (``"yes"`` after a chat template's assistant turn,
        ``" yes"`` after ``Answer:``).
    token_ids : per label, its token ids in that position.
    """

    texts: tuple[str, ...]
    token_ids: tuple[tuple[int, ...], ...]

    def to_dict(self, task: Task) -> list[dict]:
        return [{"name": name, "target": text, "target_token_ids": list(ids)}
                for name, text, ids in zip(task.label_names, self.texts, self.token_ids)]


def answer_targets(classifier: Classifier, texts: Sequence[str]) -> AnswerTargets:
    """Each label's first word as the model would emit it after the prompt.

    The word is tried as given and with a leading space; each spelling is tokenized right after a
    real prompt (the prompt's tokens must stay unchanged), and must start with a token the
    verbalizer counts for that label (or be one of its multi-token sequences). Of the two, the
    spelling the base model gives more probability on a sample of ``texts`` is used for every label.

    Raises
    ------
    TaskError
        When neither spelling of a label's word is scored as that label.
    """
    backend, verbalizer, task = classifier.backend, classifier.verbalizer, classifier.task
    prompts = [classifier.prompt(t) for t in texts[:_SPELLING_SAMPLE]]
    prompt_ids = backend.encode(prompts[0])
    candidates: dict[str, list[tuple[int, ...]]] = {"": [], " ": []}
    for label, tokens in zip(task.labels, verbalizer.labels):
        for space, found in candidates.items():
            ids = backend.encode(prompts[0] + space + label.words[0])
            answer = tuple(ids[len(prompt_ids):])
            counted = answer and ids[:len(prompt_ids)] == prompt_ids and (
                answer[0] in set(tokens.token_ids.tolist()) or answer in tokens.sequences)
            found.append(answer if counted else ())
    usable = {space: found for space, found in candidates.items() if all(found)}
    if not usable:
        words = ", ".join(repr(label.words[0]) for label in task.labels)
        raise TaskError(f"task {task.name!r}: the first word of some label ({words}) is not scored as its label "
                        "right after the prompt; put a word the model spells with one token first in each label")
    logprobs = backend.next_token_logprobs(prompts, shared_prefix=classifier.prefix)

    def mass(found: list[tuple[int, ...]]) -> float:
        return float(np.exp(logprobs[:, [ids[0] for ids in found]]).sum())

    space = max(usable, key=lambda s: mass(usable[s]))
    return AnswerTargets(tuple(space + label.words[0] for label in task.labels), tuple(usable[space]))


# -- encoding and batching -----------------------------------------------------------------------

@dataclass(frozen=True)
class EncodedSet:
    """Examples as token ids: a prefix every prompt shares (run once per batch) and per-row tails.

    ``rows[i]`` is prompt ``i`` past the shared prefix followed by all but the last answer token, so
    the last ``len(answers[i])`` positions are exactly the ones that predict the answer tokens.
    """

    prefix: tuple[int, ...]
    rows: tuple[tuple[int, ...], ...]
    answers: tuple[tuple[int, ...], ...]
    label_index: np.ndarray
    #: Which prompt of the task each row asks (0: the task's own; more with a prompt ensemble).
    prompt_index: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.prompt_index is None:
            object.__setattr__(self, "prompt_index", np.zeros(len(self.rows), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(r) for r in self.rows), dtype=np.int64, count=len(self.rows))


def encode_examples(classifier: Classifier, dataset: Dataset, targets: AnswerTargets) -> EncodedSet:
    """Tokenize every prompt exactly as scoring does, with its label's answer appended."""
    y = check_labels(dataset, classifier.task, role="training")
    prompts = [classifier.prompt(t) for t in dataset.texts]
    # The backend's own split keeps tokenization identical to scoring's (prompts are tokenized whole).
    tails, prefix = classifier.backend._split(prompts, classifier.prefix)
    answers = tuple(targets.token_ids[j] for j in y)
    rows = tuple(tuple(tail) + answer[:-1] for tail, answer in zip(tails, answers))
    return EncodedSet(tuple(prefix), rows, answers, y)


def every_prompt_targets(classifier: Classifier, texts: Sequence[str]) -> tuple[AnswerTargets, ...]:
    """:func:`answer_targets` for each prompt the task asks (one without a prompt ensemble)."""
    return tuple(answer_targets(asked, texts) for asked in classifier.prompt_classifiers)


def encode_every_prompt(classifier: Classifier, dataset: Dataset, targets: Sequence[AnswerTargets]) -> EncodedSet:
    """Every text of ``dataset`` asked each way the task asks (``targets``: :func:`every_prompt_targets`), one
    row per text and prompt, the prompts' shared tokens as the prefix; :func:`encode_examples` for one prompt."""
    parts = [encode_examples(asked, dataset, target) for asked, target in zip(classifier.prompt_classifiers, targets)]
    if len(parts) == 1:
        return parts[0]
    shared = 0  # the longest token prefix every prompt starts with
    while all(len(p.prefix) > shared and p.prefix[shared] == parts[0].prefix[shared] for p in parts):
        shared += 1
    return EncodedSet(parts[0].prefix[:shared],
                      tuple(p.prefix[shared:] + row for p in parts for row in p.rows),
                      tuple(answer for p in parts for answer in p.answers),
                      np.concatenate([p.label_index for p in parts]),
                      np.repeat(np.arange(len(parts)), [len(p) for p in parts]))


def bucketed_batches(lengths: np.ndarray, batch_size: int, pool_batches: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch of batches of similar length, in random order.

    The rows are shuffled and cut into pools of ``pool_batches * batch_size``; each pool is sorted by
    length (ties keep the shuffled order) and cut into batches; then the batches are shuffled, so a
    batch's rows and the order of batches are both random while padding stays small.
    """
    order = rng.permutation(lengths.size)
    pool = batch_size * pool_batches
    batches: list[np.ndarray] = []
    for start in range(0, order.size, pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, chunk.size, batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


@dataclass(frozen=True)
class Batch:
    """Left-padded tensors for one forward pass (after the shared prefix).

    Attributes
    ----------
    input_ids, attention_mask, position_ids : LongTensor of shape (n, width)
    labels : LongTensor of shape (n, width)
        ``labels[i, t]`` is the token position ``t`` must predict (already shifted: the next token),
        ``-100`` everywhere but the answer positions.
    keep : int
        Longest answer: only the last ``keep`` positions' logits are computed.
    label_index : LongTensor of shape (n,)
    """

    input_ids: object
    attention_mask: object
    position_ids: object
    labels: object
    keep: int
    label_index: object

    @property
    def n_answer_tokens(self) -> int:
        return int((self.labels != IGNORE).sum())


def collate(encoded: EncodedSet, index: Sequence[int], pad_id: int) -> Batch:
    """Rows ``index`` of ``encoded`` as a left-padded :class:`Batch` (positions continue the prefix)."""
    import torch

    rows = [encoded.rows[i] for i in index]
    answers = [encoded.answers[i] for i in index]
    n, width = len(rows), max(len(r) for r in rows)
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    for i, (row, answer) in enumerate(zip(rows, answers)):
        input_ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row):] = 1
        labels[i, width - len(answer):] = torch.tensor(answer, dtype=torch.long)
    # Positions count real tokens only, so left padding leaves each example's positions unchanged.
    position_ids = (len(encoded.prefix) + mask.cumsum(dim=1) - 1).clamp(min=0)
    keep = max(len(a) for a in answers)
    label_index = torch.as_tensor(encoded.label_index[np.asarray(index)], dtype=torch.long)
    return Batch(input_ids, mask, position_ids, labels, keep, label_index)
