"""Class masses of multi-token labels computed the slow way, one token at a time, for checking the
verbalizer on the tiny and the real model. A plain module (not conftest), imported by name."""

from __future__ import annotations

import numpy as np
import torch

from confidently.tasks.task import Label, Task, normalize_token


def chain_probability(backend, prompt: str, sequence) -> float:
    """P(sequence | prompt) by running the model one token at a time, no cache, no batching."""
    ids = backend.encode_prompt(prompt)
    logp = 0.0
    for token in sequence:
        with torch.no_grad():
            logits = backend.model(input_ids=torch.tensor([ids])).logits[0, -1]
        logp += torch.log_softmax(logits.double(), -1)[token].item()
        ids.append(token)
    return float(np.exp(logp))


NO_OPINION = Task("opinion", "Do you agree? {text}", (Label("no", ("no",)), Label("no opinion", ("no opinion",)),
                                                      Label("not sure", ("not sure",))), multi_token=True)


def expected_opinion_masses(backend, prompt: str) -> np.ndarray:
    """The masses by their definition, computed from token-by-token chains (not from the verbalizer)."""
    vocab = backend.vocabulary()
    no_ids = [i for i, t in enumerate(vocab) if normalize_token(t) == "no"]  # " no", "No", "no," ...
    with torch.no_grad():
        logits = backend.model(input_ids=torch.tensor([backend.encode_prompt(prompt)])).logits[0, -1]
    first = torch.softmax(logits.double(), -1).numpy()
    mass = np.array([first[no_ids].sum(), 0.0, 0.0])
    for j, word in ((1, "no opinion"), (2, "not sure")):
        spellings = {tuple(backend.encode(s + f)) for f in {word, word.capitalize()} for s in ("", " ")}
        for sequence in spellings:
            prob = chain_probability(backend, prompt, sequence)
            mass[j] += prob
            if sequence[0] in no_ids:  # the reply starts with a "no" token: it is no longer a plain "no"
                mass[0] -= prob
    return mass

