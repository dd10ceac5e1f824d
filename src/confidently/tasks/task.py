"""Tasks and verbalizers: how a next-token distribution becomes class scores.

A :class:`Task` is a prompt template with a ``{text}`` slot plus labels, each with the words that
mean it. A :class:`Verbalizer` binds a task to one vocabulary: it finds every token whose text,
stripped of whitespace and punctuation and case-folded, equals one of a label's words (so ``yes``,
`` Yes`` and ``YES`` all count), and sums the softmax over those tokens. That sum is the label's
*mass*; the rest of the distribution is the *other mass*.

Words that no single token spells (``multi_token=True``) are scored as the exact probability of
their token sequences. When one label's answer is a prefix of another's (``no`` beside ``no
opinion``), the probability of `` no`` already contains that of `` no opinion``: each answer is
then the event "the reply starts with these tokens and does not go on to a longer answer", so the
longer sequence's probability moves from the shorter answer's label to its own, and the labels'
masses stay disjoint and sum to at most 1 (see :attr:`Verbalizer.sequence_weights`).
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from confidently.errors import TaskError
from confidently.types import TokenProb

if TYPE_CHECKING:
    from confidently.tasks.nearest import NearestShots


def normalize_token(text: str) -> str:
    """Case-folded text with every whitespace and punctuation character removed."""
    kept = (ch for ch in text if not (ch.isspace() or unicodedata.category(ch)[0] in "PZC"))
    return "".join(kept).casefold()


@dataclass(frozen=True)
class Label:
    """A class and the answer words that mean it (the first word is the fine-tuning target)."""

    name: str
    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if isinstance(self.words, str) or not isinstance(self.words, Sequence):
            raise TaskError(f"label {self.name!r}: words must be a list of strings")
        object.__setattr__(self, "words", tuple(self.words))
        if not isinstance(self.name, str) or not self.name:
            raise TaskError("a label needs a name (a non-empty string)")
        if not all(isinstance(word, str) for word in self.words):
            raise TaskError(f"label {self.name!r}: words must be strings; got {list(self.words)!r}")
        if not self.words:
            raise TaskError(f"label {self.name!r} has no words")
        for word in self.words:
            if not normalize_token(word):
                raise TaskError(f"label {self.name!r}: word {word!r} is empty once whitespace and punctuation go")


@dataclass(frozen=True)
class Task:
    """A classification question asked of a language model.

    Parameters
    ----------
    name : short identifier.
    template : the user message, with exactly one ``{text}`` where the example goes.
    labels : the classes in column order (for binary tasks, the positive class last).
    chat : apply the model's chat template (True), never (False), or when it has one (None).
    answer_suffix : appended to the message when no chat template is applied.
    system_prompt : optional system message for chat templates.
    multi_token : allow label words that no single token spells; they are scored as the exact
        probability of their token sequence (one extra forward pass per variant and text).
    ensemble : more prompts asking the same question (other templates or label words, same labels in
        the same order; :func:`read_prompts` reads them from a file). The classifier scores every
        prompt, one forward pass each; a fitted combiner joins their class masses
        (:mod:`confidently.calibration.ensemble`).
    nearest : a labelled pool from which every text gets its own nearest examples, written ahead of the
        question (:mod:`confidently.tasks.nearest`); the task's record (:meth:`to_dict`) holds the pool's
        hash, the pool itself is the bundle's ``nearest.json``.
    """

    name: str
    template: str
    labels: tuple[Label, ...]
    chat: bool | None = None
    answer_suffix: str = "\nAnswer:"
    system_prompt: str | None = None
    multi_token: bool = False
    ensemble: tuple[Task, ...] = ()
    nearest: NearestShots | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "labels", tuple(self.labels))
        object.__setattr__(self, "ensemble", tuple(self.ensemble))
        for field_name, kinds in (("name", (str,)), ("template", (str,)), ("answer_suffix", (str,)),
                                  ("system_prompt", (str, type(None))), ("chat", (bool, type(None))),
                                  ("multi_token", (bool,))):
            if not isinstance(getattr(self, field_name), kinds):
                raise TaskError(f"task field {field_name!r} must be "
                                f"{' or '.join('null' if k is type(None) else k.__name__ for k in kinds)}; "
                                f"got {getattr(self, field_name)!r}")
        if not all(isinstance(label, Label) for label in self.labels):
            raise TaskError("task labels must be Label objects")
        count = self.template.count("{text}")
        if count != 1:
            raise TaskError(
                f"task {self.name!r}: the template must contain {{text}} exactly once, found {count}: {self.template!r}"
            )
        if len(self.labels) < 2:
            raise TaskError(f"task {self.name!r} needs at least two labels")
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names):
            raise TaskError(f"task {self.name!r} has duplicate label names: {names}")
        owner: dict[str, str] = {}
        for label in self.labels:
            for word in label.words:
                key = normalize_token(word)
                if owner.setdefault(key, label.name) != label.name:
                    raise TaskError(
                        f"task {self.name!r}: the word {word!r} is given for both {owner[key]!r} and {label.name!r}"
                    )
        self._check_ensemble()
        if self.nearest is not None and self.ensemble:
            raise TaskError(f"task {self.name!r}: nearest-shot examples work with one prompt, not a prompt ensemble")

    def _check_ensemble(self) -> None:
        """Every ensemble prompt is a plain task with the same labels; no prompt is asked twice."""
        if not self.ensemble:
            return
        def asked(task: Task) -> str:  # what the model is asked, whatever the prompt is called
            return replace(task, name="-").fingerprint()

        seen = {asked(self.without_ensemble()): "the task's own prompt"}
        for i, prompt in enumerate(self.ensemble, 1):
            if not isinstance(prompt, Task) or prompt.ensemble:
                raise TaskError(f"task {self.name!r}: ensemble prompt {i} must be a task without an ensemble of its own")
            if prompt.label_names != self.label_names:
                raise TaskError(f"task {self.name!r}: ensemble prompt {i} has labels {', '.join(prompt.label_names)}; "
                                f"expected the task's {', '.join(self.label_names)} in that order")
            repeated = seen.setdefault(asked(prompt), f"ensemble prompt {i}")
            if repeated != f"ensemble prompt {i}":
                raise TaskError(f"task {self.name!r}: ensemble prompt {i} repeats {repeated} (same template and words)")

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def message(self, text: str) -> str:
        """The user message for one text (plain replacement: braces in the text are kept as-is)."""
        return self.template.replace("{text}", text)

    @property
    def prompts(self) -> tuple[Task, ...]:
        """Every prompt the task asks: its own (without the ensemble) first, then the ensemble's."""
        return (self.without_ensemble(), *self.ensemble)

    def without_ensemble(self) -> Task:
        return replace(self, ensemble=()) if self.ensemble else self

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("labels", "ensemble", "nearest")}
        data["labels"] = [{"name": label.name, "words": list(label.words)} for label in self.labels]
        # Left out when empty, so a single-prompt task keeps the fingerprint (and score caches) it always had.
        if self.ensemble:
            data["ensemble"] = [prompt.to_dict() for prompt in self.ensemble]
        if self.nearest is not None:
            data["nearest"] = self.nearest.reference(self.label_names)
        return data

    @classmethod
    def from_dict(cls, data: Mapping, *, nearest: NearestShots | None = None) -> Task:
        """The task :meth:`to_dict` recorded; a task with nearest shots needs its pool (``nearest``, read from
        the bundle's ``nearest.json``), which must be the one recorded."""
        if isinstance(data, Mapping) and ("nearest" in data) != (nearest is not None):
            raise TaskError("the task asks with nearest-shot examples, but no pool was given (load it from its "
                            "bundle, whose nearest.json holds the pool)" if nearest is None else
                            "a shot pool was given for a task that records none")
        try:
            if not isinstance(data["labels"], list) or not all(isinstance(item, Mapping) for item in data["labels"]):
                raise TypeError("labels must be a list of {name, words} objects")
            labels = tuple(Label(item["name"], item["words"]) for item in data["labels"])
            plain = {k: v for k, v in data.items() if k not in ("labels", "ensemble", "nearest")}
            ensemble = data.get("ensemble", [])
            if not isinstance(ensemble, list) or not all(isinstance(item, Mapping) for item in ensemble):
                raise TypeError("ensemble must be a list of task objects")
            task = cls(labels=labels, ensemble=tuple(cls.from_dict(item) for item in ensemble), nearest=nearest, **plain)
        except (KeyError, TypeError) as error:
            raise TaskError(f"malformed task definition ({error}): expected name, template, labels[{{name, words}}]") from None
        if nearest is not None and task.to_dict()["nearest"] != data["nearest"]:
            raise TaskError(f"the shot pool is not the one the task records (expected {data['nearest']!r})")
        return task

    def fingerprint(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


SENTIMENT = Task(
    name="sentiment",
    # The original write-up's question, with the text quoted after it so the question is part of
    # the prompt prefix that every example shares (its KV cache is computed once).
    template='Is this text positive in sentiment? Answer yes or no.\nText: "{text}"',
    labels=(
        Label("negative", ("no", "n", "false", "negative")),
        Label("positive", ("yes", "y", "true", "positive")),
    ),
)

BUILTIN_TASKS: dict[str, Task] = {SENTIMENT.name: SENTIMENT}


def get_task(task: str | Task) -> Task:
    """A built-in task by name, a task from a JSON file, or the task itself."""
    if isinstance(task, Task):
        return task
    if task in BUILTIN_TASKS:
        return BUILTIN_TASKS[task]
    path = Path(task)
    if path.suffix == ".json" and path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise TaskError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
        except (OSError, ValueError, RecursionError) as error:  # bad UTF-8, a 5000-digit integer, deep nesting
            raise TaskError(f"{path}: not a readable task file ({type(error).__name__})") from None
        return Task.from_dict(data)
    if path.suffix == ".json":
        raise TaskError(f"{path}: no such task file")
    raise TaskError(f"unknown task {task!r}: use one of {', '.join(BUILTIN_TASKS)} or a task .json file")


#: Keys a prompt of a prompts file (:func:`read_prompts`) may hold.
PROMPT_KEYS = ("template", "words", "name")


def read_prompts(path: str | Path, task: Task) -> Task:
    """``task`` with the prompts of a prompts file added to its ensemble (``evaluate --prompts FILE``).

    The file is JSON Lines (``.jsonl``: one prompt per line) or JSON (a list of prompts). A prompt is
    an object with a ``template`` holding ``{text}`` once, optional ``words`` (every label of ``task``
    mapped to its answer words; default: the task's words) and an optional ``name``; everything else
    (chat, answer suffix, system prompt) is the task's.

    Raises
    ------
    TaskError
        One line naming the file and the line (JSON Lines) or prompt number (JSON), and what was expected.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TaskError(f"{path}: not a readable prompts file ({type(error).__name__})") from None
    if path.suffix == ".jsonl":
        entries = [(f"{path}:{number}", line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
        items = [(where, _parse_json(line, where)) for where, line in entries]
    else:
        data = _parse_json(text, str(path), whole_file=True)
        if not isinstance(data, list):
            raise TaskError(f"{path}: expected a JSON list of prompts ({{template, words, name}} objects); got "
                            f"{type(data).__name__}")
        items = [(f"{path}: prompt {i}", item) for i, item in enumerate(data, 1)]
    if not items:
        raise TaskError(f"{path}: holds no prompts; expected at least one {{template, words, name}} object")
    prompts = []
    for where, item in items:
        prompt = _prompt(item, task, where, len(task.ensemble) + len(prompts) + 1)
        try:
            replace(task, ensemble=(*task.ensemble, *prompts, prompt))
        except TaskError as error:  # the same labels, no repeated prompt
            raise TaskError(f"{where}: {error}") from None
        prompts.append(prompt)
    return replace(task, ensemble=(*task.ensemble, *prompts))


def _parse_json(text: str, where: str, *, whole_file: bool = False):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        line = f":{error.lineno}" if whole_file else ""  # a JSON Lines entry's ``where`` names its line already
        raise TaskError(f"{where}{line}: not valid JSON: {error.msg}") from None
    except (ValueError, RecursionError) as error:  # a 5000-digit integer, deep nesting
        raise TaskError(f"{where}: not a usable JSON value ({type(error).__name__})") from None


def _prompt(item, task: Task, where: str, number: int) -> Task:
    """One prompt object of a prompts file as a plain task with ``task``'s labels."""
    if not isinstance(item, Mapping):
        raise TaskError(f"{where}: expected an object with a template; got {type(item).__name__}")
    unknown = sorted(set(map(str, item)) - set(PROMPT_KEYS))
    if unknown:
        raise TaskError(f"{where}: unknown key(s) {', '.join(unknown)}; a prompt holds {', '.join(PROMPT_KEYS)}")
    words = item.get("words", {label.name: list(label.words) for label in task.labels})
    if not isinstance(words, Mapping) or set(words) != set(task.label_names):
        raise TaskError(f"{where}: words must map every label ({', '.join(task.label_names)}) to a list of words")
    name = item.get("name", f"{task.name}-prompt{number}")
    try:
        if not isinstance(item.get("template"), str):
            raise TaskError("expected a template string with {text} in it")
        if not isinstance(name, str) or not name:
            raise TaskError("name must be a non-empty string")
        labels = tuple(Label(label, words[label]) for label in task.label_names)
        return Task(name=name, template=item["template"], labels=labels, chat=task.chat,
                    answer_suffix=task.answer_suffix, system_prompt=task.system_prompt, multi_token=task.multi_token)
    except TaskError as error:
        raise TaskError(f"{where}: {error}") from None


@dataclass(frozen=True)
class LabelTokens:
    """What counts towards one label in one vocabulary."""

    token_ids: np.ndarray  # single-token variants
    sequences: tuple[tuple[int, ...], ...]  # multi-token variants (exact sequence probability)


def _sequence_weights(owners: Mapping[tuple[int, ...], int], single_owner: Mapping[int, int],
                      n_labels: int) -> tuple[tuple[tuple[int, ...], ...], np.ndarray]:
    """The sequences worth scoring and the signed weights that turn their probabilities into mass.

    ``owners`` maps every multi-token variant to its label, ``single_owner`` every single-token
    variant id to its label. A sequence adds its probability to its own label and takes it from the
    label of its *parent*, its longest proper prefix that is itself a variant (that prefix's
    probability includes it). A sequence whose parent has the same label changes nothing and is
    left out; its own descendants still take from that label, since their parent's label is the
    same whichever of the two prefixes they take from.

    Returns the kept sequences (ordered by label, then sequence) and an array of shape
    (n_sequences, n_labels) of +1 / -1 entries.
    """

    def parent_label(seq: tuple[int, ...]) -> int | None:
        for end in range(len(seq) - 1, 0, -1):
            prefix = seq[:end]
            if end == 1 and prefix[0] in single_owner:
                return single_owner[prefix[0]]
            if prefix in owners:
                return owners[prefix]
        return None

    kept = sorted(((owner, seq, parent_label(seq)) for seq, owner in owners.items()), key=lambda t: t[:2])
    kept = [row for row in kept if row[2] != row[0]]
    weights = np.zeros((len(kept), n_labels))
    for row, (owner, _, parent) in enumerate(kept):
        weights[row, owner] += 1.0
        if parent is not None:
            weights[row, parent] -= 1.0
    return tuple(seq for _, seq, _ in kept), weights


class Verbalizer:
    """A task bound to a vocabulary: label → token ids, and distributions → class masses.

    Parameters
    ----------
    task : the task.
    vocabulary : decoded text of every token id (index = id).
    encode : tokenizes a string without special tokens (for multi-token label words).
    """

    def __init__(self, task: Task, vocabulary: Sequence[str], encode: Callable[[str], list[int]] | None = None):
        self.task = task
        self.vocabulary = vocabulary
        word_owner = {normalize_token(w): i for i, label in enumerate(task.labels) for w in label.words}
        ids_per_label: list[list[int]] = [[] for _ in task.labels]
        spelled: set[str] = set()
        for token_id, text in enumerate(vocabulary):
            key = normalize_token(text)
            if key in word_owner:
                ids_per_label[word_owner[key]].append(token_id)
                spelled.add(key)
        single_owner = {token_id: j for j, ids in enumerate(ids_per_label) for token_id in ids}
        owners = {seq: j for j, label in enumerate(task.labels) for seq in self._sequences(label, spelled, encode)}
        #: Every multi-token variant worth scoring, in label order, and the (n_sequences, n_labels)
        #: signed weights that turn their probabilities into class mass (see :func:`_sequence_weights`).
        self.sequences, self.sequence_weights = _sequence_weights(owners, single_owner, len(task.labels))
        self.labels: tuple[LabelTokens, ...] = tuple(
            LabelTokens(np.asarray(sorted(ids), dtype=np.int64),
                        tuple(seq for seq in self.sequences if owners[seq] == j))
            for j, ids in enumerate(ids_per_label)
        )

    def _sequences(self, label: Label, spelled: set[str], encode) -> set[tuple[int, ...]]:
        """Token sequences of the label's words that no single token spells."""
        missing = [w for w in label.words if normalize_token(w) not in spelled]
        if not missing:
            return set()
        if not self.task.multi_token or encode is None:
            raise TaskError(
                f"label {label.name!r}: no token in this vocabulary spells {missing[0]!r}"
                + (f" (nor {missing[1:]})" if len(missing) > 1 else "")
                + "; remove the word, or set multi_token=True to score it as a token sequence"
            )
        sequences: set[tuple[int, ...]] = set()
        for word in missing:
            for form in {word, word.capitalize(), word.lower()}:
                for surface in (form, " " + form):
                    ids = tuple(encode(surface))
                    if len(ids) > 1:
                        sequences.add(ids)
        return sequences

    @property
    def has_sequences(self) -> bool:
        return bool(self.sequences)

    def add_sequence_mass(self, mass: np.ndarray, sequence_logprobs: np.ndarray) -> np.ndarray:
        """Class mass (n, k) with the sequences' probabilities moved in (see :attr:`sequence_weights`).

        ``sequence_logprobs`` has shape (n, n_sequences), in the order of :attr:`sequences`. A label
        whose answer is a prefix of another's loses what the longer answer gains; the result is
        clipped at 0, since the two probabilities come from separate forward passes and may differ
        in the last float32 digit.
        """
        return np.maximum(mass + np.exp(sequence_logprobs) @ self.sequence_weights, 0.0)

    def class_mass(self, logprobs: np.ndarray) -> np.ndarray:
        """Single-token class mass from full-vocabulary log-probabilities of shape (n, vocab)."""
        # Gather before exponentiating: the vocabulary is ~10^5 wide, the label ids a few dozen.
        return np.stack([np.exp(logprobs[:, label.token_ids].astype(np.float64)).sum(axis=1)
                         for label in self.labels], axis=1)

    def class_mass_from_top(self, top: Sequence[Mapping[str, float]]) -> np.ndarray:
        """Class mass from top-k maps {token text: logprob} (servers that return only the top tokens)."""
        owner = {normalize_token(w): i for i, label in enumerate(self.task.labels) for w in label.words}
        mass = np.zeros((len(top), len(self.labels)))
        for row, entries in enumerate(top):
            for token, logprob in entries.items():
                index = owner.get(normalize_token(token))
                if index is not None:
                    mass[row, index] += np.exp(logprob)
        return mass

    def variants(self, logprobs_row: np.ndarray, limit: int = 8) -> dict[str, list[TokenProb]]:
        """Per label, its most probable token variants (for explaining one prediction)."""
        result = {}
        for label, tokens in zip(self.task.labels, self.labels):
            order = tokens.token_ids[np.argsort(-logprobs_row[tokens.token_ids])][:limit]
            result[label.name] = [
                TokenProb(rank, self.vocabulary[i], float(logprobs_row[i]), int(i)) for rank, i in enumerate(order, 1)
            ]
        return result
