"""Commands that read a model's next-token distribution: next-token, classify, score, models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from confidently.cli.app import app, console, err_console
from confidently.cli.options import (DEFAULTS, AdapterModelOpt, AdapterOpt, ApiKeyOpt, BackendOpt, BaseUrlOpt, BatchOpt,
                                     CalibrationOpt, DecisionRuleOpt, DeviceOpt, DtypeOpt, JsonOpt, MaxTextCharsOpt, MaxTextTokensOpt,
                                     ModelOpt, TaskOpt, TokenizerOpt, build_calibrated,
                                     build_classifier, check_url)


def visible(token: str) -> str:
    """A token quoted with its whitespace made visible (the original write-up's table style), for the console:
    a token such as ``[/INST]`` is shown, never read as Rich markup."""
    return escape(json.dumps(token, ensure_ascii=False).replace(" ", "␣"))


#: Characters of a text or prompt the console echoes before the answer; the rest is counted, not shown.
ECHO_CHARS = 300


def echo(text: str) -> str:
    """A text or prompt as the console echoes it: quoted, cut after :data:`ECHO_CHARS` characters so a long
    document does not push the answer off the screen, and escaped, since text is data and never Rich markup
    (``[/x]`` raised an error; ``[red]`` vanished from the echo)."""
    if len(text) <= ECHO_CHARS:
        return escape(repr(text))
    return escape(repr(text[:ECHO_CHARS])) + f" … ({len(text):,} characters)"


def output_format(path: Path) -> Path:
    """--out's check, so a wrong suffix is a usage error found before the model loads."""
    from confidently.errors import ConfigError
    from confidently.scoring.checkpointed import check_output_format

    try:
        check_output_format(path)
    except ConfigError as error:
        raise typer.BadParameter(str(error)) from None
    return path


@app.command("next-token")
def next_token(
    prompt: Annotated[str, typer.Argument(help="The prompt whose next token is predicted.")],
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="How many tokens to list.")] = 12,
    raw: Annotated[bool, typer.Option("--raw", help="Send the prompt as-is, without the chat template.")] = False,
    model: ModelOpt = DEFAULTS["model"],
    backend: BackendOpt = DEFAULTS["backend"],
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = None,
    adapter: AdapterModelOpt = None,
    as_json: JsonOpt = False,
    max_text_chars: MaxTextCharsOpt = None,
) -> None:
    """Show the model's next-token table for a prompt: rank, token, log-prob, probability.

    Example: `confidently next-token "Knock knock." --top-k 12`
    """
    clf = build_classifier(model=model, task="sentiment", backend=backend, device=device, dtype=dtype,
                           base_url=base_url, api_key=api_key, tokenizer=tokenizer, adapter=adapter, quiet=as_json,
                           max_text_chars=max_text_chars)
    tokens = clf.next_token(prompt, top_k=top_k, raw=raw)
    if as_json:
        console.print_json(json.dumps([t.to_dict() for t in tokens]))
        return
    print_next_token(tokens, prompt, model + (", raw" if raw else ""))


def print_next_token(tokens, prompt: str, model: str) -> None:
    """The original write-up's table: rank, quoted token, log-prob, probability, percent."""
    table = Table(title=f"next token after {echo(prompt)} ({model})")
    for column, justify in (("rank", "right"), ("token", "left"), ("log-prob", "right"),
                            ("probability", "right"), ("percent", "right")):
        table.add_column(column, justify=justify)
    for t in tokens:
        table.add_row(str(t.rank), visible(t.token), f"{t.logprob:.4f}", f"{t.prob:.6f}", f"{100 * t.prob:.2f}%")
    console.print(table)
    console.print(f"top {len(tokens)} tokens hold {100 * sum(t.prob for t in tokens):.2f}% of the probability")


