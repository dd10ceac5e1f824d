"""Texts for several LoRA adapters of one base model (and the bare model) scored in one forward pass.

Each group is a classifier on the shared backend (its task, prompt and verbalizer), the adapter
its texts are scored with, and the texts. The backend selects each row's adapter inside the
forward pass (PEFT's mixed-adapter batches) and gives each row the cached prompt prefix of its own
adapter, so a text's scores are those it gets in a batch of its adapter alone (float32: within
float rounding of the padding; batch-invariant bfloat16: bit-identical).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from confidently.scoring.classifier import Classifier
from confidently.types import Scores


@dataclass(frozen=True)
class AdapterGroup:
    """Texts to score with one classifier and one adapter (None: the bare base model)."""

    classifier: Classifier
    adapter: str | None
    texts: Sequence[str]


def score_groups(groups: Sequence[AdapterGroup]) -> list[Scores]:
    """Each group's :class:`Scores`, all groups' texts in one forward pass (give at most a batch's worth).

    Every classifier must share one :class:`~confidently.backends.transformers_backend.TransformersBackend`.
    Label words of several tokens cost one more pass per group, under that group's adapter.

    Raises
    ------
    ConfigError
        The classifiers do not share one backend, or one scores with a black-box scorer.
    DataError
        A text is empty or not a string.
    ArtifactError
        An adapter is not loaded.
    """
    from confidently.errors import ConfigError

    backend = groups[0].classifier.backend
    if any(group.classifier.backend is not backend for group in groups):
        raise ConfigError("texts scored in one forward pass need classifiers on one backend")
    if any(group.classifier.scorer.black_box for group in groups):
        raise ConfigError("texts scored in one forward pass need the logprob scorer; a black-box scorer generates "
                          "answers")
    prepared = [group.classifier.prompts(group.texts) for group in groups]
    prompts = [prompt for group_prompts, _ in prepared for prompt in group_prompts]
    adapters = [group.adapter for group, (group_prompts, _) in zip(groups, prepared) for _ in group_prompts]
    # Groups of different tasks share whatever their prompts' prefixes have in common (a chat template's start).
    shared = os.path.commonprefix([group.classifier.prefix for group in groups])
    logprobs = backend.next_token_logprobs(prompts, shared_prefix=shared, adapters=adapters)
    active = backend.active_adapter
    out, start = [], 0
    try:
        for group, (group_prompts, truncated) in zip(groups, prepared):
            rows = logprobs[start:start + len(group_prompts)]
            start += len(group_prompts)
            clf = group.classifier
            if clf.verbalizer.has_sequences:  # the sequence pass scores this group's rows under the active adapter
                backend.set_adapter(group.adapter)
            mass, other, uncovered = backend.class_mass(group_prompts, rows, clf.verbalizer, shared_prefix=clf.prefix)
            out.append(Scores(clf.labels, mass, other, truncated, uncovered))
    finally:
        if backend.active_adapter != active:
            backend.set_adapter(active)
    return out
