"""Charts for reports: each function draws already-computed numbers and returns a matplotlib Figure.

The numbers come from :mod:`confidently.metrics` and :mod:`confidently.decision.thresholds`; nothing here
computes a metric of its own. Figures are built with the object API on an Agg canvas (no pyplot, no
global state), so charts can be drawn from server threads and are freed like any other object.
matplotlib is imported inside the functions, so importing this module costs nothing.

:func:`save_png` writes a figure atomically and :func:`fig_to_base64_png` embeds one in HTML.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from confidently.calibration.validation import check_confidence
from confidently.errors import DataError
from confidently.files import atomic_path
from confidently.metrics import ReliabilityBins, classwise_reliability, reliability_bins
from confidently.decision.thresholds import ThresholdMeasurement

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

TITLE_SIZE = 13
LABEL_SIZE = 11
TICK_SIZE = 10
RAW_COLOUR = "#9a9a9a"
MAIN_COLOUR = "#1f5fa8"
ACCENT_COLOUR = "#d2572b"
STRIPE_COLOUR = "#f0f0f0"


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def set_labels(ax: Axes, title: str, xlabel: str, ylabel: str) -> None:
    ax.set_title(title, fontsize=TITLE_SIZE)
    ax.set_xlabel(xlabel, fontsize=LABEL_SIZE)
    ax.set_ylabel(ylabel, fontsize=LABEL_SIZE)
    ax.tick_params(labelsize=TICK_SIZE)


def confidence_histogram(
    confidence: ArrayLike,
    *,
    calibrated: ArrayLike | None = None,
    bins: int = 20,
    title: str | None = None,
) -> Figure:
    """Histogram of top-label confidence, optionally with the calibrated confidence overlaid.

    Parameters
    ----------
    confidence : array-like of shape (n_samples,)
        Raw confidence (or the only one to show).
    calibrated : array-like of shape (n_samples,), optional
        Calibrated confidence of the same predictions, drawn over the raw one.
    bins : int, default=20
        Equal-width bins on [0, 1].
    """
    raw = check_confidence(confidence)
    edges = np.linspace(0.0, 1.0, bins + 1)
    figure = new_figure(7.0, 4.2)
    ax = figure.add_subplot()
    if calibrated is None:
        ax.hist(raw, bins=edges, color=MAIN_COLOUR, edgecolor="white")
    else:
        ax.hist(raw, bins=edges, color=RAW_COLOUR, alpha=0.6, edgecolor="white", label="raw")
        ax.hist(check_confidence(calibrated, name="calibrated"), bins=edges, histtype="step", linewidth=2.0,
                color=MAIN_COLOUR, label="calibrated")
        ax.legend(fontsize=TICK_SIZE)
    ax.set_xlim(0.0, 1.0)
    set_labels(ax, title or f"Confidence of {raw.size:,} predictions ({bins} equal-width bins)",
           "confidence (top-label probability)", "predictions")
    return figure


def _draw_reliability(ax: Axes, table: ReliabilityBins, title: str, xlabel: str = "mean confidence in bin",
                      ylabel: str = "accuracy in bin") -> None:
    """Stripes per bin, the diagonal, and one dot per non-empty bin (area ∝ count, count printed)."""
    filled = table.count > 0
    if table.scheme == "equal_width":
        for b in range(0, table.n_bins, 2):
            ax.axvspan(table.lower[b], table.upper[b], color=STRIPE_COLOUR, zorder=0, linewidth=0)
    ax.plot([0, 1], [0, 1], linestyle="--", color=RAW_COLOUR, linewidth=1.2, label="perfect calibration", zorder=1)
    share = table.count[filled] / max(table.n, 1)
    ax.scatter(table.mean_confidence[filled], table.accuracy[filled], s=20 + 1500 * share,
               color=MAIN_COLOUR, alpha=0.75, edgecolor="white", zorder=3, label="bin (area ∝ count)")
    for x, y, count in zip(table.mean_confidence[filled], table.accuracy[filled], table.count[filled]):
        ax.annotate(f"{count}", (x, y), xytext=(6, -3), textcoords="offset points", fontsize=8, zorder=4)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8)
    set_labels(ax, title, xlabel, ylabel)


def _reliability_title(name: str | None, table: ReliabilityBins) -> str:
    head = f"{name}: " if name else "Reliability, "
    scheme = table.scheme.replace("_", "-")
    # The bins' own ECE, before the bootstrap bias correction that the metric tables report.
    return f"{head}n={table.n:,}, {table.n_bins} {scheme} bins\nsample ECE={table.ece:.3f}"


def reliability_diagram(
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    n_bins: int = 20,
    scheme: str = "equal_width",
    title: str | None = None,
) -> Figure:
    """Reliability diagram: accuracy against mean confidence per bin.

    Equal-width bins (default 20, the 5% stripes shaded alternately), the diagonal of perfect
    calibration, and one dot per non-empty bin whose area is proportional to its count, with the
    count printed beside it. The title gives n, the binning and the ECE of those bins.
    """
    table = reliability_bins(confidence, correct, n_bins, scheme)
    figure = new_figure(6.0, 6.2)
    _draw_reliability(figure.add_subplot(), table, title or _reliability_title(None, table))
    return figure


def reliability_diagrams(
    panels: Mapping[str, tuple[ArrayLike, ArrayLike]],
    *,
    n_bins: int = 20,
    scheme: str = "equal_width",
) -> Figure:
    """Reliability diagrams side by side, one per ``name: (confidence, correct)`` (raw first, then
    each calibrator), on the same axes scale."""
    if not panels:
        raise DataError("reliability_diagrams needs at least one panel")
    figure = new_figure(4.6 * len(panels), 5.0)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (name, (confidence, correct)) in zip(axes, panels.items()):
        table = reliability_bins(confidence, correct, n_bins, scheme)
        _draw_reliability(ax, table, _reliability_title(name, table))
    return figure


def classwise_reliability_diagrams(
    probs: ArrayLike,
    y: ArrayLike,
    labels: Sequence[str],
    *,
    n_bins: int = 20,
    scheme: str = "equal_width",
    title: str | None = None,
) -> Figure:
    """One reliability diagram per class: the class's probability against how often it is the label.

    Panel ``k`` bins every row's ``p_ik`` (see :func:`confidently.metrics.classwise_reliability`)
    and plots the share of each bin's rows labelled ``k`` against the bin's mean ``p_ik``; dot area is
    proportional to the count. Low probabilities matter here too: a class given 0.3 that is the
    label 5% of the time shows as a dot far below the diagonal, which a top-label diagram never
    shows. Each panel's title gives that class's sample ECE; their mean is the classwise ECE.
    """
    tables = classwise_reliability(probs, y, n_bins, scheme)
    if len(labels) != len(tables):
        raise DataError(f"{len(labels)} label names for {len(tables)} classes")
    columns = min(len(tables), 4)
    rows = -(-len(tables) // columns)
    figure = new_figure(4.2 * columns, 4.5 * rows)
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    scheme_words = scheme.replace("_", "-")
    for ax, label, table in zip(axes, labels, tables):
        _draw_reliability(ax, table, f"{label}: n={table.n:,}, sample ECE={table.ece:.3f}",
                          f"mean p({label}) in bin", f"share labelled {label}")
    for ax in axes[len(tables):]:
        ax.set_visible(False)
    figure.suptitle(title or f"Per-class reliability ({n_bins} {scheme_words} bins of each class's probability)",
                    fontsize=TITLE_SIZE)
    return figure


#: Thresholds whose numbers are printed on the threshold and cost charts.
LABELLED_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def threshold_chart(measured: ThresholdMeasurement, *, threshold: float | None, chosen_on: str = "calibration data",
                    title: str | None = None) -> Figure:
    """What every threshold does on one split, with the policy's threshold (chosen elsewhere) marked.

    Bars: predictions automated at each threshold, their count printed at the labelled thresholds;
    line (right axis): the accuracy of the automated ones, printed there too, with its one-sided
    lower bound and the target. ``threshold`` is the policy's threshold (None when none was
    certified), drawn with what it does on this split. Nothing is chosen here.
    """
    frame = measured.to_frame()
    figure = new_figure(8.0, 5.4)
    ax = figure.add_subplot()
    width = 0.8 * float(np.min(np.diff(frame.threshold))) if len(frame) > 1 else 0.008
    ax.bar(frame.threshold, frame.n_automated, width=width, color=RAW_COLOUR, label="automated (count)")
    set_labels(ax, title or f"Automation and accuracy by threshold (n={measured.n:,})",
           "confidence threshold", "predictions automated")
    acc_ax = ax.twinx()
    acc_ax.plot(frame.threshold, frame.accuracy, color=MAIN_COLOUR, linewidth=2.0, label="accuracy of automated")
    acc_ax.plot(frame.threshold, frame.accuracy_lower_bound, color=MAIN_COLOUR, linestyle=":",
                label=f"{measured.level:.0%} lower bound")
    acc_ax.axhline(measured.target_accuracy, color=ACCENT_COLOUR, linewidth=1.0, linestyle="--",
                   label=f"target {measured.target_accuracy:.0%}")
    for t in LABELLED_THRESHOLDS:
        row = _row_at(measured, t)
        if row is None or row.n_automated == 0:
            continue
        ax.annotate(f"{row.n_automated:,}", (row.threshold, row.n_automated), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=7, color="#555555")
        acc_ax.annotate(f"{row.accuracy:.1%}", (row.threshold, row.accuracy), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=7, color=MAIN_COLOUR)
    if threshold is not None:
        row = _row_at(measured, threshold)
        outcome = "" if row is None else f": {row.coverage:.0%} automated, {row.accuracy:.1%} right"
        acc_ax.axvline(threshold, color=ACCENT_COLOUR, linewidth=1.5,
                       label=f"policy {threshold:.2f} (chosen on {chosen_on}){outcome}")
    acc_ax.set_ylabel("accuracy of automated predictions", fontsize=LABEL_SIZE)
    acc_ax.tick_params(labelsize=TICK_SIZE)
    bar_handles, bar_labels = ax.get_legend_handles_labels()
    line_handles, line_labels = acc_ax.get_legend_handles_labels()
    figure.legend(bar_handles + line_handles, bar_labels + line_labels, loc="outside lower center",
                  ncols=2, fontsize=9)
    return figure


def cost_chart(measured: ThresholdMeasurement, *, marks: Mapping[str, float | None],
               title: str | None = None) -> Figure:
    """Cost per item on one split against threshold, with thresholds chosen elsewhere marked.

    ``marks`` maps a name ("certified (policy)", "cost-optimal on calibration data") to a threshold
    on the grid, or None to leave it out; each mark prints its cost per item and automated share.
    """
    frame = measured.to_frame()
    figure = new_figure(7.0, 4.6)
    ax = figure.add_subplot()
    ax.plot(frame.threshold, frame.cost_per_item, color=MAIN_COLOUR, linewidth=2.0, label="cost per item")
    for t in LABELLED_THRESHOLDS:
        row = _row_at(measured, t)
        if row is not None:
            ax.annotate(f"{row.cost_per_item:.3g}", (row.threshold, row.cost_per_item), xytext=(0, 6),
                        textcoords="offset points", ha="center", fontsize=7, color=MAIN_COLOUR)
    for (name, t), colour in zip(marks.items(), (ACCENT_COLOUR, "#2e8b57", "#7b3fa0")):
        row = None if t is None else _row_at(measured, t)
        if row is None:
            continue
        ax.scatter([row.threshold], [row.cost_per_item], s=80, color=colour, zorder=3,
                   label=f"{name}: {row.threshold:.2f} ({row.cost_per_item:.3g} per item, "
                   f"{row.coverage:.0%} automated)")
    ax.legend(fontsize=8)
    set_labels(ax, title or f"Cost by threshold (n={measured.n:,}; review {measured.review_cost:g}, "
           f"automated error {measured.error_cost:g})", "confidence threshold", "cost per item")
    return figure


def _row_at(measured: ThresholdMeasurement, threshold: float):
    """The measured row of ``threshold``, or None when it is not on the grid."""
    try:
        return measured.at(threshold)
    except DataError:
        return None


def label_budget_chart(results: pd.DataFrame, *, band: float = 0.90, target_accuracy: float | None = None,
                       title: str | None = None) -> Figure:
    """How calibration improves with the number of labels, one line per calibrator.

    Parameters
    ----------
    results : DataFrame
        One row per (calibrator, budget, repeat) with columns ``calibrator``, ``n_labels`` and
        ``ece``; optionally ``coverage`` (test coverage of the threshold certified with those labels)
        and ``accuracy_automated`` (its test accuracy), each adding a panel.
    band : float, default=0.90
        Central share of the repeats shaded around the mean.
    target_accuracy : float, optional
        Drawn on the accuracy panel.
    """
    missing = {"calibrator", "n_labels", "ece"} - set(results.columns)
    if missing:
        raise DataError(f"label-budget results lack columns {sorted(missing)}")
    panels = [("ece", "mean ECE")]
    if "coverage" in results:
        panels.append(("coverage", "test coverage at the certified threshold"))
    if "accuracy_automated" in results and results["accuracy_automated"].notna().any():
        panels.append(("accuracy_automated", "test accuracy at the certified threshold"))
    figure = new_figure(6.0 * len(panels), 4.6)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    tail = (1.0 - band) / 2.0
    repeats = int(results.groupby(["calibrator", "n_labels"]).size().max())
    for ax, (column, ylabel) in zip(axes, panels):
        for name, group in results.groupby("calibrator", sort=False):
            stats = group.groupby("n_labels")[column].agg(
                mean="mean", low=lambda s: s.quantile(tail), high=lambda s: s.quantile(1 - tail)
            ).dropna()
            line = ax.plot(stats.index, stats["mean"], marker="o", linewidth=2.0, label=str(name))[0]
            ax.fill_between(stats.index, stats["low"], stats["high"], color=line.get_color(), alpha=0.18)
        if column == "accuracy_automated" and target_accuracy is not None:
            ax.axhline(target_accuracy, color=ACCENT_COLOUR, linestyle="--", linewidth=1.0,
                       label=f"target {target_accuracy:.0%}")
        ax.set_xscale("log")
        budgets = np.unique(results["n_labels"])
        ax.set_xticks(budgets, labels=[f"{b:g}" for b in budgets])
        ax.minorticks_off()
        ax.legend(fontsize=TICK_SIZE)
        set_labels(ax, f"{ylabel}\n({band:.0%} band over {repeats} repeats)", "calibration labels (log scale)", ylabel)
    if title:
        figure.suptitle(title, fontsize=TITLE_SIZE)
    return figure


def prediction_set_chart(coverage: Mapping[str, pd.DataFrame], *, alpha: float, title: str | None = None) -> Figure:
    """Coverage (with its interval) and mean set size of prediction sets, per part, one bar per predictor.

    ``coverage`` maps a predictor's name to a :func:`confidently.decision.conformal.measure_sets` table; the
    target ``1 - alpha`` is drawn on the coverage panel.
    """
    if not coverage:
        raise DataError("prediction_set_chart needs at least one table")
    names = list(coverage)
    parts = list(next(iter(coverage.values()))["part"])
    figure = new_figure(max(8.0, 0.9 * len(parts) * max(1, len(names)) / 2 + 3), 7.0)
    cover_ax, size_ax = figure.subplots(2, 1, sharex=True)
    x = np.arange(len(parts))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        table = coverage[name].set_index("part").loc[parts]
        offset = x - 0.4 + width * (i + 0.5)
        bars = cover_ax.bar(offset, table["coverage"], width=width, label=name)
        cover_ax.vlines(offset, table["coverage_low"], table["coverage_high"], color="black", linewidth=1.0)
        size_ax.bar(offset, table["mean_set_size"], width=width, color=bars.patches[0].get_facecolor())
    cover_ax.axhline(1 - alpha, color=ACCENT_COLOUR, linestyle="--", linewidth=1.0, label=f"target {1 - alpha:.0%}")
    low = float(min(np.nanmin(t["coverage_low"]) for t in coverage.values()))
    cover_ax.set_ylim(max(0.0, min(low, 1 - alpha) - 0.05), 1.005)
    cover_ax.legend(fontsize=8, ncols=min(4, len(names) + 1), loc="lower left")
    set_labels(cover_ax, title or "Prediction sets on the test split: coverage (95% interval) and mean size", "",
           "coverage")
    size_ax.set_xticks(x, labels=[p.replace("=", "=\n", 1) for p in parts], fontsize=8)
    set_labels(size_ax, "", "part of the test split", "mean set size")
    return figure


def save_png(figure: Figure, path: str | Path, *, dpi: int = 120) -> None:
    """Write ``figure`` as PNG to ``path``; a crash never leaves a half-written file."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)


def fig_to_base64_png(figure: Figure, *, dpi: int = 120) -> str:
    """PNG bytes of ``figure`` in base64, for ``<img src="data:image/png;base64,...">``."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
