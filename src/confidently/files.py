"""Atomic file writes and content hashes, shared by every stage that saves something.

A write goes to a temporary file in the destination folder and is renamed over the target only
when complete, so a crash or a full disk never leaves a half-written file in place of a good one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from confidently.errors import ArtifactError

T = TypeVar("T")


_TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed onto ``path``.

    On any exception the temporary file is removed and ``path`` keeps its previous content.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=_TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file private (0600); give it the permissions a plain open() would.
    os.chmod(tmp, 0o666 & ~current_umask())
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path: str | Path, *, in_folder: bool = False) -> list[Path]:
    """Delete the temporary files :func:`atomic_path` left for ``path`` (with ``in_folder``: for any
    file in the folder ``path``) when a process was killed before renaming them; returns them.

    Call it only where no other process writes the same target at the same time.
    """
    path = Path(path)
    folder, pattern = (path, f".*.*{_TMP_SUFFIX}") if in_folder else (path.parent, f".{path.name}.*{_TMP_SUFFIX}")
    removed = [p for p in folder.glob(pattern) if p.is_file()]
    for p in removed:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
    return removed


def current_umask() -> int:
    """The process's umask (reading it means setting it, so it is put straight back)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays reach JSON from metrics and calibrators
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def read_json(path: str | Path) -> Any:
    """Read a JSON artifact; a missing or malformed file raises :class:`ArtifactError` naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise ArtifactError(f"{path}: no such file") from None
    except (OSError, ValueError) as error:  # ValueError: bad UTF-8, bad JSON, an integer of > 4300 digits
        raise ArtifactError(f"{path}: not a readable JSON file: {error}") from None
    except RecursionError:
        raise ArtifactError(f"{path}: not a usable JSON file: nested too deeply to read") from None


def read_artifact(path: str | Path, parse: Callable[[Any], T]) -> T:
    """``parse`` the JSON artifact at ``path``; its :class:`ArtifactError` is prefixed with the file's path."""
    data = read_json(path)
    try:
        return parse(data)
    except ArtifactError as error:
        raise ArtifactError(f"{path}: {error}") from None


def check_format(data: Any, *, format: str, version: int, what: str) -> None:
    """Refuse ``data`` unless it is an object of ``format`` at ``version`` (the header of every saved artifact).

    ``what`` names the artifact in the one-line error (``"not a confidently canary: ..."``). A JSON
    ``true`` is not version 1, and a version is shown shortened, however large a corrupt file made it.
    """
    if not isinstance(data, Mapping) or data.get("format") != format:
        raise ArtifactError(f"not a confidently {what}: expected format {format!r}")
    found = data.get("format_version")
    if found != version or isinstance(found, bool):
        shown = repr(found) if len(repr(found)) <= 60 else repr(found)[:57] + "..."
        raise ArtifactError(f"{what} format_version {shown} is not supported (this version of confidently reads "
                            f"{version}); rewrite it with this version or upgrade confidently")
