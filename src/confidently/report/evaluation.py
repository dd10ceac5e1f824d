"""Everything ``evaluate`` and ``demo`` write: report.html, metrics.json, summary.md, calibrators, policy,
prediction sets, scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from confidently.decision.exact_share import ExactShare
from confidently.decision.decisions import decide
from confidently.decision.procedures import describe as describe_procedure
from confidently.workflows.evaluation import Evaluation, budget_summary
from confidently.files import atomic_write_json, atomic_write_text
from confidently.report import charts
from confidently.report.html import Section, write_report

METRIC_ROWS = (("accuracy", "accuracy"), ("ece", "ECE (20 equal-width)"), ("ece_equal_mass", "ECE (15 equal-mass)"),
               ("classwise_ece", "classwise ECE (20 equal-width)"), ("debiased_ce", "debiased CE"), ("mce", "MCE"),
               ("brier", "Brier"), ("nll", "NLL"), ("auroc", "AUROC (conf. vs correct)"), ("aurc", "AURC"))


def automated_text(on_test: dict) -> str:
    """What a rule automated on the test split (:attr:`Evaluation.policy_on_test`): how many of how many and,
    when it automated any, their accuracy with its exact (Clopper-Pearson) 95% interval."""
    n_auto, n = on_test["n_automated"], on_test["n"]
    text = f"{n_auto} of {n} ({on_test['coverage']:.1%})"
    if not n_auto:
        return text + ", so there is no accuracy to measure"
    return text + f" at accuracy {ExactShare.of(on_test['accuracy_automated'], n_auto).text()}"



def set_coverage_text(sets: dict) -> str:
    """The shipped prediction sets' coverage of the test rows (``headline()["prediction_sets"]``) with its exact
    interval."""
    return ExactShare.of(sets["coverage_on_test"], sets["n_test"]).text()

def format_metric(metric: dict) -> str:
    value, low, high = metric.get("value"), metric.get("ci_low"), metric.get("ci_high")
    if value is None:
        return "–"
    if low is None or high is None:
        return f"{value:.4f}"
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def metrics_table(evaluation: Evaluation, which: str) -> pd.DataFrame:
    """One row per method, one column per metric, each 'value [95% CI]'."""
    rows = []
    for name, result in evaluation.methods.items():
        metrics = (result.test if which == "test" else result.crossfit)["metrics"]
        rows.append({"method": name, **{label: format_metric(metrics[key]) for key, label in METRIC_ROWS if key in metrics}})
    return pd.DataFrame(rows)


def threshold_rows(evaluation: Evaluation, method: str, points=(0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)) -> pd.DataFrame:
    """The test-split rows of a few thresholds and of the method's certified one (chosen on calibration data)."""
    result = evaluation.methods[method]
    frame = result.on_test.to_frame()
    chosen = result.chosen.certified.threshold
    marks = np.array(points + ((chosen,) if chosen is not None else ()))
    keep = frame[np.isclose(frame["threshold"].to_numpy()[:, None], marks[None]).any(axis=1)].copy()
    keep.insert(0, "", np.where(np.isclose(keep["threshold"], chosen if chosen is not None else -1), "certified", ""))
    return keep[["", "threshold", "n_automated", "coverage", "accuracy", "accuracy_lower_bound", "n_review",
                 "n_automated_errors", "cost"]]


def headline_cards(evaluation: Evaluation) -> dict[str, str]:
    h = evaluation.headline()
    on_test = h["policy_on_test"]
    cards = {
        "accuracy raw → calibrated": f"{h['accuracy_raw']['value']:.3f} → {h['accuracy_calibrated']['value']:.3f}",
        "ECE raw → calibrated": f"{h['ece_raw']['value']:.3f} → {h['ece_calibrated']['value']:.3f}",
        "chosen calibrator": h["best_method"],
    }
    if evaluation.policy.threshold is None:
        cards[f"automation at {evaluation.config.target_accuracy:.0%}"] = "none certified"
    else:
        cards[f"automated at ≥{evaluation.policy.threshold:.2f}"] = (
            f"{on_test['coverage']:.0%} (" + ("none of the test split)" if not on_test["n_automated"]
                                               else f"{on_test['accuracy_automated']:.1%} right)"))
    sets = h["prediction_sets"]
    cards[f"{1 - sets['alpha']:.0%} prediction sets ({sets['name']})"] = (
        f"{sets['coverage_on_test']:.1%} covered, {sets['mean_set_size_on_test']:.2f} labels")
    return cards


