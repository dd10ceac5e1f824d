"""Two runs writing one output: the second stops at once with one line naming the output and the first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from confidently.errors import OutputBusyError
from confidently.output_lock import hold_output, lock_path

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX-only")

HOLD = """
import sys
from confidently.output_lock import hold_output
with hold_output(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin
"""


class Holder:
    """Another process holding ``output``'s lock until :meth:`release` (or until it is killed)."""

    def __init__(self, output: Path):
        self.process = subprocess.Popen([sys.executable, "-c", HOLD, str(output)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def release(self) -> None:
        self.process.stdin.close()
        assert self.process.wait(timeout=60) == 0

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=60)
        self.process.stdin.close()


def test_a_second_writer_is_refused_naming_the_output_and_the_holder(tmp_path):
    out = tmp_path / "scores.csv"
    holder = Holder(out)
    try:
        with pytest.raises(OutputBusyError) as caught, hold_output(out):
            pass
        message = str(caught.value)
        assert str(out) in message and f"pid {holder.process.pid} on " in message and "another --out" in message
    finally:
        holder.release()
    assert not lock_path(out).exists()  # the holder removes its lock file
    with hold_output(out):  # and the output is free again
        assert json.loads(lock_path(out).read_text())["pid"] == os.getpid()
        with hold_output(out):  # re-entrant within one process
            pass
        assert lock_path(out).exists()
    assert not lock_path(out).exists()


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "scores.parquet"
    Holder(out).kill()
    assert lock_path(out).exists()  # its file stays, but the operating system released the lock
    with hold_output(out):
        pass


def test_cli_score_refuses_a_busy_output_before_the_model_loads(tiny_model_dir, tmp_path):
    data, out = tmp_path / "texts.jsonl", tmp_path / "scores.csv"
    data.write_text(json.dumps({"text": "the movie was great"}) + "\n")
    out.write_text("earlier output\n")
    holder = Holder(out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "400"}
    command = [sys.executable, "-m", "confidently", "score", str(data), "--out", str(out), "--model",
               str(tiny_model_dir), "--device", "cpu", "--dtype", "float32"]
    try:
        started = time.monotonic()
        busy = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
        assert busy.returncode == 1, busy.stderr
        lines = [line for line in busy.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and str(out) in lines[0] and f"pid {holder.process.pid}" in lines[0], busy.stderr
        assert "Loading weights" not in busy.stderr and time.monotonic() - started < 60
        assert out.read_text() == "earlier output\n"  # nothing of the holder's output was touched
    finally:
        holder.release()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "raw_prediction" in out.read_text() and not lock_path(out).exists()