@app.command()
def classify(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(help="The text to classify.")],
    calibration: CalibrationOpt = None,
    model: ModelOpt = DEFAULTS["model"],
    task: TaskOpt = DEFAULTS["task"],
    backend: BackendOpt = DEFAULTS["backend"],
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = None,
    adapter: AdapterOpt = None,
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=0, help="Top tokens to show.")] = 10,
    as_json: JsonOpt = False,
    max_text_tokens: MaxTextTokensOpt = None,
    max_text_chars: MaxTextCharsOpt = None,
    server: Annotated[Optional[str], typer.Option(
        "--server", help="URL of a `confidently serve` server to ask instead of loading a model; "
                         "--adapter then names an adapter loaded there.")] = None,
    decision_rule: DecisionRuleOpt = None,
    group: Annotated[Optional[str], typer.Option(
        "--group", help="The text's value of the column the bundle's prediction sets are fitted per "
                        "(evaluate --conformal-by), e.g. its domain.")] = None,
) -> None:
    """Classify one text: the answer and its decision, each class's raw share, mass and token variants.

    With --calibration DIR (a `confidently evaluate` run folder) or --adapter DIR (a `confidently
    finetune` folder, which carries its own calibration) the confidence is calibrated, the bundle's
    conformal prediction set is shown, and the bundle's rule (its policy's threshold, or
    --decision-rule prediction_set) decides automate or review. Without either, the confidence is the predicted label's share of
    the label mass and is shown as uncalibrated.

    Example: `confidently classify "I love this movie!" --calibration runs/demo`
    """
    if server is not None:
        check_url(server, "--server", "http://127.0.0.1:8000")
        if decision_rule is not None or group is not None:
            raise typer.BadParameter("with --server the server's bundle decides; --decision-rule and --group "
                                     "apply to a local model", param_hint="--server")
        classify_on_server(server, text, adapter=adapter.name if adapter else None, top_k=top_k, as_json=as_json)
        return
    calibrated = build_calibrated(ctx, model=model, task=task, backend=backend, calibration=calibration,
                                  adapter=adapter, device=device, dtype=dtype, base_url=base_url, api_key=api_key, tokenizer=tokenizer,
                                  quiet=as_json, max_text_tokens=max_text_tokens, max_text_chars=max_text_chars,
                                  decision_rule=decision_rule)
    result = calibrated.classify(text, top_k=top_k, group=group)
    if as_json:
        console.print_json(json.dumps(result.to_dict()))
        return
    print_classification(calibrated.labels, result, sets_note=calibrated.sets_note)


def rule_text(decided_by: str | None, threshold: float | None) -> str:
    """The decision rule in a few words: the threshold it applies, or the prediction-set rule."""
    if decided_by == "prediction_set":
        return "automate when the prediction set holds only the answer"
    return "no threshold: everything is reviewed" if threshold is None else f"automate at confidence >= {threshold:.2f}"


def classify_on_server(server: str, text: str, *, adapter: str | None, top_k: int, as_json: bool) -> None:
    """``confidently classify --server URL``: print the server's answer for one text."""
    from confidently.client import Client

    with Client(server) as client:
        reply = client.classify([text], adapter=adapter, top_tokens=top_k)
    if as_json:
        console.print_json(reply.model_dump_json())
        return
    result = reply.results[0]
    console.print(f"[bold]{echo(text)}[/] →")
    console.print(answer_line(result.label, result.confidence, result.calibrated, result.decision, reply.threshold,
                              reply.guarantee, decided_by=reply.decision_rule))
    if result.calibrated or result.prediction_set is not None:
        console.print(set_line(result.prediction_set, reply.set_guarantee, "no prediction set: the server's bundle "
                               "carries none, or its sets need a group value"))
    if result.truncated:
        console.print("[yellow]text truncated to fit the model's context"
                      + (": sent to review, its confidence is about part of it" if result.decision else "") + "[/]")
    if result.calibrated:
        console.print(f"raw: {result.raw_label} {result.raw_confidence:.4f} (share of label mass, uncalibrated)")
    table = Table(title=f"{reply.model}" + (f" + {reply.adapter}" if reply.adapter else ""))
    for column in ("label", "raw share", "calibrated"):
        table.add_column(column)
    for label in reply.labels:
        cal = "" if result.calibrated_probs is None else f"{result.calibrated_probs[label]:.4f}"
        table.add_row(label, f"{result.raw_probs[label]:.4f}", cal)
    table.add_row("(other mass)", f"{result.other_mass:.6f}", "")
    console.print(table)
    if result.top_tokens:
        console.print("top tokens: " + ", ".join(f"{visible(t.token)} {t.prob:.4f}" for t in result.top_tokens))


