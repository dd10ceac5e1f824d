"""The production loop inside the server: log and queue what was classified, watch drift and live accuracy.

After every ``POST /v1/classify`` (:meth:`FeedbackLoop.after_classify`): the response gets a request
id; its texts go into the adapter's drift window; texts decided ``review``, plus a random
``audit_fraction`` of those decided ``automate``, are written to the review queue before the
response is sent, so an acknowledged request's queued texts survive a crash. Each logged text keeps
the features a probe or a prompt ensemble's combiner read, tagged with where they come from, so
``confidently recalibrate`` can refit it. Drift and live accuracy are computed on demand
(``GET /v1/adapters/{name}/drift``, ``/metrics``); new alarms are logged.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import HTTPException

from confidently.feedback import FeedbackStore, LoggedText, StoreError, open_store
from confidently.feedback.features import FeatureVector
from confidently.monitoring import DriftMonitor, DriftReport, DriftThresholds, LiveAccuracy
from confidently.server.metrics import Counter, Gauge, Histogram, Metrics
from confidently.server.schemas import ClassifyRequest, ClassifyResponse
from confidently.server.settings import Settings

if TYPE_CHECKING:
    from confidently.server.served import Served
    from confidently.server.service import Service

log = logging.getLogger("confidently.server")

CONFIDENCE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1.0)
OTHER_MASS_BUCKETS = (0.0001, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0)


@dataclass
class _Watch:
    """The drift window of one served entry; replaced when the entry is (re)loaded."""

    served: Served
    drift: DriftMonitor
    accuracy_alarm: bool = False


class FeedbackLoop:
    """Store, drift monitors and their Prometheus series for one server (see the module docstring)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.thresholds = DriftThresholds()
        self.store: FeedbackStore | None = None
        self._random = random.Random()
        self._lock = threading.Lock()
        self._watches: dict[str, _Watch] = {}
        self.raw_confidence = Histogram("confidently_raw_confidence", "Raw confidence of classified texts.",
                                        CONFIDENCE_BUCKETS, ("adapter",))
        self.other_mass = Histogram("confidently_other_mass", "Next-token mass on no label, per classified text.",
                                    OTHER_MASS_BUCKETS, ("adapter",))
        self.labels = Counter("confidently_predicted_labels_total", "Texts by predicted label.", ("adapter", "label"))
        self.queued = Counter("confidently_queued_for_review_total", "Texts entering the review queue, by reason.",
                              ("adapter", "reason"))

    # -- lifecycle (on a worker thread) -------------------------------------------------------------
    def open(self) -> None:
        if self.settings.feedback_db is not None:
            self.store = open_store(self.settings.feedback_db)
            log.info("feedback store: %s (%d texts waiting for review)", self.store.location, self.store.pending())

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    # -- after each classify request ----------------------------------------------------------------
    async def after_classify(self, request: ClassifyRequest, response: ClassifyResponse, served: Served) -> None:
        """Name the response, watch its texts, and queue those for review (durably) before it is sent."""
        response.request_id = uuid.uuid4().hex
        results = response.results
        key = Metrics.BASE if served.name is None else served.name
        watch = self._watch(served)
        watch.drift.observe([r.raw_confidence for r in results], [r.other_mass for r in results],
                            [r.label for r in results], [r.decision for r in results])
        with self._lock:
            for r in results:
                self.raw_confidence.observe(r.raw_confidence, key)
                self.other_mass.observe(r.other_mass, key)
                self.labels.inc(key, r.label)
        for alarm in watch.drift.new_alarms():
            log.warning("drift alarm for %s: %s", key, alarm)
        if self.store is None:
            return
        logged, space = [], served.feature_space
        for i, r in enumerate(results):
            reason = self._reason(r.decision)  # drawn once: the audit sample is random
            features = None if space is None or r.features is None else FeatureVector.of(r.features, space)
            logged.append(LoggedText(position=i, label=r.label, confidence=r.confidence,
                                     decision=r.decision, probs=r.raw_probs, queue=reason,
                                     text=request.texts[i] if reason else None, features=features,
                                     calibrated_probs=r.calibrated_probs, review_reason=r.review_reason))
        try:
            await asyncio.to_thread(self.store.record, response.request_id, served.name, response.bundle_version,
                                    logged)
        except StoreError as error:
            log.error("feedback store: %s", error)
            raise HTTPException(503, f"the texts were classified but could not be logged for review: {error}") \
                from None
        with self._lock:
            for text in logged:
                if text.queue:
                    self.queued.inc(key, text.queue)

    def _reason(self, decision: str | None) -> str | None:
        if decision == "review":
            return "review"
        if decision == "automate" and self._random.random() < self.settings.audit_fraction:
            return "audit"
        return None

    def _watch(self, served: Served) -> _Watch:
        key = Metrics.BASE if served.name is None else served.name
        with self._lock:
            watch = self._watches.get(key)
            if watch is None or watch.served is not served:
                watch = _Watch(served, DriftMonitor(served.classifier.labels, served.reference, self.thresholds))
                self._watches[key] = watch
        return watch

    # -- on demand ----------------------------------------------------------------------------------
    def drift(self, served: Served) -> DriftReport:
        return self._watch(served).drift.report()

    def live_accuracy(self, served: Served) -> LiveAccuracy | None:
        """Accuracy of this entry's automated decisions on the audit sample (None without a store)."""
        if self.store is None:
            return None
        correct, n = self.store.audit_counts(served.name, bundle_version=served.bundle_version)
        policy = served.calibrated.policy
        target = None if policy is None else policy.target_accuracy
        accuracy = LiveAccuracy.from_counts(correct, n, target=target)
        watch = self._watch(served)
        if accuracy.alarm and not watch.accuracy_alarm:
            log.warning("live accuracy alarm for %s: %s", served.name or Metrics.BASE, accuracy.describe())
        watch.accuracy_alarm = accuracy.alarm
        return accuracy

    def render(self, service: Service) -> str:
        """The loop's Prometheus series: live histograms, drift statistics, live accuracy, queue length."""
        entries = [service.registry.base, *(service.registry.get(i.name) for i in service.registry.infos())]
        psi = Gauge("confidently_drift_psi", "PSI of the live window against the reference, by feature.",
                    ("adapter", "feature"))
        ks = Gauge("confidently_drift_ks_statistic", "Two-sample KS statistic against the reference quantiles.",
                   ("adapter", "feature"))
        drift_alarm = Gauge("confidently_drift_alarm", "1 when a feature's drift crosses its threshold.",
                            ("adapter", "feature"))
        window = Gauge("confidently_drift_window_texts", "Texts in the drift window.", ("adapter",))
        accuracy = Gauge("confidently_live_accuracy", "Accuracy of automated decisions on the audit sample "
                         "(with the bounds of an anytime-valid 95% confidence sequence, valid at every scrape).",
                         ("adapter", "bound"))
        audited = Gauge("confidently_live_accuracy_audited_texts", "Audited automated texts with a label.",
                        ("adapter",))
        accuracy_alarm = Gauge("confidently_live_accuracy_alarm", "1 when the accuracy's anytime upper bound is "
                               "below the policy's target (the audits show automation misses it).", ("adapter",))
        canary_passed = Gauge("confidently_canary_passed", "1 when the adapter's golden prompts scored as recorded "
                              "at load, 0 when not (served only with --canary mark).", ("adapter",))
        canary_deviation = Gauge("confidently_canary_max_deviation", "Largest raw-probability change of the "
                                 "golden prompts at load.", ("adapter",))
        for name, check in service.registry.canaries.items():
            canary_passed.set(float(check.passed), name)
            canary_deviation.set(check.max_deviation, name)
        for served in entries:
            key = Metrics.BASE if served.name is None else served.name
            report = self.drift(served)
            window.set(report.n_live, key)
            for feature in report.features:
                psi.set(feature.psi, key, feature.feature)
                drift_alarm.set(float(feature.alarm), key, feature.feature)
                if feature.ks_statistic is not None:
                    ks.set(feature.ks_statistic, key, feature.feature)
            live = self.live_accuracy(served)
            if live is not None:
                audited.set(live.n, key)
                accuracy_alarm.set(float(live.alarm), key)
                for bound, value in (("estimate", live.accuracy), ("lower", live.lower), ("upper", live.upper)):
                    if value is not None:
                        accuracy.set(value, key, bound)
        with self._lock:
            lines = [*self.raw_confidence.lines(), *self.other_mass.lines(), *self.labels.lines(),
                     *self.queued.lines()]
        lines += [*psi.lines(), *ks.lines(), *drift_alarm.lines(), *window.lines(), *accuracy.lines(),
                  *audited.lines(), *accuracy_alarm.lines(), *canary_passed.lines(), *canary_deviation.lines()]
        if self.store is not None:
            lines += ["# HELP confidently_review_pending Queued texts without a label.",
                      "# TYPE confidently_review_pending gauge", f"confidently_review_pending {self.store.pending()}"]
        return "\n".join(lines) + "\n"