def projection_text(evaluation: Evaluation) -> str:
    """The cost view in one sentence: per-volume figures of the policy, measured on the test split."""
    p = evaluation.projection
    volume = f"{p.volume:,}"
    return (f"Per {volume} items like the test split, {_deciding_rule(evaluation)} automates {p.automated[0]:,.0f} "
            f"[{p.automated[1]:,.0f}, {p.automated[2]:,.0f}] and sends {p.reviewed[0]:,.0f} to review "
            f"({p.review_hours[0]:,.0f} hours at {p.minutes_per_review:g} min each); about {p.errors[0]:,.0f} "
            f"[{p.errors[1]:,.0f}, {p.errors[2]:,.0f}] automated predictions would be wrong "
            f"({p.level:.0%} intervals from the {p.n} test rows).")


def deciding_guarantee(evaluation: Evaluation) -> str:
    """What an ``automate`` of the bundle's rule promises, as :func:`decide` states it for every answer."""
    sets = evaluation.sets
    return decide(np.zeros((0, len(evaluation.labels))), labels=evaluation.labels, policy=evaluation.policy,
                  prediction_sets=sets.predictors[sets.shipped], rule=evaluation.config.decision_rule).guarantee


def decided_by_text(evaluation: Evaluation) -> str:
    """Which rule the bundle decides by and what its ``automate`` promises; then what the set rule did on the
    test split (the threshold's figures are stated beside its policy)."""
    sets = evaluation.sets
    on_test = sets.rule_on_test
    return (f"The bundle decides by {RULE_WORDS[evaluation.config.decision_rule]}; an automate "
            f"decision promises: {deciding_guarantee(evaluation)}. The set rule (automate single-label '{sets.shipped}' sets) "
            f"automates {automated_text(on_test)} test rows; its automated errors are "
            f"{on_test['automated_errors_share_of_all']:.1%} of all test rows (bound: alpha = "
            f"{evaluation.config.alpha:g} on average).")


#: The decision rules (:data:`~confidently.decision.decisions.DECISION_RULES`) in a few words.
RULE_WORDS = {"threshold": "its certified threshold",
              "prediction_set": "its prediction sets, automating single-label ones"}


def _deciding_rule(evaluation: Evaluation) -> str:
    """The rule the bundle decides by, in a few words (what the cost view projects)."""
    return f"the bundle's rule ({RULE_WORDS[evaluation.config.decision_rule]})"