def answer_line(label: str, confidence: float, calibrated: bool, decision: str | None, threshold: float | None,
                guarantee: str | None, *, decided_by: str | None = "threshold") -> str:
    """The answer every command prints: label, confidence (saying whether it is calibrated), the decision
    with the rule it came from (the threshold, or the prediction set), and what that rule guarantees."""
    kind = "calibrated" if calibrated else "uncalibrated: share of label mass"
    line = f"[bold]{escape(label)}[/]  confidence {confidence:.4f} ({kind})"
    if decision is not None:
        line += (f"  decision: [bold]{decision}[/] ({rule_text(decided_by, threshold)})"
                 + (f"\n[dim]guarantee: {guarantee}[/]" if guarantee else ""))
    elif not calibrated:
        line += "  [dim]no calibration: pass --calibration DIR (a `confidently evaluate` run folder)[/]"
    return line


def set_line(prediction_set: list[str] | None, set_guarantee: str | None, note: str | None) -> str:
    """The prediction set and what it promises, or why there is none (never an invented set)."""
    if prediction_set is None:
        return f"[dim]{note or 'no prediction set'}[/]"
    return "prediction set: {" + ", ".join(prediction_set) + "}" + (f"\n[dim]set guarantee: {set_guarantee}[/]"
                                                                    if set_guarantee else "")


def print_classification(labels, result, *, sets_note: str | None = None) -> None:
    """The answer and decision, its prediction set, the raw answer beside it, class masses with their top
    variants, top tokens (``sets_note``: why there is no prediction set, when there is none)."""
    console.print(f"[bold]{echo(result.text)}[/] →")
    console.print(answer_line(result.label, result.confidence, result.calibrated, result.decision, result.threshold,
                              result.guarantee, decided_by=result.decided_by))
    if result.calibrated or result.prediction_set is not None or sets_note:
        console.print(set_line(result.prediction_set, result.set_guarantee, sets_note))
    if result.truncated:
        console.print("[yellow]text truncated to fit the model's context"
                      + (": sent to review, its confidence is about part of it" if result.decision else "") + "[/]")
    if result.calibrated:
        console.print(f"raw answer: {result.raw_label} {result.raw_confidence:.4f} (share of label mass, uncalibrated)")
    table = Table(title="class mass")
    columns = ("label", "raw share", *(("calibrated",) if result.calibrated else ()), "mass", "top variants")
    for column in columns:
        table.add_column(column)
    for label in labels:
        variants = ", ".join(f"{visible(v.token)} {v.prob:.4f}" for v in result.variants.get(label, [])[:4])
        calibrated = (f"{result.calibrated_probs[label]:.4f}",) if result.calibrated else ()
        table.add_row(label, f"{result.raw_probs[label]:.4f}", *calibrated, f"{result.mass[label]:.6f}", variants)
    table.add_row("(other)", "", *(("",) if result.calibrated else ()), f"{result.other_mass:.6f}",
                  "tokens that mean no label")
    console.print(table)
    if result.uncovered_mass is not None:
        console.print(f"mass the server did not return (top-k cut-off): {result.uncovered_mass:.4f}")
        if result.label_may_be_hidden:
            console.print("[yellow]a label may be hidden below the cut-off: the prediction could change[/]")
    if result.top_tokens:
        console.print("top tokens: " + ", ".join(f"{visible(t.token)} {t.prob:.4f}" for t in result.top_tokens))


