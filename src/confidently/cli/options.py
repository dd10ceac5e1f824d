"""Options shared by every command that loads a model, and the one place they become a Classifier."""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.markup import escape

from confidently.defaults import DEFAULT_BATCH_SIZE, FALLBACK, FIXED_SEQUENCE
from confidently.models.registry import DEFAULT_MODEL

if TYPE_CHECKING:
    from confidently.bundle.bundle import Bundle
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.tasks.task import Task

ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Registry name (see `confidently models`), "
                                       "local folder, .gguf file or hub id.")]
TaskOpt = Annotated[str, typer.Option("--task", "-t", help=(
    'Built-in task name (sentiment) or a task .json file with your own question and labels, e.g. '
    '{"name": "urgency", "template": "Is this ticket urgent? Answer yes or no.\\nTicket: {text}", "labels": '
    '[{"name": "routine", "words": ["no"]}, {"name": "urgent", "words": ["yes"]}]}: the template holds {text} '
    'once; labels in column order, each with the answer words that mean it (README: Tasks).'))]
BackendOpt = Annotated[str, typer.Option("--backend", help="transformers (local) or openai (a server).")]
DeviceOpt = Annotated[Optional[str], typer.Option("--device", help="auto, cpu, cuda, cuda:1 …")]
DtypeOpt = Annotated[Optional[str], typer.Option(
    "--dtype", help="auto (float32), float32, bfloat16, float16, or bf16-invariant (bfloat16 on CPU or CUDA "
                    "whose scores do not depend on the batch; plain bfloat16's do).")]
BatchOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, help="Prompts per forward pass.")]
BaseUrlOpt = Annotated[Optional[str], typer.Option(
    "--base-url", help="openai backend: server URL, e.g. http://127.0.0.1:8080/v1")]
TokenizerOpt = Annotated[Optional[str], typer.Option(
    "--tokenizer", help="openai backend: registry name, folder or hub id of the served model's tokenizer, which "
                        "renders prompts exactly as locally (needed when --model is a name only the server knows, "
                        "such as a vLLM LoRA). [default: --model, when it is a registry name or folder]",
    show_default=False)]
ApiKeyOpt = Annotated[Optional[str], typer.Option(
    "--api-key", help="openai backend: NAME of the environment variable holding the API key.")]
AdapterOpt = Annotated[Optional[Path], typer.Option(
    "--adapter", help="A LoRA adapter folder made by `finetune` (its hashes are checked; its own calibrator and "
                      "policy apply unless --calibration is given; --model and --task default to its own).")]
#: --adapter where no calibration applies (next-token) or a new one is fitted (evaluate).
AdapterModelOpt = Annotated[Optional[Path], typer.Option(
    "--adapter", help="A LoRA adapter folder made by `finetune`, applied to its base model (its hashes are checked; "
                      "--model and --task default to its own).")]
CalibrationOpt = Annotated[Optional[Path], typer.Option(
    "--calibration", help="A calibration bundle: the run folder of `confidently evaluate` (or an adapter folder). "
                          "Answers become calibrated with an automate/review decision; --model and --task default "
                          "to the bundle's.")]
class Certification(str, Enum):
    """The Learn-Then-Test procedures (:data:`confidently.defaults.PROCEDURES`)."""

    fallback = FALLBACK
    fixed_sequence = FIXED_SEQUENCE


CertificationOpt = Annotated[Certification, typer.Option(
    "--certification",
    help="How thresholds are tested for the certified one (same guarantee either way): fallback (default) splits "
         "the 1 - level error chance between the strictest threshold with enough rows and the strictest "
         "automating a quarter of them, and a failure does not end testing; fixed-sequence (the earlier rule) "
         "tests from the strictest down and stops at the first failure.")]


class DecisionRule(str, Enum):
    """The decision rules a bundle can decide by (:data:`confidently.bundle.bundle.DECISION_RULES`)."""

    threshold = "threshold"
    prediction_set = "prediction_set"


