"""Each chart renders a non-trivial PNG from synthetic data."""

from __future__ import annotations

import base64
import struct

import numpy as np
import pandas as pd
import pytest

from confidently.errors import DataError
from confidently.report import charts
from confidently.decision.thresholds import analyse_thresholds

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_SIGNATURE
    return struct.unpack(">II", data[16:24])


def coloured_share(path) -> float:
    """Share of pixels that are clearly coloured (not white, grey or black): the plotted data."""
    from matplotlib.image import imread

    rgb = imread(path)[..., :3]
    return float(np.mean(rgb.max(axis=-1) - rgb.min(axis=-1) > 0.2))


@pytest.fixture(scope="module")
def scores():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.5, 1.0, 1500)
    correct = rng.random(1500) < confidence**2
    return confidence, correct


@pytest.fixture(scope="module")
def budget() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = [
        {"calibrator": name, "n_labels": n, "ece": 0.3 / np.sqrt(n) + 0.02 * rng.random(),
         "coverage": min(1.0, np.log(n) / 8), "accuracy_automated": 0.9 + 0.05 * rng.random()}
        for name in ("platt", "isotonic") for n in (20, 50, 100, 500) for _ in range(5)
    ]
    return pd.DataFrame(rows)


def figures(scores, budget):
    confidence, correct = scores
    analysis = analyse_thresholds(confidence, correct, target_accuracy=0.9)
    return {
        "histogram": lambda: charts.confidence_histogram(confidence, calibrated=confidence**2),
        "reliability": lambda: charts.reliability_diagram(confidence, correct),
        "reliability_side_by_side": lambda: charts.reliability_diagrams(
            {"raw": (confidence, correct), "calibrated": (confidence**2, correct)}),
        "thresholds": lambda: charts.threshold_chart(analysis, threshold=0.8),
        "cost": lambda: charts.cost_chart(analysis, marks={"certified": analysis.certified.threshold,
                                                           "cost-optimal": analysis.optimal.threshold}),
        "label_budget": lambda: charts.label_budget_chart(budget, target_accuracy=0.9),
        "label_budget_ece_only": lambda: charts.label_budget_chart(budget.drop(columns=["coverage",
                                                                                        "accuracy_automated"])),
        "prediction_sets": lambda: charts.prediction_set_chart(_set_tables(confidence, correct), alpha=0.1),
    }


def _set_tables(confidence, correct):
    from confidently.decision.conformal import ConformalPredictor, measure_sets

    probs = np.column_stack([confidence, 1 - confidence])
    y = np.where(correct, 0, 1)
    domain = np.where(np.arange(y.size) % 3 == 0, "sports", "work")
    tables = {}
    for score in ("lac", "aps"):
        sets = ConformalPredictor(0.1, score=score).fit(probs[::2], y[::2]).predict_set(probs[1::2])
        tables[score] = measure_sets(sets, y[1::2], labels=["a", "b"], slices={"domain": domain[1::2]})
    return tables


NAMES = ["histogram", "reliability", "reliability_side_by_side", "thresholds", "cost", "label_budget",
         "label_budget_ece_only", "prediction_sets"]


@pytest.mark.parametrize("name", NAMES)
def test_chart_saves_a_non_trivial_png(name, scores, budget, tmp_path):
    figure = figures(scores, budget)[name]()
    path = tmp_path / "charts" / f"{name}.png"
    charts.save_png(figure, path)
    data = path.read_bytes()
    width, height = png_size(data)
    assert width >= 500 and height >= 400
    assert len(data) > 15_000  # a blank figure of this size is about 3 kB
    assert coloured_share(path) > 0.002  # empty labelled axes are pure greys: 0
    assert list(path.parent.iterdir()) == [path]  # the temporary file is gone


def test_side_by_side_diagrams_are_wider_than_one(scores):
    confidence, correct = scores
    one = png_size(base64.b64decode(charts.fig_to_base64_png(charts.reliability_diagrams({"raw": (confidence, correct)}))))
    three = charts.reliability_diagrams({name: (confidence, correct) for name in ("a", "b", "c")})
    assert png_size(base64.b64decode(charts.fig_to_base64_png(three)))[0] > 2.5 * one[0]


def test_reliability_title_states_n_binning_and_ece(scores):
    confidence, correct = scores
    title = charts.reliability_diagram(confidence, correct).axes[0].get_title()
    assert "n=1,500" in title and "20 equal-width bins" in title and "ECE=" in title


def test_threshold_chart_prints_its_numbers_and_the_policy_threshold(scores):
    from confidently.decision.thresholds import measure_thresholds

    confidence, correct = scores
    measured = measure_thresholds(confidence, correct, target_accuracy=0.9)
    figure = charts.threshold_chart(measured, threshold=0.8)
    texts = {t.get_text() for ax in figure.axes for t in ax.texts}
    row = measured.at(0.9)
    assert f"{row.n_automated:,}" in texts and f"{row.accuracy:.1%}" in texts
    legend = [t.get_text() for t in figure.legends[0].get_texts()]
    policy = measured.at(0.8)
    assert f"policy 0.80 (chosen on calibration data): {policy.coverage:.0%} automated, {policy.accuracy:.1%} right" \
        in legend
    cost = charts.cost_chart(measured, marks={"certified": 0.8, "cost-optimal": None})
    assert f"{measured.at(0.5).cost_per_item:.3g}" in {t.get_text() for t in cost.axes[0].texts}


def test_base64_png_embeds(scores):
    encoded = charts.fig_to_base64_png(charts.confidence_histogram(scores[0]))
    assert base64.b64decode(encoded).startswith(PNG_SIGNATURE)


def test_charts_refuse_missing_inputs(budget):
    with pytest.raises(DataError, match="lack columns \\['ece'\\]"):
        charts.label_budget_chart(budget.drop(columns="ece"))
    with pytest.raises(DataError, match="at least one panel"):
        charts.reliability_diagrams({})


def test_classwise_reliability_has_one_panel_per_class(tmp_path):
    rng = np.random.default_rng(2)
    probs = rng.dirichlet([1, 1, 1, 1, 1], 800)
    y = (rng.random(800)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1).clip(max=4)
    labels = ["business", "entertainment", "politics", "sport", "tech"]
    figure = charts.classwise_reliability_diagrams(probs, y, labels, n_bins=10)
    shown = [ax for ax in figure.axes if ax.get_visible()]
    assert len(shown) == 5 and len(figure.axes) == 8  # a 2 x 4 grid, the last three hidden
    assert [ax.get_title().split(":")[0] for ax in shown] == labels
    assert shown[3].get_xlabel() == "mean p(sport) in bin" and shown[3].get_ylabel() == "share labelled sport"
    assert "sample ECE=" in shown[0].get_title() and "10 equal-width bins" in figure.get_suptitle()
    path = tmp_path / "classwise.png"
    charts.save_png(figure, path)
    assert coloured_share(path) > 0.002
    with pytest.raises(DataError, match="2 label names for 5 classes"):
        charts.classwise_reliability_diagrams(probs, y, labels[:2])