def set_tables(evaluation: Evaluation) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage [95% CI] and mean set size on the test split: one row per part, one column per predictor."""
    coverage, size = {}, {}
    for name, table in evaluation.sets.coverage.items():
        indexed = table.set_index("part")
        coverage[name] = [ExactShare.of(r.coverage, r.n).text() for r in indexed.itertuples()]
        size[name] = [f"{r.mean_set_size:.2f} ({r.singleton:.0%} single)" for r in indexed.itertuples()]
        parts, counts = list(indexed.index), list(indexed["n"])
    head = {"part": parts, "n": counts}
    return pd.DataFrame({**head, **coverage}), pd.DataFrame({**head, **size})


def build_sections(evaluation: Evaluation, slices: pd.DataFrame | None = None) -> list[Section]:
    cfg = evaluation.config
    raw, best = evaluation.methods["raw"], evaluation.methods[evaluation.best]
    y_test = evaluation.y_test
    n_cal, n_test = evaluation.y_calibration.size, y_test.size
    sections = []

    how = Section("How this was measured")
    how.add_text(
        f"Calibration split: {n_cal} labelled examples; test split: {n_test}. Each calibrator is fitted on the "
        f"calibration split and measured two ways, never on the rows it was fitted on: {cfg.n_splits}-fold "
        "cross-fitting on the calibration split (out-of-fold scores), and on the held-out test split with the "
        "calibrator fitted on the whole calibration split (the one saved). The calibrator to ship is chosen on "
        "the cross-fitted scores only (lowest negative log-likelihood, a proper scoring rule), and its decision "
        "threshold and prediction sets are fitted on those scores too; the test split is used for nothing but "
        "reporting.")
    how.add_text(
        "Raw confidence is the predicted label's share of the label mass (the probability the model put on "
        f"every token variant of that label, divided by the mass on all labels). Intervals are 95% bootstrap "
        f"intervals over {cfg.n_resamples} resamples of the rows (seed {cfg.seed}), and every interval contains "
        "its value. Accuracy, Brier, NLL, AUROC and AURC: the value is the metric on the rows, the interval the "
        "percentile interval. The binned calibration errors (ECE, classwise ECE, MCE, debiased CE) are biased "
        "upwards on small samples, and their resamples more so, so a percentile interval can lie wholly above "
        "the value; for them the value is the bootstrap bias-corrected estimate (the value on the rows minus the "
        "resamples' excess over it, floored at 0) with the basic bootstrap interval around it. The reliability "
        "diagrams show the uncorrected bins (their 'sample ECE').")
    for method, reason in evaluation.skipped.items():
        how.add_note(f"{method}: {reason}")
    for note in evaluation.notes:
        how.add_note(note)
    sections.append(how)

    results = Section("Calibration on the held-out test split")
    results.add_table(metrics_table(evaluation, "test"), f"test split, n = {n_test}")
    results.add_table(metrics_table(evaluation, "crossfit"),
                      f"cross-fitted on the calibration split ({cfg.n_splits} folds), n = {n_cal}")
    panels = {"raw": (raw.test_probs.max(1), raw.test_probs.argmax(1) == y_test)}
    for name in ("platt", "isotonic", evaluation.best):
        if name in evaluation.methods and name not in panels:
            probs = evaluation.methods[name].test_probs
            panels[name] = (probs.max(1), probs.argmax(1) == y_test)
    results.add_figure(charts.reliability_diagrams(panels, n_bins=cfg.n_bins),
                       f"reliability on the test split ({cfg.n_bins} equal-width bins; dot area = count)")
    results.add_figure(charts.confidence_histogram(raw.test_probs.max(1), calibrated=best.test_probs.max(1)),
                       f"confidence on the test split: raw vs {evaluation.best}")
    sections.append(results)
    if len(evaluation.labels) >= 3:
        sections.append(_per_class_section(evaluation))

    decisions = Section("Automation: one threshold, chosen on calibration data")
    certificate = best.chosen.certified
    decisions.add_text(
        f"A prediction is automated when its calibrated confidence is at or above the policy's threshold; the "
        f"rest go to review. The threshold is certified by Learn-Then-Test on the cross-fitted calibration "
        f"scores ({n_cal} rows): thresholds are tested from the strictest (0.99) down, each with the exact "
        f"binomial p-value of 'the automated predictions are less than {cfg.target_accuracy:.0%} accurate', "
        f"skipping those automating fewer than {certificate.min_automated}, and "
        f"{describe_procedure(certificate.procedure, 1 - cfg.level)}. The loosest threshold rejected is certified. "
        "The test split only measures the result; no threshold is chosen on it.")
    decisions.add_text(f"Guarantee: {evaluation.policy.guarantee}.")
    decisions.add_text(f"How it was chosen: {certificate.reason}.")
    on_test = evaluation.policy_on_test
    if evaluation.policy.threshold is not None:
        decisions.add_text(
            f"On the test split this threshold automates {automated_text(on_test)}; "
            f"{on_test['n_review']} go to review.")
    decisions.add_text(decided_by_text(evaluation))
    decisions.add_text(projection_text(evaluation))
    decisions.add_table(evaluation.projection.to_frame(),
                        f"cost view: {_deciding_rule(evaluation)} on {evaluation.projection.volume:,} items, "
                        "projected from the test split")
    for name in dict.fromkeys(("raw", evaluation.best)):
        result = evaluation.methods[name]
        decisions.add_table(threshold_rows(evaluation, name),
                            f"{name} confidence on the test split (its certified threshold chosen on calibration data)")
        decisions.add_figure(charts.threshold_chart(result.on_test, threshold=result.chosen.certified.threshold),
                             f"{name}: automated count and accuracy by threshold on the test split")
    optimal = best.chosen.optimal
    decisions.add_figure(
        charts.cost_chart(best.on_test, marks={"certified (policy)": evaluation.policy.threshold,
                                               "cost-optimal on calibration data": optimal.threshold}),
        f"{evaluation.best}: cost per item by threshold on the test split; both marked thresholds were chosen on "
        "the calibration split")
    sections.append(decisions)

    sets = evaluation.sets
    shipped = sets.predictors[sets.shipped]
    part = Section("Prediction sets")
    part.add_text(
        f"Split conformal prediction sets at alpha = {cfg.alpha:g}, fitted on the {sets.scored_on} cross-fitted "
        f"calibration scores: LAC keeps every label whose probability is at least one minus the fitted score "
        "quantile; APS adds labels in rank order until the labels above hold more than it. 'by class' fits one "
        "quantile per true class, so coverage holds within each class; 'by COLUMN' one per value of that column. "
        f"The saved conformal.json is '{sets.shipped}': {shipped.guarantee}. LAC's coverage is also at most "
        "1 − alpha + 1/(n + 1) for n calibration rows (its scores do not tie); APS's can be higher. A decision "
        "rule can automate exactly the items whose set holds one label.")
    coverage_table, size_table = set_tables(evaluation)
    part.add_table(coverage_table, f"coverage on the test split, target {1 - cfg.alpha:.0%}")
    part.add_table(size_table, "mean set size on the test split (share of sets with one label)")
    part.add_figure(charts.prediction_set_chart(sets.coverage, alpha=cfg.alpha),
                    "coverage and set size by class and slice on the test split")
    sections.append(part)

    if len(evaluation.budget):
        budget = Section("How many labels calibration needs")
        budget.add_text(
            f"Each calibrator is fitted on {cfg.budget_repeats} random subsets of n calibration labels, and its "
            f"threshold certified on those n labels only (cross-fitted, as above); the whole test split then measures "
            "its ECE and what the certified threshold automates and how accurately: mean and 90% band (5th–95th "
            "percentile over the subsets). 'below_target' counts subsets whose certified threshold fell below the "
            f"target on the test split; the guarantee allows it in about {1 - cfg.level:.0%} of subsets.")
        budget.add_figure(charts.label_budget_chart(evaluation.budget, target_accuracy=cfg.target_accuracy),
                          "ECE, and test coverage and accuracy of the certified threshold, by label budget")
        budget.add_table(budget_summary(evaluation.budget), "label budget")
        sections.append(budget)

    if slices is not None and len(slices):
        part = Section("Slices of the test split")
        part.add_table(slices, "raw and calibrated accuracy per slice (category / domain)")
        sections.append(part)
    return sections


def _per_class_section(evaluation: Evaluation) -> Section:
    """Classwise calibration for three or more classes: every class's probability, not just the top one."""
    cfg, y_test = evaluation.config, evaluation.y_test
    part = Section("Calibration of every class")
    part.add_text(
        "Top-label ECE checks only the winning probability. With three or more classes a model can be right "
        "about its top choice and still give a class far too much (or too little) probability when it is not "
        "the top one. Classwise ECE (Kull et al. 2019) checks each class's probability against how often that "
        f"class is the label, in {cfg.n_bins} equal-width bins per class, and averages over classes. Dirichlet "
        "calibration fits one map of all classes' log-probabilities together, so it can correct such errors; "
        "the one-vs-rest calibrators (isotonic, histogram, beta) fit each class alone and renormalise.")
    rows = []
    for name, result in evaluation.methods.items():
        metrics = result.test["metrics"]
        if "classwise_ece" in metrics:
            rows.append({"method": name, "classwise ECE": format_metric(metrics["classwise_ece"]),
                         "top-label ECE": format_metric(metrics["ece"]), "NLL": format_metric(metrics["nll"]),
                         "accuracy": format_metric(metrics["accuracy"])})
    part.add_table(pd.DataFrame(rows), f"test split, n = {y_test.size}")
    for name in dict.fromkeys(("raw", evaluation.best)):
        part.add_figure(charts.classwise_reliability_diagrams(evaluation.methods[name].test_probs, y_test,
                                                              evaluation.labels, n_bins=cfg.n_bins),
                        f"{name}: per-class reliability on the test split (dot area = count)")
    return part