DecisionRuleOpt = Annotated[Optional[DecisionRule], typer.Option(
    "--decision-rule", show_default=False,
    help="What decides automate or review: the policy's certified confidence threshold, or `prediction_set`: "
         "automate when the conformal prediction set holds only the answer (wrong automated answers are then at "
         "most alpha of all items, on average over calibration samples). [default: the bundle's; evaluate and "
         "finetune: threshold]")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON output.")]
MaxTextTokensOpt = Annotated[Optional[int], typer.Option(
    "--max-text-tokens", min=8, show_default=False,
    help="Longest text scored whole, in tokens; a longer one is truncated (and flagged). "
         "[default: 2048, or the model's context when less]")]
MaxTextCharsOpt = Annotated[Optional[int], typer.Option(
    "--max-text-chars", min=8, show_default=False,
    help="A text longer than this many characters is cut (same rule, flagged) before it is tokenized. "
         "[default: 16 per --max-text-tokens]")]

ScorerOpt = Annotated[str, typer.Option(
    "--scorer", help="How the model's output becomes class scores: logprob (the label words' next-token "
                     "probability; needs logprobs), verbalized (the model states its label and the probability "
                     "that it is right) or consistency (the share of --samples sampled answers naming each label); "
                     "the last two need only generated text (README: Scorers).")]
SamplesOpt = Annotated[Optional[int], typer.Option(
    "--samples", min=1, show_default=False,
    help="verbalized / consistency: generated answers per text. [default: 1 verbalized, 5 consistency]")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", min=0.0, max=5.0, show_default=False,
    help="verbalized / consistency: sampling temperature (0 = greedy, then --samples 1); plain sampling, no "
         "top-k or top-p. [default: 0 verbalized, 1 consistency]")]


def scorer_spec(scorer: str, samples: int | None, temperature: float | None, seed: int):
    """The :class:`~confidently.scorers.ScorerSpec` the options ask for; a bad combination is a usage error."""
    from confidently.errors import ConfigError
    from confidently.scorers import ScorerSpec

    try:
        return ScorerSpec.make(scorer, samples=samples, temperature=temperature, seed=seed)
    except ConfigError as error:
        raise typer.BadParameter(str(error), param_hint="--scorer") from None


DEFAULTS = {"model": DEFAULT_MODEL, "task": "sentiment", "backend": "transformers", "batch_size": DEFAULT_BATCH_SIZE}


def build_classifier(*, model: str, task, backend: str, device: str | None = None, dtype: str | None = None,
                     batch_size: int = DEFAULT_BATCH_SIZE, base_url: str | None = None, api_key: str | None = None,
                     adapter: Path | None = None, chat: bool | None = None, quiet: bool = False,
                     max_text_tokens: int | None = None, max_text_chars: int | None = None, scorer=None,
                     tokenizer: str | None = None):
    """Load the classifier a command asked for (heavy imports happen here, not at CLI start-up)."""
    from confidently.scoring.classifier import Classifier
    from confidently.cli.app import err_console

    check_folder(adapter, "--adapter")
    if backend not in ("transformers", "openai"):
        raise typer.BadParameter(f"unknown backend {backend!r}: use transformers (the model runs here) or openai "
                                 "(an OpenAI-compatible server such as vLLM or llama.cpp's)", param_hint="--backend")
    if backend == "transformers" and base_url is not None:
        # else the URL is ignored and the server's model name is looked up as a local model
        raise typer.BadParameter("applies to --backend openai: add --backend openai to score through the server",
                                 param_hint="--base-url")
    check_url(base_url, "--base-url", "http://HOST:PORT/v1")
    options: dict = {}
    if backend == "transformers":
        if tokenizer is not None:
            raise typer.BadParameter("applies only to a server's model (--backend openai, or --base-url); a local "
                                     "model uses its own tokenizer", param_hint="--tokenizer")
        options.update(device=device, dtype=dtype, console=None if quiet else err_console)
    else:
        options.update(base_url=base_url, api_key_env=api_key)
        if tokenizer is not None:
            options["tokenizer"] = tokenizer
    if adapter is not None:
        options["adapter"] = str(adapter)
    if not quiet:
        err_console.print(f"[dim]loading {escape(str(model))} ({backend})…[/]")
    return Classifier(model=model, task=task, backend=backend, batch_size=batch_size, chat=chat,
                      max_text_tokens=max_text_tokens, max_text_chars=max_text_chars, scorer=scorer, **options)


def check_url(url: str | None, option: str, example: str) -> None:
    """A usage error (exit 2) for a URL without http:// or https://, found before anything connects (and retries)."""
    if url is not None and not url.lower().startswith(("http://", "https://")):
        raise typer.BadParameter(f"{url!r} is not an http:// or https:// URL: give e.g. {example}", param_hint=option)


