"""Error replies never show where things live on the server: absolute paths are cut down.

A path below a known root (the adapters folder) becomes relative to it, which is how admins name
adapters in requests; any other absolute path keeps only its last component. The server's log
keeps the full paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

#: An absolute POSIX path, starting a word (so the path part of a URL, after "host", is left alone).
_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/[^\s'\"`),;\]]*")


def redact_paths(message: str, roots: Iterable[Path] = ()) -> str:
    """``message`` with paths below ``roots`` made relative to them and other absolute paths cut to their name."""
    for root in roots:
        message = message.replace(str(root) + os.sep, "").replace(str(root), ".")
    return _ABSOLUTE_PATH.sub(lambda match: PurePosixPath(match.group()).name or "/", message)