def summary_markdown(evaluation: Evaluation, title: str) -> str:
    h = evaluation.headline()
    lines = [f"# {title}", "",
             f"- calibration split: {h['n_calibration']} rows; test split: {h['n_test']} rows",
             f"- accuracy (test): raw {format_metric(h['accuracy_raw'])} → {h['best_method']} {format_metric(h['accuracy_calibrated'])}",
             f"- ECE, {evaluation.config.n_bins} equal-width bins, bias-corrected (test): raw "
             f"{format_metric(h['ece_raw'])} → {h['best_method']} {format_metric(h['ece_calibrated'])}",
             f"- policy: {evaluation.policy.method}",
             f"- guarantee: {evaluation.policy.guarantee}"]
    on_test = h["policy_on_test"]
    if evaluation.policy.threshold is not None:
        lines.append(f"- on the test split: automated {automated_text(on_test)}")
    lines.append(f"- decision: {decided_by_text(evaluation)}")
    lines.append(f"- cost view: {projection_text(evaluation)}")
    sets = h["prediction_sets"]
    lines.append(f"- prediction sets ({sets['name']}, alpha {sets['alpha']:g}): test coverage "
                 f"{set_coverage_text(sets)}, mean size {sets['mean_set_size_on_test']:.2f}")
    lines += [f"- note: {note}" for note in evaluation.notes]
    # The header is the table's own columns: a metric some tasks lack (classwise ECE, binary) has no column.
    table = metrics_table(evaluation, "test")
    lines += ["", f"Test split, n = {h['n_test']}: value [95% bootstrap interval, {evaluation.config.n_resamples} "
              "resamples]; the binned calibration errors (ECE, classwise ECE, MCE, debiased CE) are bias-corrected "
              "(metrics.json keeps each uncorrected `sample_value`).", "",
              "| " + " | ".join(table.columns) + " |", "|---" * len(table.columns) + "|"]
    for _, row in table.iterrows():
        lines.append("| " + " | ".join(str(v) for v in row.to_numpy()) + " |")
    return "\n".join(lines) + "\n"