def given(ctx: typer.Context, name: str) -> bool:
    """Whether the user set option ``name`` (on the command line or from the environment), not its default."""
    source = ctx.get_parameter_source(name)
    # By name: typer may bring its own copy of click, whose ParameterSource is another enum class.
    return source is not None and source.name not in ("DEFAULT", "DEFAULT_MAP")


def check_folder(folder: Path | None, option: str) -> None:
    """A usage error (exit 2) when ``option`` names something that is not a folder, found before the model loads."""
    if folder is not None and not folder.is_dir():
        made_by = "an adapter folder made by `confidently finetune`" if option == "--adapter" else \
            "a calibration bundle: the run folder of `confidently evaluate` or an adapter folder"
        raise typer.BadParameter(f"{folder} is not a folder: give {made_by}", param_hint=option)


def read_calibration(folder: Path | None, option: str = "--calibration") -> Bundle | None:
    """The calibration bundle in ``folder`` at its newest recalibrated version, the one ``serve`` applies
    (hashes checked), or None; read before any model loads."""
    if folder is None:
        return None
    check_folder(folder, option)
    from confidently.bundle.versions import latest_version
    from confidently.cli.app import err_console

    newest = latest_version(folder)
    if newest.number > 1:
        err_console.print(f"[dim]applying version {newest.number} of {folder} ({newest.bundle.folder}), the "
                          "newest, as serve does[/]")
    return newest.bundle


def check_bundle_backend(bundle: Bundle, folder: Path, backend: str) -> None:
    """A usage error (exit 2) for a bundle fitted through a serving engine used with the local backend.

    Without it the engine's model name (``--model`` defaults to the bundle's) is looked up as a local
    model, and the error is "unknown model", which does not say what to do.
    """
    if bundle.model.backend != "openai" or backend == "openai":
        return
    # the weights id of an engine's model is "server:URL#NAME" (OpenAIBackend.weights_id)
    url = bundle.model.weights_id.removeprefix("server:").rsplit("#", 1)[0]
    raise typer.BadParameter(f"{folder} was fitted through an OpenAI-compatible engine (model "
                             f"{bundle.model.name!r} at {url}): score through it with --backend openai "
                             f"--base-url {url}", param_hint="--backend")


def build_calibrated(ctx: typer.Context, *, model: str, task: str, backend: str, calibration: Path | None = None,
                     adapter: Path | None = None, decision_rule: str | None = None,
                     before_load: Callable[[Task], None] | None = None, **options) -> CalibratedClassifier:
    """The classifier a command asked for, with its calibration bundle applied.

    The bundle is ``--calibration``, else the ``--adapter``'s own; both are read and checked before the
    model loads, and ``--model`` / ``--task`` not given on the command line default to the bundle's.
    Without either the answers are uncalibrated (and say so). The bundle's scorer (logprob, verbalized,
    consistency, with its samples and temperature) scores the texts. ``decision_rule`` overrides the bundle's
    (``prediction_set`` needs a bundle with prediction sets: checked here too). ``options`` go to
    :func:`build_classifier`. ``before_load`` is called with the task the classifier will ask, before the
    model loads: a command reads and checks its input file there, so a mistake in it costs no model load.
    """
    from confidently.decision.calibrated import CalibratedClassifier
    from confidently.tasks.task import get_task

    adapter_bundle = read_calibration(adapter, "--adapter")  # an adapter is always a bundle: no manifest, no load
    bundle = read_calibration(calibration) or adapter_bundle
    chat = scorer = None
    decision_rule = None if decision_rule is None else DecisionRule(decision_rule).value
    if decision_rule == "prediction_set" and (bundle is None or bundle.prediction_sets is None):
        raise typer.BadParameter("prediction_set needs a calibration bundle that carries prediction sets "
                                 "(conformal.json, written by `confidently evaluate` or `confidently finetune`)",
                                 param_hint="--decision-rule")
    if bundle is not None:
        check_bundle_backend(bundle, calibration or adapter, backend)
        model = model if given(ctx, "model") else bundle.model.name
        task = task if given(ctx, "task") else bundle.task
        chat, scorer = bundle.chat, bundle.scorer
    asked = get_task(task)
    if bundle is not None:
        bundle.check_task(asked, chat)  # the model's own checks follow once it has loaded
    if before_load is not None:
        before_load(asked)
    clf = build_classifier(model=model, task=task, backend=backend, adapter=adapter, chat=chat, scorer=scorer,
                           **options)
    return CalibratedClassifier(clf, bundle=bundle, decision_rule=decision_rule)
