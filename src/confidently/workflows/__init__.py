"""Orchestrators that run whole stages end to end: evaluate, compare, fine-tune pipelines and the
scikit-learn estimator. Nothing below this package imports it."""
