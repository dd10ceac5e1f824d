"""``confidently sagemaker …``: fine-tune in a training job, serve adapters on an endpoint, classify, delete.

Settings come from flags, ``CONFIDENTLY_SAGEMAKER_*`` environment variables or a ``--config``
TOML/JSON file (see ``confidently.deploy.settings``); credentials from boto3's standard chain.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from confidently.cli.app import app, console, err_console
from confidently.cli.options import DEFAULTS, ModelOpt, TaskOpt

sagemaker_app = typer.Typer(
    help="Run confidently on AWS SageMaker: training jobs, a multi-adapter endpoint, calibrated classification."
         "\n\nExample: `confidently sagemaker deploy reviews adapters/triage --config sagemaker.toml --dry-run`",
    no_args_is_help=False,  # no command is a usage error: one line, exit 2 (see main)
    rich_markup_mode="markdown",
)
app.add_typer(sagemaker_app, name="sagemaker")

ConfigOpt = Annotated[Optional[Path], typer.Option(
    "--config", exists=True, dir_okay=False, help="TOML or JSON file of settings (also $CONFIDENTLY_SAGEMAKER_CONFIG).")]
RegionOpt = Annotated[Optional[str], typer.Option("--region", help="AWS region (default: boto3's).")]


def _role_arn(value: str | None) -> str | None:
    """--role, checked before anything is read or uploaded: a usage error unless it looks like an IAM role ARN."""
    from confidently.deploy.settings import role_arn_problem

    if value and (problem := role_arn_problem(value)):
        raise typer.BadParameter(problem)
    return value


RoleOpt = Annotated[Optional[str], typer.Option("--role", callback=_role_arn, help="IAM role ARN SageMaker assumes "
                                                "(arn:aws:iam::<12-digit account>:role/<name>).")]
BucketOpt = Annotated[Optional[str], typer.Option("--bucket", help="S3 bucket for data, code and adapters.")]
PrefixOpt = Annotated[Optional[str], typer.Option("--prefix", help="Key prefix in the bucket (default: confidently).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Print the exact AWS requests as JSON; call nothing.")]
InstanceTypeOpt = Annotated[Optional[str], typer.Option("--instance-type", help="(default: ml.g5.xlarge)")]


def sagemaker_settings(config, **flags):
    from confidently.deploy.settings import load_settings

    return load_settings(config, **flags)


def sagemaker_runner(settings):
    from confidently.deploy.calls import Runner
    from confidently.deploy.sagemaker import make_clients

    return Runner(make_clients(settings), settings, echo=lambda message: err_console.print(f"[dim]{message}[/]"))


#: ``finetune`` options the job sets itself (entry.py), so not hyperparameters
_SET_BY_THE_JOB = frozenset({"data", "out", "model", "task"})


def _hyperparameters(pairs: list[str]) -> list[str]:
    """``["epochs=2", "r=16"]`` -> ``["--epochs", "2", "--r", "16"]`` for ``confidently finetune``.

    Each name and value is checked against ``confidently finetune``'s own options here, so a typo is a
    usage error now, not a training job that fails after the upload and the instance start.
    """
    finetune = typer.main.get_command(app).commands["finetune"]
    options = {opt: param for param in finetune.params for opt in param.opts if opt.startswith("--")}
    args: list[str] = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not NAME=VALUE (e.g. epochs=2)", param_hint="--hyperparameter")
        flag = f"--{key.strip().lstrip('-')}"
        param = options.get(flag)
        if param is None or param.name in _SET_BY_THE_JOB or getattr(param, "is_flag", False) or flag == "--help":
            why = (f"is set by the job itself (sagemaker train --{param.name})" if param is not None
                   and param.name in _SET_BY_THE_JOB else "is not a `confidently finetune` option taking a value")
            raise typer.BadParameter(f"{pair!r}: {flag} {why}; see `confidently finetune --help`",
                                     param_hint="--hyperparameter")
        args += [flag, value]
    try:  # finetune's own parser converts and range-checks the values; --data/--out stand in for the job's
        finetune.make_context("finetune", ["--data", __file__, "--out", "job-output", *args])
    except typer.TyperException as error:
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        raise typer.BadParameter(f"{message} (passed to `confidently finetune`)", param_hint="--hyperparameter") from None
    return args


@sagemaker_app.command("train")
def train(
    data: Annotated[str, typer.Option("--data", help="Training JSONL/CSV: a local file (uploaded) or s3:// URI.")],
    model: ModelOpt = DEFAULTS["model"],
    task: TaskOpt = DEFAULTS["task"],
    hyperparameter: Annotated[Optional[list[str]], typer.Option(
        "--hyperparameter", "-H", help="NAME=VALUE passed to `confidently finetune` as --NAME VALUE; repeatable.")] = None,
    job_name: Annotated[Optional[str], typer.Option("--job-name", help="Default: confidently-finetune-<UTC time>.")] = None,
    source: Annotated[Optional[Path], typer.Option("--source", exists=True, file_okay=False, help="confidently checkout to ship (default: this one).")] = None,
    install: Annotated[Optional[str], typer.Option(
        "--install", help="Install this pip requirement in the job instead of shipping the source.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job to finish.")] = False,
    dry_run: DryRunOpt = False,
    config: ConfigOpt = None,
    region: RegionOpt = None,
    role: RoleOpt = None,
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
    image: Annotated[Optional[str], typer.Option("--image", help="PyTorch training container image URI.")] = None,
    instance_type: InstanceTypeOpt = None,
) -> None:
    """Fine-tune an adapter in a SageMaker training job that runs this project's `confidently finetune`.

    The data and a tarball of this project's source go to S3; the job installs the source, trains,
    and SageMaker uploads the adapter folder (PEFT files, manifest, calibrator, policy) as model.tar.gz.

    Example: `confidently sagemaker train --data train.jsonl --role arn:aws:iam::111122223333:role/sm
    --bucket my-bucket --image <pytorch-training-uri> -H epochs=2 --dry-run`
    """
    from confidently.deploy.calls import render
    from confidently.deploy.sagemaker import training_plan

    settings = sagemaker_settings(config, region=region, role_arn=role, bucket=bucket, prefix=prefix,
                         training_image=image, training_instance_type=instance_type)
    plan = training_plan(settings, data=data, model=model, task=task, job_name=job_name,
                         finetune_args=_hyperparameters(hyperparameter or []), source=source, install=install)
    if dry_run:
        typer.echo(render(plan.calls))
        return
    runner = sagemaker_runner(settings)
    runner.run(plan.calls)
    console.print(f"started training job [bold]{plan.name}[/]; its adapter will be at {plan.model_artifact}")
    if wait:
        runner.wait("training_done", plan.name)
        console.print(f"done: aws s3 cp {plan.model_artifact} . && mkdir ADAPTER && tar xzf model.tar.gz -C ADAPTER")


@sagemaker_app.command("deploy")
def deploy(
    endpoint: Annotated[str, typer.Argument(help="Endpoint name (letters, digits, hyphens).")],
    adapters: Annotated[list[Path], typer.Argument(exists=True, file_okay=False, help="Adapter folders made by `confidently finetune`.")],
    dry_run: DryRunOpt = False,
    config: ConfigOpt = None,
    region: RegionOpt = None,
    role: RoleOpt = None,
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
    image: Annotated[Optional[str], typer.Option("--image", help="LMI (djl-inference) container image URI.")] = None,
    instance_type: InstanceTypeOpt = None,
    base_model_id: Annotated[Optional[str], typer.Option(
        "--base-model-id", help="HF_MODEL_ID for the base model (default: from adapter_config.json).")] = None,
    max_lora_rank: Annotated[Optional[int], typer.Option("--max-lora-rank", help="Largest LoRA rank served (default: 16).")] = None,
    max_loras: Annotated[Optional[int], typer.Option("--max-loras", help="Adapters per batch (default: 4).")] = None,
) -> None:
    """Create an endpoint serving the adapters' base model on LMI (vLLM, LoRA on), one component per adapter.

    Each adapter's calibrator, policy and manifest are uploaded beside its weights, for
    `confidently sagemaker classify`.

    Example: `confidently sagemaker deploy reviews adapters/triage adapters/tone --role ARN --bucket B
    --image <lmi-uri> --dry-run`
    """
    from confidently.deploy.calls import render
    from confidently.deploy.packaging import read_adapter
    from confidently.deploy.sagemaker import deploy_plan

    settings = sagemaker_settings(config, region=region, role_arn=role, bucket=bucket, prefix=prefix, inference_image=image,
                         inference_instance_type=instance_type, base_model_id=base_model_id,
                         max_lora_rank=max_lora_rank, max_loras=max_loras)
    calls = deploy_plan(settings, endpoint, [read_adapter(folder) for folder in adapters])
    if dry_run:
        typer.echo(render(calls))
        return
    sagemaker_runner(settings).run(calls)
    console.print(f"endpoint [bold]{endpoint}[/] serves {', '.join(a.name for a in adapters)}")


@sagemaker_app.command("classify")
def classify(
    endpoint: Annotated[str, typer.Argument(help="Endpoint made by `confidently sagemaker deploy`.")],
    texts: Annotated[list[str], typer.Argument(help="Texts to classify.")],
    adapter: Annotated[str, typer.Option("--adapter", help="The adapter's name (its folder's name).")],
    adapters_dir: Annotated[Optional[Path], typer.Option(
        "--adapters-dir", exists=True, file_okay=False, help="Read calibrator/policy/manifest from ADAPTERS_DIR/NAME instead of S3.")] = None,
    tokenizer: Annotated[Optional[str], typer.Option(
        "--tokenizer", help="Model whose tokenizer renders the prompt (default: the base model, if installed); "
                            "'none': let the endpoint apply its chat template.")] = "auto",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")] = False,
    config: ConfigOpt = None,
    region: RegionOpt = None,
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Classify texts with a deployed adapter: calibrated confidence and the adapter's automate/review decision.

    Example: `confidently sagemaker classify reviews --adapter triage "Great product" "Broke in a day"`
    """
    from confidently.deploy.remote import classify_remote

    settings = sagemaker_settings(config, region=region, bucket=bucket, prefix=prefix)
    results = classify_remote(sagemaker_runner(settings), settings, endpoint, adapter, texts, adapters_dir=adapters_dir,
                              tokenizer=None if tokenizer == "none" else tokenizer)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results], indent=2))
        return
    table = Table(title=f"{endpoint} / {adapter}")
    for column in ("text", "label", "confidence", "decision", "uncovered"):
        table.add_column(column)
    for r in results:
        kind = "calibrated" if r.calibrated else "raw"
        decision = (r.decision or "(no policy)") + (f" ({r.review_reason.replace('_', ' ')})" if r.review_reason else "")
        table.add_row(r.text, r.label, f"{r.confidence:.4f} ({kind})", decision,
                      f"{r.uncovered_mass:.4f}" + (" [yellow]label may be hidden[/]" if r.label_may_be_hidden else ""))
    console.print(table)


@sagemaker_app.command("delete")
def delete(
    endpoint: Annotated[str, typer.Argument(help="The endpoint to delete with its components, config and model.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Print the delete requests as JSON (the endpoint is still read to find them).")] = False,
    config: ConfigOpt = None,
    region: RegionOpt = None,
    bucket: BucketOpt = None,
    prefix: PrefixOpt = None,
) -> None:
    """Delete an endpoint: adapter components, base component, endpoint, config and model, in that order.

    Each deletion is polled until SageMaker reports it gone before the next starts.

    Example: `confidently sagemaker delete reviews --yes`
    """
    from confidently.deploy.calls import render
    from confidently.deploy.sagemaker import delete_plan

    settings = sagemaker_settings(config, region=region, bucket=bucket, prefix=prefix)
    runner = sagemaker_runner(settings)
    calls = delete_plan(runner, settings, endpoint)
    if dry_run:
        typer.echo(render(calls))
        return
    if not yes:
        typer.confirm(f"delete {endpoint} ({len(calls)} deletions)?", abort=True)
    runner.run(calls)
    console.print(f"deleted endpoint [bold]{endpoint}[/] and its components, config and model")
