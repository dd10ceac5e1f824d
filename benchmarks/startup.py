"""Start-up time: wall time of ``confidently --help`` and of ``python -c "import confidently"``.

Each command runs ``--runs`` times in a fresh process (the first run is extra and discarded: it
warms the file cache); prints the median, min and max in seconds, the CPU count and load average,
so figures from a busy machine are recognisable. Target: ``confidently --help`` <= 1.0 s on 2 cores.

Usage: python benchmarks/startup.py [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

EXECUTABLE = Path(sys.executable).with_name("confidently")

COMMANDS = {
    "confidently --help": [str(EXECUTABLE), "--help"],
    "confidently score --help": [str(EXECUTABLE), "score", "--help"],
    'python -c "import confidently"': [sys.executable, "-c", "import confidently"],
    'python -c "import confidently.cli"': [sys.executable, "-c", "import confidently.cli"],
}


def wall_times(command: list[str], runs: int) -> list[float]:
    """Seconds per run of ``command`` (stdout discarded; a failing command is an error)."""
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)  # warm-up, not counted
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs per command (after one warm-up)")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; "
          f"{args.runs} runs each, fresh process per run")
    for name, command in COMMANDS.items():
        times = wall_times(command, args.runs)
        print(f"{name:36s} median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f})")


if __name__ == "__main__":
    main()
