"""Scorers: how a model's output becomes class scores (:class:`~confidently.types.Scores`).

``logprob`` (the default) lives in :meth:`Classifier.score`; the black-box ``verbalized`` and
``consistency`` scorers in :mod:`confidently.scorers.blackbox`. Everything after the scores
(calibration, decisions, bundles, reports) is the same for all three.
"""

from confidently.scorers.blackbox import BlackBoxScorer
from confidently.scorers.spec import SCORERS, ScorerSpec, as_spec

__all__ = ["SCORERS", "BlackBoxScorer", "ScorerSpec", "as_spec"]
