"""Every error confidently raises on purpose.

Each subclasses a built-in error too, so existing ``except ValueError`` clauses still catch it,
and each message says what was wrong, where (file, line, value) and how to fix it. The CLI turns
these into one line on stderr and exit code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class ConfidentlyError(Exception):
    """Base class of every error raised on purpose by confidently.

    Its text is always one line: a library's message quoted inside it (pyarrow's, torch's) may span
    several, and their line breaks become spaces.
    """

    def __str__(self) -> str:
        return one_line(super().__str__())


def one_line(text: str) -> str:
    """``text`` with every line break (and the indentation after it) replaced by one space."""
    return " ".join(part.strip() for part in text.splitlines() if part.strip()) if "\n" in text or "\r" in text \
        else text


class DataError(ConfidentlyError, ValueError):
    """A data file or a value in it is malformed.

    The message is prefixed with ``path:line:`` when they are known.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class TaskError(ConfidentlyError, ValueError):
    """A task (prompt template, labels, label words) cannot be used with this model."""


class UnknownModelError(ConfidentlyError, KeyError):
    """A model name is neither a registry name, a local path nor a hub id that can be reached."""

    def __str__(self) -> str:  # KeyError would quote the message
        return one_line(str(self.args[0]))


class ModelLoadError(ConfidentlyError, RuntimeError):
    """Model weights were found but could not be loaded or verified."""


class BackendError(ConfidentlyError, RuntimeError):
    """A scoring backend failed (server down, malformed reply, missing logprobs)."""


class NotFittedError(ConfidentlyError, ValueError, AttributeError):
    """A calibrator or policy was used before ``fit``."""


class CalibrationError(ConfidentlyError, ValueError):
    """A calibrator cannot be fitted on the data given (one class only, too few examples)."""


class ArtifactError(ConfidentlyError, ValueError):
    """A saved artifact (calibrator, adapter, manifest) is missing, corrupt or for another model."""


class BundleMismatchError(ArtifactError):
    """A calibration bundle was fitted for other model weights, another adapter or another task."""


class ConfigError(ConfidentlyError, ValueError):
    """A configuration value, or a combination of values, is out of range (the message names them)."""


class UnfinishedRunError(ConfidentlyError, FileExistsError):
    """An earlier run's checkpoint is where this run would write: resume it or delete it."""


class OutputBusyError(ConfidentlyError, RuntimeError):
    """Another run is writing the same output (the message names it and the process holding it)."""
