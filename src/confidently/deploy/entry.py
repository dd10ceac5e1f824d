"""The training job's entry point: install confidently, run ``confidently finetune``, keep the adapter.

``confidently sagemaker train`` copies this file to the root of the source tarball as
``confidently_entry.py`` and names it in the ``sagemaker_program`` hyperparameter; the PyTorch
training container downloads the tarball (``sagemaker_submit_directory``) to /opt/ml/code and runs
it. It uses the standard library only, since confidently is not installed yet when it starts.

It reads the job's hyperparameters from ``SM_HPS`` (JSON), installs the uploaded source (or the pip
requirement in ``install``) plus the base model's packages, fetches a Hugging Face token from
Secrets Manager when ``hf_token_secret`` is set (into the child process's environment only), runs
``confidently finetune --data $SM_CHANNEL_TRAINING/<data_file> --model M --task T --out DIR
<finetune_args>`` and copies the adapter folder's files to ``SM_MODEL_DIR``, which SageMaker uploads
as ``model.tar.gz``: PEFT files at its root (the shape adapter inference components load), with the
manifest, calibrator and policy beside them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _list(value) -> list[str]:
    """A hyperparameter holding a list: decoded already by the container, or still JSON text."""
    if isinstance(value, str):
        value = json.loads(value) if value.strip().startswith("[") else value.split()
    return [str(item) for item in value or []]


def install_command(hps: Mapping, code_dir: Path) -> list[str]:
    """``pip install`` of confidently (the uploaded source, or ``install``) and the model's packages."""
    install = hps.get("install") or str(code_dir)
    return [sys.executable, "-m", "pip", "install", "--no-cache-dir", install, *_list(hps.get("packages"))]


def finetune_command(hps: Mapping, code_dir: Path, data_dir: Path, out: Path) -> list[str]:
    """The ``confidently finetune`` command line for these hyperparameters."""
    task = str(hps.get("task") or "sentiment")
    if (code_dir / task).is_file():  # a task .json shipped in the tarball
        task = str(code_dir / task)
    return [sys.executable, "-m", "confidently.cli", "finetune", "--data", str(data_dir / hps["data_file"]),
            "--model", str(hps["model"]), "--task", task, "--out", str(out), *_list(hps.get("finetune_args"))]


def hf_token(secret: str, region: str | None) -> str:
    """The secret's string value (boto3 ships with SageMaker's training containers)."""
    import boto3

    return boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=secret)["SecretString"]


def main() -> None:
    hps = json.loads(os.environ.get("SM_HPS", "{}"))
    code_dir = Path(__file__).resolve().parent
    subprocess.run(install_command(hps, code_dir), check=True)
    env = dict(os.environ)
    if hps.get("hf_token_secret"):
        env["HF_TOKEN"] = hf_token(hps["hf_token_secret"], hps.get("region") or env.get("AWS_REGION"))
    out = Path(tempfile.mkdtemp(prefix="confidently-")) / "adapter"
    data_dir = Path(os.environ.get("SM_CHANNEL_TRAINING", "/opt/ml/input/data/training"))
    subprocess.run(finetune_command(hps, code_dir, data_dir, out), check=True, env=env)
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    model_dir.mkdir(parents=True, exist_ok=True)
    for path in out.iterdir():
        if path.is_file():
            shutil.copy2(path, model_dir / path.name)


if __name__ == "__main__":
    main()
