"""Defaults the library and the command line share, in a module that imports nothing heavy.

The CLI reads them when it builds its options, so ``confidently --help`` stays fast.
"""

# benchmarks/scoring.py on 2 CPU cores: 16 was 6% (qwen-0.5B) and 33% (gemma-270m) faster than 8; 24 no better.
DEFAULT_BATCH_SIZE = 16

# Longest text scored whole, in tokens (at most what fits the context): a longer text is truncated and
# flagged, so one huge text cannot hold a run for minutes (a forward pass grows with its length).
DEFAULT_MAX_TEXT_TOKENS = 2048
# Characters kept per allowed token before a text is tokenized at all (a 1 MB text is cut to this
# first, by the same truncation rule); 16 is far above natural text's 3-5 characters per token.
CHARS_PER_TOKEN_CAP = 16

# Learn-Then-Test procedures that certify an automation threshold (confidently.decision.procedures says
# what each does); the fallback is the default because one unlucky error among the most confident
# predictions does not end its testing (benchmarks/certification_power.py).
FIXED_SEQUENCE = "fixed-sequence"
FALLBACK = "fallback"
PROCEDURES = (FALLBACK, FIXED_SEQUENCE)
DEFAULT_PROCEDURE = FALLBACK


def procedure_problem(procedure: object) -> str | None:
    """What is wrong with ``procedure`` as a procedure name, or None when it is one of :data:`PROCEDURES`
    (every configuration checks it this way and raises its own error type)."""
    if procedure in PROCEDURES:
        return None
    return f"procedure must be one of {', '.join(PROCEDURES)}; got {procedure!r}"