@app.command()
def score(
    ctx: typer.Context,
    input: Annotated[Path, typer.Argument(help="JSONL, CSV/TSV or Parquet with a text column.", exists=True)],
    out: Annotated[Path, typer.Option("--out", "-o", callback=output_format,
                                      help="Output .parquet, .csv, .tsv or .jsonl.")],
    calibration: CalibrationOpt = None,
    text_column: Annotated[str, typer.Option(help="Column holding the text.")] = "text",
    label_column: Annotated[str, typer.Option(help="Column holding the label (optional).")] = "label",
    model: ModelOpt = DEFAULTS["model"],
    task: TaskOpt = DEFAULTS["task"],
    backend: BackendOpt = DEFAULTS["backend"],
    device: DeviceOpt = None,
    dtype: DtypeOpt = None,
    batch_size: BatchOpt = DEFAULTS["batch_size"],
    base_url: BaseUrlOpt = None,
    api_key: ApiKeyOpt = None,
    tokenizer: TokenizerOpt = None,
    adapter: AdapterOpt = None,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Save finished rows every N rows.")] = 256,
    resume: Annotated[bool, typer.Option("--resume", help="Continue a killed run from its checkpoint.")] = False,
    max_text_tokens: MaxTextTokensOpt = None,
    max_text_chars: MaxTextCharsOpt = None,
    decision_rule: DecisionRuleOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score every row of a file: raw class probabilities and prediction, and calibrated ones with a bundle.

    The file's own columns come first, names and values as they were (the text and label columns too);
    the model's columns follow.
    Raw columns: `raw_p_<label>`, `mass_<label>`, other_mass, raw_prediction, raw_confidence, truncated.
    With --calibration DIR (or --adapter DIR) also `calibrated_p_<label>`, calibrated_prediction,
    calibrated_confidence, prediction_set (the labels the conformal set keeps; a JSON array in CSV/TSV),
    prediction_set_size, decision (automate/review, by the bundle's rule or --decision-rule) and review_reason
    (truncated, below_threshold, no_threshold or set_not_single; empty when automated): a truncated text is
    always reviewed. Finished rows are checkpointed to OUT.partial/ so a killed run loses nothing: rerun with
    --resume. A run holds OUT.lock while it works: a second run for the same --out stops at once, naming it.
    With labels the summary gives accuracy with n and exact intervals; rows whose text the bundle was fitted
    on or saw (calibration, shots, training: its seen_texts.json) are counted with a warning, and the figures
    are given on the unseen rows too. --json prints the summary as JSON.

    Example: `confidently score reviews.jsonl --out scores.parquet --calibration runs/demo`
    """
    from confidently.data import load_dataset
    from confidently.output_lock import hold_output
    from confidently.workflows.labelled import figure_text, labelled_figures
    from confidently.workflows.score_file import check_unfinished, score_file

    rows = []

    def read_input(task) -> None:  # before the model loads: a wrong column, a bad row or a left-over run costs no load
        rows.append(load_dataset(input, text_column=text_column, label_column=label_column, labels=task.label_names))
        check_unfinished(out, resume)

    with hold_output(out):  # before the model loads: a second run for the same --out fails at once
        calibrated = build_calibrated(ctx, model=model, task=task, backend=backend, calibration=calibration,
                                      adapter=adapter, device=device, dtype=dtype, batch_size=batch_size,
                                      base_url=base_url, api_key=api_key, tokenizer=tokenizer,
                                      max_text_tokens=max_text_tokens, max_text_chars=max_text_chars,
                                      decision_rule=decision_rule, before_load=read_input, quiet=as_json)
        frame = score_file(calibrated, input, out, text_column=text_column, label_column=label_column,
                           checkpoint_every=checkpoint_every, resume=resume, dataset=rows[0], progress=not as_json)
    dataset = rows[0]
    truth = None if dataset.labels is None or not len(frame) else list(dataset.labels)  # the task's names for them
    figures = {} if truth is None else labelled_figures(frame, truth)
    summary = f"wrote {len(frame)} rows to {out}"
    if "raw_accuracy" in figures:
        summary += f"; raw accuracy {figure_text(figures['raw_accuracy'])} (uncalibrated)"
    if "calibrated_accuracy" in figures:
        summary += f", calibrated accuracy {figure_text(figures['calibrated_accuracy'])}"
    if "prediction_set" in frame and len(frame):
        summary += f"; mean prediction-set size {frame['prediction_set_size'].mean():.2f}"
        if "set_coverage" in figures:
            summary += f", {figure_text(figures['set_coverage'])} of sets hold the label"
    elif calibrated.calibrated and calibrated.sets_note:
        summary += f"; {calibrated.sets_note}"
    if "decision" in frame and len(frame):
        automated = int((frame["decision"] == "automate").sum())
        rule = calibrated.rule
        summary += (f"; {automated} of {len(frame)} automated ({rule_text(rule.decided_by, rule.threshold)}); "
                    f"guarantee: {rule.guarantee}")
        if cut := int((frame["review_reason"] == "truncated").sum()):
            summary += (f"; {cut} truncated text{'s' if cut > 1 else ''} sent to review (review_reason "
                        "'truncated': raise --max-text-tokens to score such texts whole)")
    elif not calibrated.calibrated:
        summary += "; no calibration bundle: columns are raw (uncalibrated)"
    record = {"rows": len(frame), "out": str(out), **figures}
    if figures and calibrated.bundle is not None:
        seen_text, record["seen_by_bundle"], record["unseen"] = seen_rows(calibrated.bundle, dataset.texts, frame,
                                                                          truth)
        summary += seen_text
    if as_json:
        console.print_json(json.dumps(record))
    else:
        console.print(summary)


def seen_rows(bundle, texts, frame, truth) -> tuple[str, dict | str, dict | None]:
    """The labelled rows whose text ``bundle`` was fitted on or saw (:mod:`confidently.bundle.seen`): the
    summary's words for them, the JSON record of them, and the figures on the rows it never saw (None when
    it saw none, or does not record what it saw). Warns on stderr when it saw any."""
    from confidently.bundle.seen import SEEN_FILE
    from confidently.workflows.labelled import SeenRows, figures_text

    seen = SeenRows.of(bundle, texts)
    if seen.record is None:
        return (f"; the bundle does not record which texts it saw (no {SEEN_FILE}: written by an older "
                "confidently)", seen.to_dict(), None)
    if not seen.n_seen:
        return "", seen.to_dict(), None
    err_console.print(escape(seen.overlap.warning(bundle.folder, "figures over all rows are partly in-sample")),
                      style="yellow", soft_wrap=True)
    unseen = seen.unseen_figures(frame, truth)
    if not seen.n_unseen:
        return "; every row was seen by the bundle: no out-of-sample figures", seen.to_dict(), unseen
    return f"; on the {seen.n_unseen} rows the bundle never saw: {figures_text(unseen)}", seen.to_dict(), unseen


@app.command()
def models() -> None:
    """List the models that work offline, and whether each is installed.

    Example: `confidently models`
    """
    import importlib.util

    from confidently.models.registry import DEFAULT_MODEL, REGISTRY

    table = Table(title="registry models (any local folder, .gguf file or hub id works too)")
    # The name is what users type: never cut to an ellipsis (a pipe or a narrow terminal gives 80 columns).
    table.add_column("name", min_width=max(len(name) for name in REGISTRY))
    table.add_column("installed")
    table.add_column("description")
    missing = []
    for spec in REGISTRY.values():
        installed = all(importlib.util.find_spec(p.replace("-", "_")) is not None for p in spec.packages)
        name = spec.name + (" (default)" if spec.name == DEFAULT_MODEL else "")
        table.add_row(name, "yes" if installed else "no", spec.description)
        missing += [] if installed else [spec]
    console.print(table)
    # Install commands as whole lines (soft wrap: the terminal folds them, nothing is cropped), to copy as they are.
    for spec in missing:
        console.print(f"to install {spec.name}: {spec.install_hint}", soft_wrap=True, highlight=False)
    err_console.print("[dim]weights are verified by sha256 on first use and cached de-quantized[/]")
