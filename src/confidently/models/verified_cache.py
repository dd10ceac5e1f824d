"""A cache folder that is hashed when written, checked before use, and rebuilt when damaged.

The de-quantized copy of a GGUF model (gigabytes of safetensors) is such a folder. Its manifest,
``confidently-dequantized.json``, records each file's size and sha256 when the folder is built.
Before use every file's size is checked (a truncated file is caught at once) and its sha256 is
recomputed whenever the file changed since it was last verified: its (size, mtime, ctime, inode)
stamp differs from the one recorded. Any write to a file updates its ctime, which user code cannot
set back, so an overwritten file (say, zeros over the weights) is always re-hashed; an untouched
file is not re-read on every load (hashing 2.5 GB takes ~5-20 s on 2 cores).

A damaged, unverifiable or missing folder is rebuilt: one process at a time (a lock file beside
the folder), in a staging folder of its own, published by rename, so concurrent first loads never
see a half-built folder and never collide.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from confidently.files import atomic_write_json, sha256_file

MANIFEST = "confidently-dequantized.json"
_log = logging.getLogger(__name__)


def _stamp(path: Path) -> list[int]:
    info = path.stat()
    return [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino]


def cache_problem(folder: str | Path, identity: dict[str, Any]) -> str | None:
    """Why ``folder`` cannot be used as the cache for ``identity`` (None: it is intact).

    ``identity`` holds the manifest keys that name what was cached (e.g. the GGUF's sha256); a
    manifest with other values, files missing, resized or with another sha256, or files the
    manifest does not list are all problems. Files that pass a full hash get their stamp refreshed.
    """
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not folder.is_dir():
        return "missing"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files, verified = manifest["files"], manifest.get("verified", {})
        if not (isinstance(files, dict) and isinstance(verified, dict) and all(
                isinstance(r, dict) and isinstance(r.get("size"), int) and isinstance(r.get("sha256"), str)
                for r in files.values())):
            raise TypeError("files is not a table of sizes and sha256s")
    except FileNotFoundError:
        return f"it has no {MANIFEST} (an interrupted build)"
    except KeyError:
        return "it was made without recorded file hashes (by an older confidently)"
    except (OSError, ValueError, TypeError, RecursionError) as error:
        return f"its {MANIFEST} is unreadable ({type(error).__name__}: {error})"
    for key, value in identity.items():
        if manifest.get(key) != value:
            return f"its manifest says {key}={manifest.get(key)!r}, expected {value!r}"
    present = {p.name for p in folder.iterdir()} - {MANIFEST}
    if present - set(files):
        return f"it holds files its manifest does not list: {', '.join(sorted(present - set(files)))}"
    refreshed = False
    for name, record in files.items():
        path = folder / name
        if not path.is_file():
            return f"{name} is missing"
        stamp = _stamp(path)
        if stamp[0] != record["size"]:
            return f"{name} has {stamp[0]:,} bytes, {record['size']:,} were written (truncated or replaced)"
        if verified.get(name) == stamp:
            continue
        if sha256_file(path) != record["sha256"]:
            return f"{name} changed since it was written (its sha256 differs)"
        verified[name] = stamp
        refreshed = True
    if refreshed:
        with contextlib.suppress(OSError):  # a read-only cache is verified again next time
            atomic_write_json(manifest_path, {**manifest, "verified": verified})
    return None


def ensure_cache(folder: str | Path, identity: dict[str, Any], build: Callable[[Path], None], *,
                 say: Callable[[str], None] | None = None) -> Path:
    """``folder``, verified; built (or rebuilt, saying why in one line) by ``build(staging)`` if needed.

    ``build`` writes the cache's files into the empty staging folder it is given; the manifest is
    added here. Concurrent callers wait for the one that builds.
    """
    folder = Path(folder)
    say = say or _log.warning
    if cache_problem(folder, identity) is None:
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(folder.with_name(folder.name + ".lock"), folder, say):
        problem = cache_problem(folder, identity)  # another process may have built it meanwhile
        if problem is None:
            return folder
        if problem != "missing":
            say(f"the cache {folder} is not usable: {problem}; discarding it and rebuilding")
        _remove_leftovers(folder)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".partial", dir=folder.parent))
        try:
            build(staging)
            _write_manifest(staging, identity)
            _publish(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_manifest(staging: Path, identity: dict[str, Any]) -> None:
    files, verified = {}, {}
    for path in sorted(staging.iterdir()):
        if path.name == MANIFEST or not path.is_file():
            continue
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())  # the hash is recorded for bytes that are on disk
        files[path.name] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
        verified[path.name] = _stamp(path)
    atomic_write_json(staging / MANIFEST, {**identity, "files": files, "verified": verified})


def _publish(staging: Path, folder: Path) -> None:
    """Put ``staging`` in place of ``folder``: two renames, so no reader sees a half-built folder."""
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
        os.replace(folder, old / folder.name)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, folder)


def _remove_leftovers(folder: Path) -> None:
    """Staging and discarded folders of builds that died (only called while holding the lock)."""
    for pattern in (f".{folder.name}.*.partial", f".{folder.name}.*.old", f"{folder.name}.partial"):
        for path in folder.parent.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path, folder: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_path`` (released by the OS if the process dies)."""
    try:
        import fcntl
    except ImportError:  # no flock on Windows: unique staging folders still keep builds apart
        yield
        return
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another process building {folder}…")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
