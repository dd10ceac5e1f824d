"""SageMaker settings: defaults < config file < CONFIDENTLY_SAGEMAKER_* < flags; clear errors."""

import json
import re

import pytest

from confidently.deploy.settings import SageMakerSettings, check_name, load_settings
from confidently.errors import ConfigError


def test_precedence(tmp_path):
    config = tmp_path / "sm.toml"
    config.write_text('bucket = "from-file"\nregion = "eu-west-1"\nmax_loras = 8\n')
    env = {"CONFIDENTLY_SAGEMAKER_BUCKET": "from-env", "CONFIDENTLY_SAGEMAKER_MAX_LORA_RANK": "32"}
    settings = load_settings(config, env, bucket="from-flag", region=None)
    assert (settings.bucket, settings.region, settings.max_loras, settings.max_lora_rank) == ("from-flag", "eu-west-1", 8, 32)
    assert load_settings(config, env).bucket == "from-env"
    assert load_settings(config, {}).bucket == "from-file"
    assert load_settings(None, {}) == SageMakerSettings()


def test_json_file_from_the_environment_with_a_sagemaker_table(tmp_path):
    config = tmp_path / "sm.json"
    config.write_text(json.dumps({"sagemaker": {"role_arn": "arn:aws:iam::111122223333:role/r", "accelerators": 2}}))
    settings = load_settings(None, {"CONFIDENTLY_SAGEMAKER_CONFIG": str(config)})
    assert settings.role_arn == "arn:aws:iam::111122223333:role/r" and settings.accelerators == 2.0


@pytest.mark.parametrize("arn", ["arn:aws:iam::111122223333:role/sm", "arn:aws-cn:iam::111122223333:role/sm",
                                 "arn:aws-us-gov:iam::111122223333:role/service-role/AmazonSageMaker-Execution_1+=,.@",
                                 "arn:aws:iam::111122223333:role/" + "r" * 64])
def test_role_arns_of_every_partition_and_with_a_path_are_taken(arn):
    assert load_settings(None, {}, role_arn=arn).role_arn == arn == SageMakerSettings(role_arn=arn).role_arn


BAD_ARNS = ["my-sagemaker-role", "arn:aws:iam::1:role/r", "arn:aws:iam::111122223333:user/alice",
            "arn:aws:iam::111122223333:role/", "arn:aws:iam::111122223333:role/a/", "arn:azure:iam::111122223333:role/r",
            "arn:aws:iam::111122223333:role/" + "r" * 65, "arn:aws:iam::111122223333:role/has space",
            "arn:aws:s3:::111122223333:role/r"]


@pytest.mark.parametrize("arn", BAD_ARNS)
def test_a_role_that_is_not_an_iam_role_arn_is_refused_naming_where_it_was_given(arn, tmp_path):
    # before, any string was taken and the mistake surfaced only at the AWS call, after the uploads
    expected = "is not an IAM role ARN; expected arn:aws:iam::<12-digit account>:role/<name>"
    with pytest.raises(ConfigError, match=f"^--role: .*{re.escape(expected)}") as flag:
        load_settings(None, {}, role_arn=arn)
    assert "aws-cn or aws-us-gov" in str(flag.value) and "\n" not in str(flag.value)
    with pytest.raises(ConfigError, match=f"^CONFIDENTLY_SAGEMAKER_ROLE_ARN: .*{re.escape(expected)}"):
        load_settings(None, {"CONFIDENTLY_SAGEMAKER_ROLE_ARN": arn})
    config = tmp_path / "sm.json"
    config.write_text(json.dumps({"role_arn": arn}))
    with pytest.raises(ConfigError, match=f"^{re.escape(str(config))}: role_arn: .*{re.escape(expected)}"):
        load_settings(config, {})
    with pytest.raises(ConfigError, match=f"^role_arn: .*{re.escape(expected)}"):
        SageMakerSettings(role_arn=arn)


@pytest.mark.parametrize("content,message", [
    ('bukket = "x"\n', "unknown SageMaker setting 'bukket'"),
    ('max_loras = "many"\n', "max_loras must be int"),
    ("bucket = [\n", "not valid TOML"),
])
def test_bad_config_files(tmp_path, content, message):
    config = tmp_path / "sm.toml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, {})


def test_bad_environment_value():
    with pytest.raises(ConfigError, match="CONFIDENTLY_SAGEMAKER_MEMORY_MB: memory_mb must be int"):
        load_settings(None, {"CONFIDENTLY_SAGEMAKER_MEMORY_MB": "lots"})


def test_require_names_every_missing_setting():
    with pytest.raises(ConfigError, match="--role / CONFIDENTLY_SAGEMAKER_ROLE_ARN, --bucket"):
        SageMakerSettings().require("role_arn", "bucket")


@pytest.mark.parametrize("name", ["under_score", "-lead", "x" * 64, ""])
def test_invalid_resource_names(name):
    with pytest.raises(ConfigError, match="not valid on SageMaker"):
        check_name("endpoint", name)
