"""Which scorer turns a model into class scores, with its parameters: what bundles record and check.

``logprob`` reads the label words' probability from the next-token distribution (the default;
needs logprobs). The black-box scorers need only generated text: ``verbalized`` asks the model for
its label and the probability that it is right; ``consistency`` samples ``samples`` answers and
takes each label's share. Both are in :mod:`confidently.scorers.blackbox`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confidently.errors import ConfigError

SCORERS = ("logprob", "verbalized", "consistency")

#: Parameters a scorer takes when the user gives none: (samples, temperature, max_new_tokens).
#: consistency samples at temperature 1, the model's own distribution; verbalized decodes greedily.
DEFAULTS = {"verbalized": (1, 0.0, 24), "consistency": (5, 1.0, 8)}


@dataclass(frozen=True)
class ScorerSpec:
    """A scorer and its parameters.

    Attributes
    ----------
    name : ``logprob``, ``verbalized`` or ``consistency``.
    samples : generated answers per text (black-box scorers).
    temperature : sampling temperature; 0 is greedy decoding (then ``samples`` must be 1).
    seed : seeds every sampled answer (same seed, same text: same answers).
    max_new_tokens : longest answer generated.
    """

    name: str = "logprob"
    samples: int = 0
    temperature: float = 0.0
    seed: int = 0
    max_new_tokens: int = 0

    @classmethod
    def make(cls, name: str = "logprob", *, samples: int | None = None, temperature: float | None = None,
             seed: int = 0, max_new_tokens: int | None = None) -> ScorerSpec:
        """A checked spec, with the scorer's defaults for what is not given.

        Raises
        ------
        ConfigError
            Unknown scorer, sampling options for ``logprob``, or values out of range.
        """
        if name not in SCORERS:
            raise ConfigError(f"unknown scorer {name!r}: use one of {', '.join(SCORERS)}")
        if name == "logprob":
            if samples is not None or temperature is not None or max_new_tokens is not None:
                raise ConfigError("the logprob scorer reads one next-token distribution: --samples and "
                                  "--temperature apply to the verbalized and consistency scorers only")
            return cls()
        default_samples, default_temperature, default_tokens = DEFAULTS[name]
        samples = default_samples if samples is None else samples
        temperature = default_temperature if temperature is None else float(temperature)
        max_new_tokens = default_tokens if max_new_tokens is None else max_new_tokens
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ConfigError(f"samples must be a whole number of at least 1, got {samples!r}")
        if not 0 <= temperature <= 5:
            raise ConfigError(f"temperature must be between 0 and 5, got {temperature}")
        if temperature == 0 and samples > 1:
            raise ConfigError(f"temperature 0 (greedy decoding) gives the same answer {samples} times: give a "
                              "temperature above 0 to sample, or one sample")
        if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be at least 1, got {max_new_tokens!r}")
        return cls(name, samples, temperature, int(seed), max_new_tokens)

    @property
    def black_box(self) -> bool:
        return self.name != "logprob"

    def describe(self) -> str:
        if not self.black_box:
            return "logprob (label words' next-token probability)"
        sampling = "greedy" if self.temperature == 0 else f"temperature {self.temperature:g}, seed {self.seed}"
        return f"{self.name} ({self.samples} answer(s) per text, {sampling}, at most {self.max_new_tokens} tokens)"

    def key(self) -> str:
        """Everything that shapes the scores (for caches); the logprob scorer's is empty."""
        return self.distribution_key() + (f":seed={self.seed}" if self.black_box else "")

    def distribution_key(self) -> str:
        """What a calibrator depends on: the seed only redraws answers from the same distribution, so
        a bundle fitted with one seed applies with another (like the precision, it is recorded)."""
        if not self.black_box:
            return ""
        return f"{self.name}:k={self.samples}:T={self.temperature:g}:max={self.max_new_tokens}"

    def to_dict(self) -> dict[str, Any]:
        if not self.black_box:
            return {"name": self.name}
        return {"name": self.name, "samples": self.samples, "temperature": self.temperature, "seed": self.seed,
                "max_new_tokens": self.max_new_tokens}

    @classmethod
    def from_dict(cls, data: Any) -> ScorerSpec:
        """Inverse of :meth:`to_dict`; raises :class:`ConfigError` on anything else."""
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            raise ConfigError(f"a scorer must be an object with a name, got {data!r}")
        extra = set(data) - {"name", "samples", "temperature", "seed", "max_new_tokens"}
        if extra:
            raise ConfigError(f"scorer {data['name']!r}: unknown keys {', '.join(sorted(extra))}")
        options = {k: data[k] for k in ("samples", "temperature", "max_new_tokens") if k in data}
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError(f"scorer seed must be a whole number, got {seed!r}")
        return cls.make(data["name"], seed=seed, **options)


def as_spec(scorer: ScorerSpec | str | None) -> ScorerSpec:
    """A :class:`ScorerSpec` from a spec, a scorer name (with its defaults) or None (logprob)."""
    if scorer is None:
        return ScorerSpec()
    if isinstance(scorer, ScorerSpec):
        return scorer
    return ScorerSpec.make(scorer)
