"""FinetuneConfig: every field documented, bad values and bad combinations refused by name."""

from dataclasses import fields

import pytest

from confidently.errors import ConfigError
from confidently.finetune import FinetuneConfig


def test_every_field_has_help():
    for f in fields(FinetuneConfig):
        assert f.metadata.get("help"), f"{f.name} has no help text"
        assert FinetuneConfig.help(f.name) == f.metadata["help"]


@pytest.mark.parametrize("settings, named", [
    ({"r": 0}, "r must be an integer >= 1"),
    ({"batch_size": 2.5}, "batch_size"),
    ({"lora_dropout": 1.5}, "lora_dropout"),
    ({"learning_rate": -1.0}, "learning_rate"),
    ({"epochs": 0}, "epochs"),
    ({"max_steps": 0}, "max_steps"),
    ({"target_modules": ()}, "target_modules"),
    ({"calibrator": "magic"}, "calibrator 'magic' is unknown"),
    ({"validation_fraction": 0.5, "calibration_fraction": 0.45},
     "validation_fraction (0.5) + calibration_fraction (0.45)"),
])
def test_bad_values_are_refused_naming_the_field(settings, named):
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        FinetuneConfig(**settings)


def test_max_steps_makes_epochs_irrelevant_and_round_trips():
    config = FinetuneConfig(max_steps=10, epochs=0, target_modules=["q_proj"])
    assert config.target_modules == ("q_proj",)
    assert FinetuneConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown fine-tuning settings: rank"):
        FinetuneConfig.from_dict({"rank": 4})
