"""The base-vs-fine-tuned report: tables, charts and summary from a computed :class:`Comparison`.

Nothing here measures anything; every number comes from :mod:`confidently.comparison`, and the page
is laid out by :mod:`confidently.report.html` like every other report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from confidently.report import charts
from confidently.report.charts import ACCENT_COLOUR, MAIN_COLOUR, _figure, _label
from confidently.report.html import Section

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from confidently.comparison import Comparison

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


def decisions_frame(comparison: Comparison) -> pd.DataFrame:
    """Certified coverage and automated counts per calibration, both models and the paired difference."""
    config = comparison.config
    rows = []
    for method in comparison.probs["base"]:
        diffs = comparison.differences[method]
        cert_key = f"certified_coverage_{config.target_accuracy:.0%}"
        row: dict[str, Any] = {"calibration": method, "what": f"certified coverage at {config.target_accuracy:.0%}"}
        for model in ("base", "fine-tuned"):
            cert = comparison.decisions[model][method]["certified"]
            where = f" (≥{cert['threshold']:.2f})" if cert["threshold"] is not None else " (none certified)"
            row[model] = f"{cert['coverage']:.4f}{where}"
        row["fine-tuned − base"] = _difference(diffs[cert_key])
        rows.append(row)
        for t in config.automation_thresholds:
            row = {"calibration": method, "what": f"automated at confidence ≥ {t:.2f} (count; accuracy)"}
            for model in ("base", "fine-tuned"):
                auto = comparison.decisions[model][method]["automation"][f"{t:.2f}"]
                accuracy = "–" if auto["accuracy"] is None else f"{auto['accuracy']:.3f}"
                row[model] = f"{auto['n_automated']} ({accuracy})"
            row["fine-tuned − base"] = _difference(diffs[f"automated_at_{t:.2f}"], digits=1)
            rows.append(row)
    return pd.DataFrame(rows)


def headline_cards(comparison: Comparison) -> dict[str, str]:
    base, tuned = comparison.metrics["base"], comparison.metrics["fine-tuned"]
    diff = comparison.differences
    cert_key = f"certified_coverage_{comparison.config.target_accuracy:.0%}"
    return {
        "accuracy base → fine-tuned": f"{base['raw']['metrics']['accuracy']['value']:.3f} → "
                                      f"{tuned['raw']['metrics']['accuracy']['value']:.3f}",
        "difference [95% CI]": _difference(diff["raw"]["accuracy"], 3),
        "ECE after Platt": f"{base['platt']['metrics']['ece']['value']:.3f} → "
                           f"{tuned['platt']['metrics']['ece']['value']:.3f}",
        f"certified coverage at {comparison.config.target_accuracy:.0%} (Platt)":
            f"{comparison.decisions['base']['platt']['certified']['coverage']:.1%} → "
            f"{comparison.decisions['fine-tuned']['platt']['certified']['coverage']:.1%} "
            f"(Δ {diff['platt'][cert_key]['diff']:+.1%})",
    }


# -- charts ----------------------------------------------------------------------------------------

def metric_bars(comparison: Comparison, keys: tuple[str, ...] = ("accuracy", "ece")) -> Figure:
    """Grouped bars, one panel per metric: base vs fine-tuned for each calibration, with 95% CIs."""
    methods = list(comparison.probs["base"])
    figure = _figure(5.2 * len(keys), 4.2)
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
        _label(ax, f"{key.upper() if key == 'ece' else key} on the test rows (95% CI)", "calibration", key)
    return figure


def confidence_distribution(comparison: Comparison, method: str = "raw", bins: int = 20) -> Figure:
    """Overlaid histograms of top-label confidence, base vs fine-tuned."""
    edges = np.linspace(0.5, 1.0, bins + 1) if len(comparison.labels) == 2 else np.linspace(0.0, 1.0, bins + 1)
    figure = _figure(7.0, 4.2)
    ax = figure.add_subplot()
    for model, style in (("base", {"alpha": 0.6}), ("fine-tuned", {"histtype": "step", "linewidth": 2.0})):
        ax.hist(comparison.probs[model][method].max(1), bins=edges, color=MODEL_COLOURS[model], label=model, **style)
    ax.legend(fontsize=9)
    _label(ax, f"Confidence ({method}) on {comparison.y.size:,} test rows", "confidence (top-label probability)",
           "predictions")
    return figure


def reliability_panels(comparison: Comparison, model: str) -> Figure:
    """Reliability diagrams of one model side by side: raw, Platt, isotonic."""
    y = comparison.y
    panels = {f"{model}, {method}": (p.max(1), p.argmax(1) == y) for method, p in comparison.probs[model].items()}
    return charts.reliability_diagrams(panels, n_bins=comparison.config.n_bins)


def neutral_chart(table: pd.DataFrame, positive: str) -> Figure:
    """Predicted-positive rate on neutral texts per domain, base vs fine-tuned (the domain shortcut)."""
    figure = _figure(6.5, 4.0)
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
    _label(ax, f"Neutral texts predicted {positive}, by domain", "domain", f"share predicted {positive}")
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
    results = Section("Base vs fine-tuned on the test rows")
    results.add_table(metrics_frame(comparison), "value [95% CI]; difference = fine-tuned − base, paired bootstrap")
    results.add_figure(metric_bars(comparison), "accuracy and ECE by calibration, with 95% intervals")
    results.add_figure(confidence_distribution(comparison), "raw confidence, base vs fine-tuned")
    for model in ("base", "fine-tuned"):
        results.add_figure(reliability_panels(comparison, model),
                           f"{model}: reliability raw / Platt / isotonic ({config.n_bins} equal-width bins)")
    decisions = Section("Automation")
    decisions.add_text(
        f"Certified coverage: the share of test predictions automated at the lowest threshold whose one-sided "
        f"{config.level:.0%} Clopper–Pearson lower bound on their accuracy reaches {config.target_accuracy:.0%} "
        "(measured on the test rows themselves, to compare the two models; a deployed threshold is chosen on "
        "calibration data). Automated counts: test predictions with calibrated confidence at or above each threshold.")
    decisions.add_table(decisions_frame(comparison), "both models and the paired difference [95% CI]")
    shipped = comparison.shipped
    accuracy = "–" if shipped["accuracy_automated"] is None else f"{shipped['accuracy_automated']:.1%}"
    decisions.add_text(
        f"The adapter's own calibrator.json and policy.json (fitted on its calibration split, threshold "
        f"{shipped['policy']['threshold']}): ECE {_metric(shipped['metrics']['ece'])}; the policy automates "
        f"{shipped['n_automated']} of {comparison.y.size} test rows ({shipped['coverage']:.1%}) at {accuracy} "
        "accuracy.")
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


def summary_markdown(comparison: Comparison, title: str) -> str:
    """summary.md: the main table, the decisions table, the slices and the neutral-by-domain rates."""
    lines = [f"# {title}", "", f"- adapter: {comparison.adapter}", f"- test rows: {comparison.y.size}",
             f"- calibration: {comparison.calibration_source}",
             f"- intervals: 95% paired bootstrap (percentile; ECE bias-corrected), "
             f"{comparison.config.n_resamples} resamples", ""]
    slices = comparison.slices if len(comparison.slices) else None
    for frame in (metrics_frame(comparison), decisions_frame(comparison), slices, comparison.neutral_by_domain):
        if frame is None:
            continue
        lines.append("| " + " | ".join(map(str, frame.columns)) + " |")
        lines.append("|---" * len(frame.columns) + "|")
        lines.extend("| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False))
        lines.append("")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
