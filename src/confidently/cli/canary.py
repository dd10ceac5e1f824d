"""``confidently canary DIR``: re-score a bundle's golden prompts and say whether the scores still hold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from confidently.cli.app import app, console
from confidently.cli.options import ApiKeyOpt, BaseUrlOpt, DeviceOpt, DtypeOpt, JsonOpt, TokenizerOpt
from confidently.cli.scoring import echo
from confidently.errors import ArtifactError, ConfigError

if TYPE_CHECKING:
    import numpy as np

    from confidently.monitoring.canary import Canary

CANARY_FILE = "canary.json"  # confidently.monitoring.canary.CANARY_FILE, named here so --help loads no numpy


@app.command()
def canary(
    folder: Annotated[Optional[Path], typer.Argument(
        exists=True, file_okay=False, show_default=False,
        help=f"Calibration bundle (evaluate run folder, finetune adapter folder) holding {CANARY_FILE}. "
             "Optional with --sagemaker: then the deployed adapter's own bundle is read from S3.")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", help="Base model to re-score on (default: the bundle's); with --base-url, the served "
                              "model name.")] = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = None,
    server: Annotated[Optional[str], typer.Option(
        "--server", help="Re-score on a running `confidently serve` (URL) instead of a local model.")] = None,
    sagemaker: Annotated[Optional[str], typer.Option(
        "--sagemaker", metavar="ENDPOINT",
        help="Re-score on a SageMaker endpoint made by `confidently sagemaker deploy` (the adapter named by "
             "--adapter, default the folder's name).")] = None,
    adapter: Annotated[Optional[str], typer.Option(
        "--adapter", help="With --server or --sagemaker: the adapter to ask for.")] = None,
    no_adapter: Annotated[bool, typer.Option(
        "--no-adapter", help="Locally, do not load the folder's LoRA weights (measures the base model).")] = False,
    tolerance: Annotated[Optional[float], typer.Option(
        min=0.0, max=1.0, help="Override the canary's tolerance (largest accepted probability change).")] = None,
    region: Annotated[Optional[str], typer.Option(
        "--region", help="With --sagemaker: AWS region (default: boto3's).")] = None,
    config: Annotated[Optional[Path], typer.Option(
        "--config", exists=True, dir_okay=False,
        help="With --sagemaker: settings file, as `confidently sagemaker` takes it (bucket, prefix...).")] = None,
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-score the golden prompts stored in a calibration bundle and compare with the recorded probabilities.

    Locally (an adapter bundle's LoRA weights are loaded), on an OpenAI-compatible server (--base-url),
    on a running confidently server (--server) or on a SageMaker endpoint (--sagemaker). Reports the
    largest and mean change of the raw class probabilities; exits 1 when the largest exceeds the
    tolerance: the model is not the one the calibrator was fitted for (another base, a no-op adapter,
    another engine or precision).

    Example: confidently canary runs/my-adapter --server http://127.0.0.1:8000 --adapter support
    """
    import numpy as np

    from confidently.bundle.bundle import read_bundle
    from confidently.monitoring.canary import Canary, CanaryFailedError

    if sum(option is not None for option in (base_url, server, sagemaker)) > 1:
        raise ConfigError("give at most one of --base-url, --server and --sagemaker")
    if folder is None and sagemaker is None:
        raise ConfigError("give the bundle folder (FOLDER), or --sagemaker ENDPOINT --adapter NAME")
    if sagemaker is not None:
        recorded, probs, where = _on_sagemaker(folder, sagemaker, adapter, region, config)
    else:
        bundle = read_bundle(folder)
        recorded = _canary_of(bundle)
        texts = list(recorded.texts)
        if server is not None:
            from confidently.client import Client

            with Client(server) as client:
                reply = client.classify(texts, adapter=adapter)
            probs = np.array([[r.raw_probs[label] for label in recorded.task.label_names] for r in reply.results])
            where = f"server {server}" + (f" adapter {adapter}" if adapter else "")
        else:
            from confidently.cli.options import build_classifier

            with_adapter = bundle.is_adapter and not no_adapter and not base_url
            name = model or bundle.model.name
            classifier = build_classifier(model=name, task=recorded.task,
                                          backend="openai" if base_url else "transformers", device=device,
                                          dtype=dtype, base_url=base_url, api_key=api_key, tokenizer=tokenizer,
                                          adapter=folder if with_adapter else None, chat=recorded.chat,
                                          quiet=as_json)
            probs = classifier.score(texts).probs
            where = name + (" + the bundle's adapter" if with_adapter else "")
    if tolerance is not None:
        recorded = Canary(recorded.task, recorded.chat, recorded.texts, recorded.true_labels, recorded.probs,
                          tolerance, recorded.scored_with)
    result = recorded.check(probs)
    if as_json:
        console.print_json(json.dumps({"scored_on": where, **result.to_dict()}))
    else:
        console.print(f"{where}: {result.describe()}", highlight=False)
        if not result.passed:
            console.print(f"largest change on: {echo(result.worst_text)}", highlight=False)
    if not result.passed:
        raise CanaryFailedError(f"canary failed on {where}: max deviation {result.max_deviation:.4g} > tolerance "
                                f"{result.tolerance:g}; the calibrator does not hold for this model")


def _canary_of(bundle) -> Canary:
    from confidently.monitoring.canary import Canary

    found = Canary.from_bundle(bundle)
    if found is None:
        raise ArtifactError(f"{bundle.folder}: the bundle has no {CANARY_FILE} (bundles written by `confidently "
                            "evaluate` or `confidently finetune` carry one)")
    return found


def _on_sagemaker(folder: Path | None, endpoint: str, adapter: str | None, region: str | None,
                  config: Path | None) -> tuple[Canary, np.ndarray, str]:
    """The deployed adapter's canary (from ``folder`` or, without one, its deployed bundle on S3), re-scored
    on the endpoint through the same requests ``sagemaker classify`` sends."""
    from confidently.cli.sagemaker import sagemaker_runner, sagemaker_settings
    from confidently.deploy.remote import remote_classifier

    if folder is not None and adapter not in (None, folder.name):
        raise ConfigError(f"--adapter {adapter}: `sagemaker deploy` serves the adapter in {folder} as "
                          f"{folder.name!r}; omit --adapter, or omit the folder to read {adapter!r}'s bundle from S3")
    name = folder.name if folder is not None else adapter
    if name is None:
        raise ConfigError("--sagemaker without a folder needs --adapter NAME")
    settings = sagemaker_settings(config, region=region)
    bundle, calibrated = remote_classifier(sagemaker_runner(settings), settings, endpoint, name,
                                           adapters_dir=None if folder is None else folder.parent)
    recorded = _canary_of(bundle)
    probs = calibrated.classifier.score(list(recorded.texts)).probs
    return recorded, probs, f"SageMaker endpoint {endpoint} adapter {name}"
