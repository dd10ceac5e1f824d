"""The ``confidently`` command line. Each module registers its commands on :data:`app`."""

from confidently.cli.app import app, main
from confidently.cli import data as _data  # noqa: F401  (registers commands)

__all__ = ["app", "main"]
