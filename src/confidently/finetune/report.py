"""The base-vs-fine-tuned report: tables, charts and summary from a computed :class:`Comparison`.

Nothing here measures anything; every number comes from :mod:`confidently.workflows.comparison`, and the page
is laid out by :mod:`confidently.report.html` like every other report.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from confidently.workflows.comparison import CERTIFIED, METHODS, MODELS
from confidently.files import atomic_write_json, atomic_write_text
from confidently.report import charts
from confidently.report.charts import ACCENT_COLOUR, MAIN_COLOUR, new_figure, set_labels
from confidently.report.evaluation import automated_text
from confidently.report.html import Section, write_report
from confidently.scoring.checkpointed import write_table
from confidently.workflows.labelled import figures_text

from confidently.workflows.comparison import Comparison

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODEL_COLOURS = {"base": "#9a9a9a", "fine-tuned": MAIN_COLOUR}
#: Rows of the main table: (key in metrics.json, label, key of the paired difference).
METRIC_ROWS = (("accuracy", "accuracy", "accuracy"), ("ece", "ECE (20 equal-width bins)", "ece"),
               ("brier", "Brier (multiclass)", "brier"), ("auroc", "AUROC (confidence vs correct)", "auroc"))


def fmt_interval(value: float | None, low: float | None, high: float | None, digits: int = 4) -> str:
    """``value [low, high]``, or ``–`` when undefined."""
    if value is None:
        return "–"
    if low is None or high is None:
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _metric(result: dict) -> str:
    return fmt_interval(result.get("value"), result.get("ci_low"), result.get("ci_high"))


def _share_difference(result: dict) -> str:
    """A paired difference of shares as percentage points, with its interval when it has one."""
    low, high = result.get("ci_low"), result.get("ci_high")
    interval = "" if low is None or high is None else f" [{low:+.1%}, {high:+.1%}]"
    return f"{result['diff']:+.1%}{interval}"


def _difference(result: dict, digits: int = 4) -> str:
    return fmt_interval(result.get("diff"), result.get("ci_low"), result.get("ci_high"), digits)


def metrics_frame(comparison: Comparison) -> pd.DataFrame:
    """One row per (metric, calibration): base, fine-tuned and the paired difference, each with its 95% CI."""
    rows = []
    for method in comparison.probs["base"]:
        for key, label, diff_key in METRIC_ROWS:
            rows.append({"metric": label, "calibration": method,
                         "base": _metric(comparison.metrics["base"][method]["metrics"][key]),
                         "fine-tuned": _metric(comparison.metrics["fine-tuned"][method]["metrics"][key]),
                         "fine-tuned − base": _difference(comparison.differences[method][diff_key])})
    return pd.DataFrame(rows)


def _rule_label(comparison: Comparison, method: str, rule: str) -> str:
    if rule != CERTIFIED:
        return f"confidence ≥ {rule}"
    thresholds = []
    for model in MODELS:
        t = comparison.decisions[model][method]["rules"][rule]["threshold"]
        thresholds.append("none" if t is None else f"{t:.2f}")
    return f"certified at {comparison.config.target_accuracy:.0%} (base ≥{thresholds[0]}, fine-tuned ≥{thresholds[1]})"


def decisions_frame(comparison: Comparison) -> pd.DataFrame:
    """Per calibration and decision rule: each model's automated share (and accuracy) on the test rows,
    and the paired differences of automated share and cost per ``projection_volume`` items."""
    volume = comparison.config.projection_volume
    rows = []
    for method in comparison.probs["base"]:
        for rule, diffs in comparison.decision_differences[method].items():
            row: dict[str, Any] = {"calibration": method, "rule": _rule_label(comparison, method, rule)}
            for model in MODELS:
                outcome = comparison.decisions[model][method]["rules"][rule]
                accuracy = "–" if outcome["accuracy"] is None else f"{outcome['accuracy']:.3f}"
                row[model] = f"{outcome['coverage']:.1%} ({accuracy})"
            row["automated share, fine-tuned − base"] = _difference(diffs["coverage"], 3)
            row[f"cost per {volume:,}, fine-tuned − base"] = _difference(diffs["cost"], 0)
            rows.append(row)
    return pd.DataFrame(rows)


def cost_rule(comparison: Comparison) -> tuple[str, str]:
    """The (calibration, rule) the cost view details: Platt's certified threshold when calibration rows
    were given, else Platt at the middle fixed threshold."""
    rules = list(comparison.decision_differences["platt"])
    return "platt", CERTIFIED if CERTIFIED in rules else rules[len(rules) // 2]


def cost_frame(comparison: Comparison) -> pd.DataFrame:
    """The cost view of one rule: per ``projection_volume`` items, both models [95% CI] and the paired difference."""
    method, rule = cost_rule(comparison)
    volume = comparison.config.projection_volume
    config = comparison.config
    names = {"coverage": ("automated", "share automated"), "mistakes": ("errors", f"automated mistakes per {volume:,}"),
             "review_hours": ("review_hours", f"review hours per {volume:,} ({config.minutes_per_review:g} min each)"),
             "cost": ("cost", f"cost per {volume:,} ({config.review_cost:g}/review, {config.error_cost:g}/mistake)")}
    rows = []
    for key, (projection_key, label) in names.items():
        row: dict[str, Any] = {"per item volume": label}
        for model in MODELS:
            projected = comparison.decisions[model][method]["rules"][rule]["projection"][projection_key]
            scale = 1.0 / volume if key == "coverage" else 1.0
            digits = 3 if key == "coverage" else 0
            row[model] = fmt_interval(projected["value"] * scale, _scaled(projected["ci_low"], scale),
                                      _scaled(projected["ci_high"], scale), digits)
        row["fine-tuned − base"] = _difference(comparison.decision_differences[method][rule][key],
                                               3 if key == "coverage" else 0)
        rows.append(row)
    return pd.DataFrame(rows)


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def headline_cards(comparison: Comparison) -> dict[str, str]:
    base, tuned = comparison.metrics["base"], comparison.metrics["fine-tuned"]
    diff = comparison.differences
    method, rule = cost_rule(comparison)
    label = (f"certified at {comparison.config.target_accuracy:.0%}" if rule == CERTIFIED else f"at ≥{rule}")
    outcomes = [comparison.decisions[m][method]["rules"][rule] for m in MODELS]
    decision = comparison.decision_differences[method][rule]
    volume = comparison.config.projection_volume
    value = lambda metric: fmt_interval(metric["value"], metric.get("ci_low"), metric.get("ci_high"), 3)  # noqa: E731
    return {
        f"accuracy base → fine-tuned (n={comparison.y.size} test rows)":
            f"{value(base['raw']['metrics']['accuracy'])} → {value(tuned['raw']['metrics']['accuracy'])}",
        "difference [95% CI]": _difference(diff["raw"]["accuracy"], 3),
        f"ECE after Platt ({comparison.config.n_bins} equal-width bins)":
            f"{value(base['platt']['metrics']['ece'])} → {value(tuned['platt']['metrics']['ece'])}",
        f"automated {label} (Platt)": f"{outcomes[0]['coverage']:.1%} → {outcomes[1]['coverage']:.1%} "
                                      f"(Δ {_share_difference(decision['coverage'])})",
        f"cost per {volume:,} (Platt, {label})": f"{outcomes[0]['projection']['cost']['value']:,.0f} → "
                                                  f"{outcomes[1]['projection']['cost']['value']:,.0f} "
                                                  f"(Δ {_difference(decision['cost'], 0)})",
    }


# -- charts ----------------------------------------------------------------------------------------

def metric_bars(comparison: Comparison, keys: tuple[str, ...] = ("accuracy", "ece")) -> Figure:
    """Grouped bars, one panel per metric: base vs fine-tuned for each calibration, with 95% CIs."""
    methods = list(comparison.probs["base"])
    figure = new_figure(5.2 * len(keys), 4.2)
    axes = figure.subplots(1, len(keys), squeeze=False)[0]
    x = np.arange(len(methods))
    for ax, key in zip(axes, keys):
        for offset, model in ((-0.2, "base"), (0.2, "fine-tuned")):
            results = [comparison.metrics[model][m]["metrics"][key] for m in methods]
            ax.bar(x + offset, [r["value"] for r in results], width=0.4, color=MODEL_COLOURS[model], label=model)
            # Each interval contains its value (confidently.metrics); drawn as a line beside the bar.
            ax.vlines(x + offset, [r["ci_low"] for r in results], [r["ci_high"] for r in results], color="black")
        ax.set_xticks(x, labels=methods)
        ax.legend(fontsize=9)
        set_labels(ax, f"{key.upper() if key == 'ece' else key} on the test rows (95% CI)", "calibration", key)
    return figure


def confidence_distribution(comparison: Comparison, method: str = "raw", bins: int = 20) -> Figure:
    """Overlaid histograms of top-label confidence, base vs fine-tuned."""
    edges = np.linspace(0.5, 1.0, bins + 1) if len(comparison.labels) == 2 else np.linspace(0.0, 1.0, bins + 1)
    figure = new_figure(7.0, 4.2)
    ax = figure.add_subplot()
    for model, style in (("base", {"alpha": 0.6}), ("fine-tuned", {"histtype": "step", "linewidth": 2.0})):
        ax.hist(comparison.probs[model][method].max(1), bins=edges, color=MODEL_COLOURS[model], label=model, **style)
    ax.legend(fontsize=9)
    set_labels(ax, f"Confidence ({method}) on {comparison.y.size:,} test rows", "confidence (top-label probability)",
           "predictions")
    return figure


def reliability_panels(comparison: Comparison, model: str) -> Figure:
    """Reliability diagrams of one model side by side: raw, Platt, isotonic."""
    y = comparison.y
    panels = {f"{model}, {method}": (p.max(1), p.argmax(1) == y) for method, p in comparison.probs[model].items()}
    return charts.reliability_diagrams(panels, n_bins=comparison.config.n_bins)


def neutral_chart(table: pd.DataFrame, positive: str) -> Figure:
    """Predicted-positive rate on neutral texts per domain, base vs fine-tuned (the domain shortcut)."""
    figure = new_figure(6.5, 4.0)
    ax = figure.add_subplot()
    x = np.arange(len(table))
    for offset, model in ((-0.2, "base"), (0.2, "fine-tuned")):
        ax.bar(x + offset, table[f"predicted {positive} {model}"], width=0.4, color=MODEL_COLOURS[model], label=model)
    label_column = f"labelled {positive}"
    if label_column in table:
        ax.scatter(x, table[label_column], color=ACCENT_COLOUR, zorder=3, label=f"share labelled {positive}")
    ax.set_xticks(x, labels=[f"{d}\n(n={n})" for d, n in zip(table["domain"], table["n"])])
    ax.set_ylim(0, 1.3)  # headroom for the legend above the bars
    ax.legend(fontsize=9, ncols=3, loc="upper center")
    set_labels(ax, f"Neutral texts predicted {positive}, by domain", "domain", f"share predicted {positive}")
    return figure


# -- sections and summary --------------------------------------------------------------------------

def build_sections(comparison: Comparison) -> list[Section]:
    config = comparison.config
    manifest = comparison.manifest
    how = Section("How this was measured")
    how.add_text(
        f"The base model and the adapter {comparison.adapter.name} (trained on data with sha256 "
        f"{str(manifest.get('training_data_sha256'))[:12]}…) score the same {comparison.y.size} held-out test rows on "
        "one loaded model, the adapter switched on and off. Calibration: "
        f"{comparison.calibration_source}. Intervals are 95% bootstrap intervals (percentile; for ECE the "
        "bias-corrected estimate with its basic interval, since ECE is biased upwards) over "
        f"{config.n_resamples} resamples of the test rows (seed {config.seed}); differences are paired: both "
        "models are measured on the same resampled rows. Calibrators are not refitted inside the bootstrap.")
    if comparison.unseen is not None:
        how.add_text(f"{unseen_text(comparison)}.")
    results = Section("Base vs fine-tuned on the test rows")
    results.add_table(metrics_frame(comparison), "value [95% CI]; difference = fine-tuned − base, paired bootstrap")
    results.add_figure(metric_bars(comparison), "accuracy and ECE by calibration, with 95% intervals")
    results.add_figure(confidence_distribution(comparison), "raw confidence, base vs fine-tuned")
    for model in ("base", "fine-tuned"):
        results.add_figure(reliability_panels(comparison, model),
                           f"{model}: reliability raw / Platt / isotonic ({config.n_bins} equal-width bins)")
    decisions = Section("Automation and cost")
    certified = any(CERTIFIED in d for d in comparison.decision_differences.values())
    decisions.add_text(
        ("Each model's certified threshold is chosen on its calibration-row scores (Learn-Then-Test, "
         f"{config.target_accuracy:.0%} accuracy at {config.level:.0%} confidence; Platt and isotonic cross-fitted "
         "there) and then applied to the test rows; " if certified else
         "No calibration rows were given, so no threshold can be certified without choosing it on the test rows; "
         "only ") +
        f"fixed confidence thresholds ({', '.join(f'{t:.2f}' for t in config.automation_thresholds)}) are compared "
        "as well. No threshold is chosen on the test rows. Differences are paired bootstraps over the test rows with "
        "the thresholds held fixed.")
    decisions.add_table(decisions_frame(comparison),
                        "automated share on the test rows (accuracy of the automated) and paired differences [95% CI]")
    method, rule = cost_rule(comparison)
    decisions.add_table(cost_frame(comparison),
                        f"cost view, {method}, {_rule_label(comparison, method, rule)}: per "
                        f"{config.projection_volume:,} items like the test rows [95% CI]")
    shipped = comparison.shipped
    rule = ("automate when the prediction set holds only the answer"
            if shipped["decision_rule"] == "prediction_set" else f"threshold {shipped['policy']['threshold']}")
    decisions.add_text(
        f"The adapter's own calibrator and decision rule (fitted on its calibration split; {rule}): ECE "
        f"{_metric(shipped['metrics']['ece'])}; the rule automates {automated_text({**shipped, 'n': comparison.y.size})}"
        f" test rows. Guarantee: {shipped['guarantee']}.")
    sections = [how, results, decisions]
    slices = Section("Slices: category and domain")
    if len(comparison.slices):
        slices.add_table(comparison.slices, "accuracy (raw, Platt) and predicted-label rates (Platt) per slice")
    if comparison.neutral_by_domain is not None:
        positive = comparison.labels[-1]
        slices.add_text(
            "Neutral texts carry no sentiment; in the generated set their label follows the domain (sports "
            "labelled positive, workplace negative). A model that learned that shortcut predicts positive "
            "for neutral sports text and negative for neutral workplace text regardless of content.")
        slices.add_table(comparison.neutral_by_domain, f"neutral texts: share predicted {positive}, by domain")
        slices.add_figure(neutral_chart(comparison.neutral_by_domain, positive), "the domain shortcut on neutral texts")
    if slices.blocks:
        sections.append(slices)
    return sections


def how_lines(comparison: Comparison) -> list[str]:
    """How the figures were computed: where the calibrators were fitted, and what the intervals are; and, when
    some test rows have texts the adapter saw, the figures again on the rows it never saw."""
    lines = [f"calibration: {comparison.calibration_source}",
             f"intervals: 95% paired bootstrap (percentile; ECE bias-corrected), {comparison.config.n_resamples} "
             "resamples"]
    return lines + ([] if comparison.unseen is None else [unseen_text(comparison)])


def unseen_text(comparison: Comparison) -> str:
    """The figures ``score`` gives (:func:`~confidently.workflows.labelled.figures_text`), per model, on the test
    rows whose texts the adapter bundle never saw (``comparison.unseen`` is not None)."""
    seen, rows = comparison.seen_by_adapter, comparison.unseen["base"]["rows"]
    head = f"{seen['n_rows']} of {comparison.y.size} test rows have texts the adapter saw"
    if not rows:
        return f"{head}: every one, so there are no out-of-sample figures"
    figures = "; ".join(f"{model} {figures_text(comparison.unseen[model])}" for model in MODELS)
    return f"{head}; on the {rows} rows it never saw: {figures}"


def summary_markdown(comparison: Comparison, title: str) -> str:
    """summary.md: the main table, the decisions table, the slices and the neutral-by-domain rates."""
    lines = [f"# {title}", "", f"- adapter: {comparison.adapter}", f"- test rows: {comparison.y.size}",
             *(f"- {line}" for line in how_lines(comparison)), ""]
    slices = comparison.slices if len(comparison.slices) else None
    for frame in (metrics_frame(comparison), decisions_frame(comparison), cost_frame(comparison), slices,
                  comparison.neutral_by_domain):
        if frame is None:
            continue
        lines.append("| " + " | ".join(map(str, frame.columns)) + " |")
        lines.append("|---" * len(frame.columns) + "|")
        lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False))
        lines.append("")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_comparison(comparison: Comparison, out: str | Path, *,
                     title: str = "confidently: base vs fine-tuned") -> dict[str, Path]:
    """Write report.html, metrics.json, summary.md and scores.parquet into ``out``."""
    out = Path(out)
    paths = {"report": out / "report.html", "metrics": out / "metrics.json", "summary": out / "summary.md",
             "scores": out / "scores.parquet"}
    atomic_write_json(paths["metrics"], comparison.to_dict())
    atomic_write_text(paths["summary"], summary_markdown(comparison, title))
    write_table(_score_frame(comparison), paths["scores"])
    write_report(paths["report"], title, build_sections(comparison), headline=headline_cards(comparison),
                 metadata=comparison.metadata)
    return paths


def _score_frame(comparison: Comparison) -> pd.DataFrame:
    frame = comparison.test.to_frame()
    for model in MODELS:
        for method in METHODS:
            for j, label in enumerate(comparison.labels):
                frame[f"{model} {method} p_{label}"] = comparison.probs[model][method][:, j]
    return frame
