"""One writer per output: a run holds an exclusive lock on ``<output>.lock`` while it writes, and a
second run for the same output fails at once, naming the holder, instead of interleaving with it.

The lock is an ``flock`` (released by the operating system when the holder dies, so a killed run
never leaves a stale lock). The lock file names its holder and is removed by it on exit; a run that
locked a file another run had just removed locks the new one instead. Within one process the lock is
re-entrant, so a command can take it before its model loads and the workflow it calls again.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from confidently.errors import OutputBusyError

#: The outputs this process holds (the lock is re-entrant within it).
_HELD: set[Path] = set()


def lock_path(output: str | Path) -> Path:
    """Where the lock of ``output`` lies: ``<output>.lock`` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".lock")


@contextlib.contextmanager
def hold_output(output: str | Path) -> Iterator[None]:
    """Hold ``output``'s lock for the ``with`` block.

    Raises
    ------
    OutputBusyError
        Another process holds it: the message names the output and the holder (pid, host, start, command).
    """
    try:
        import fcntl
    except ImportError:  # no flock on Windows: runs are not kept apart there
        yield
        return
    path = lock_path(output).absolute()
    if path in _HELD:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        handle = open(path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            handle.close()
            raise OutputBusyError(f"{output} is being written by another run ({holder}): wait for it to finish, "
                                  "or write to another --out") from None
        if _same_file(handle, path):
            break
        handle.close()  # its holder removed the file as we opened it: lock the one now there
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                                 "command": " ".join(["confidently", *sys.argv[1:]])[:200]}))
        handle.flush()
        _HELD.add(path)
        yield
    finally:
        _HELD.discard(path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # while still held, so no other run can have locked this file
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def _same_file(handle, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def _holder(path: Path) -> str:
    """The holder named in the lock file, in words (it may not have written its name yet)."""
    try:
        data = json.loads(path.read_text())
        return f"pid {data['pid']} on {data['host']}, started {data['started']}: {data['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not named itself yet"