def write_evaluation(evaluation: Evaluation, out_dir: str | Path, *, title: str, metadata: dict,
                     scores: pd.DataFrame | None = None, slices: pd.DataFrame | None = None,
                     run: dict | None = None) -> dict[str, Path]:
    """Write report.html, metrics.json, summary.md, calibrators/ and scores.parquet.

    The chosen calibrator, policy and prediction sets (conformal.json) are the calibration bundle's
    (:func:`confidently.bundle.bundle.write_bundle`), written beside these; ``run`` is its run record (model, task,
    fitted rows, library versions, file hashes), repeated in metrics.json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"report": out / "report.html", "metrics": out / "metrics.json", "summary": out / "summary.md"}
    for name, result in evaluation.methods.items():
        if result.calibrator is not None:
            result.calibrator.save(out / "calibrators" / f"{name}.json")
    data = {"metadata": metadata, **({"run": run} if run is not None else {}), **evaluation.to_dict()}
    if slices is not None:
        data["slices"] = slices.to_dict(orient="records")
    atomic_write_json(paths["metrics"], data)
    atomic_write_text(paths["summary"], summary_markdown(evaluation, title))
    if scores is not None:
        from confidently.scoring.checkpointed import write_table

        paths["scores"] = out / "scores.parquet"
        write_table(scores, paths["scores"])
    write_report(paths["report"], title, build_sections(evaluation, slices), headline=headline_cards(evaluation),
                 metadata=metadata)
    return paths
