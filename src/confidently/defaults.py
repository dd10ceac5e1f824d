"""Defaults the library and the command line share, in a module that imports nothing heavy.

The CLI reads them when it builds its options, so ``confidently --help`` stays fast.
"""

# benchmarks/scoring.py on 2 CPU cores: 16 was 6% (qwen-0.5B) and 33% (gemma-270m) faster than 8; 24 no better.
DEFAULT_BATCH_SIZE = 16
