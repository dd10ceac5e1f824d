"""ScorerSpec: defaults per scorer, refused combinations, and what a bundle records and checks."""

from __future__ import annotations

import pytest

from confidently.errors import ConfigError
from confidently.scorers import ScorerSpec, as_spec


def test_defaults_and_round_trip():
    assert ScorerSpec.make("logprob") == ScorerSpec() == as_spec(None) == as_spec("logprob")
    verbalized, consistency = ScorerSpec.make("verbalized"), ScorerSpec.make("consistency", seed=7)
    assert (verbalized.samples, verbalized.temperature) == (1, 0.0)
    assert (consistency.samples, consistency.temperature, consistency.seed) == (5, 1.0, 7)
    for spec in (ScorerSpec(), verbalized, consistency):
        assert ScorerSpec.from_dict(spec.to_dict()) == spec
    assert ScorerSpec().to_dict() == {"name": "logprob"}


@pytest.mark.parametrize("name, options, message", [
    ("logits", {}, "unknown scorer"),
    ("logprob", {"samples": 3}, "apply to the verbalized and consistency scorers only"),
    ("consistency", {"samples": 0}, "at least 1"),
    ("consistency", {"temperature": 0.0}, "greedy decoding"),
    ("verbalized", {"temperature": 9.0}, "between 0 and 5"),
    ("verbalized", {"max_new_tokens": 0}, "max_new_tokens"),
])
def test_bad_parameters_are_one_clear_error(name, options, message):
    with pytest.raises(ConfigError, match=message):
        ScorerSpec.make(name, **options)


def test_the_seed_is_recorded_but_does_not_change_the_distribution():
    a, b = ScorerSpec.make("consistency", seed=1), ScorerSpec.make("consistency", seed=2)
    assert a.key() != b.key() and a.distribution_key() == b.distribution_key()
    assert ScorerSpec.make("consistency", samples=8).distribution_key() != a.distribution_key()


@pytest.mark.parametrize("data", [None, {"name": 3}, {"name": "verbalized", "colour": "red"},
                                  {"name": "consistency", "seed": "x"}])
def test_malformed_records_are_refused(data):
    with pytest.raises(ConfigError):
        ScorerSpec.from_dict(data)
