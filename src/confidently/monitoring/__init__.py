"""Monitoring a served classifier: drift from the calibration rows, live accuracy of automated decisions."""

from confidently.monitoring.accuracy import LiveAccuracy
from confidently.monitoring.drift import DriftMonitor, DriftReport, DriftThresholds, FeatureDrift, psi
from confidently.monitoring.reference import Reference

__all__ = ["DriftMonitor", "DriftReport", "DriftThresholds", "FeatureDrift", "LiveAccuracy", "Reference", "psi"]
