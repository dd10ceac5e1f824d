"""The adapters a server holds on its one base model, and the only place adapter paths are resolved.

Reads (``get``, ``infos``) happen on the event loop; changes (``load``, ``unload``) run on the model's
worker thread. Changes replace the whole mapping, so a reader always sees a consistent one. Whatever
goes wrong while loading one adapter (a bad manifest, unreadable weights, a library's own exception)
becomes an :class:`~confidently.errors.ArtifactError` naming that adapter: at start-up it is logged
and skipped, at run time it is the admin's 4xx reply.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePath
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confidently.bundle.bundle import MANIFEST_FILE
from confidently.monitoring.canary import CanaryCheck, CanaryFailedError
from confidently.errors import ArtifactError, BackendError, BundleMismatchError, ConfidentlyError
from confidently.server.metrics import Metrics
from confidently.server.schemas import ADAPTER_NAME_PATTERN, ModelInfo
from confidently.server.served import Served, engine_error

if TYPE_CHECKING:
    from confidently.backends.base import Backend

log = logging.getLogger("confidently.server")


class UnknownAdapterError(ArtifactError, KeyError):
    """A request named an adapter that is not loaded."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class AdapterPathError(ArtifactError):
    """An adapter name or path would leave the adapters folder, or there is no adapters folder."""


class AdapterLoadError(ArtifactError):
    """An adapter's files are there but could not be loaded (e.g. truncated or corrupt weights)."""


class AdapterReloadedError(ArtifactError):
    """An adapter was replaced while a request's work items were being scored with it."""


class AdapterRegistry:
    """The base model and the loaded adapters, by name.

    Parameters
    ----------
    backend : the one base model every adapter is loaded onto: a local model, or a serving engine
        that serves the adapters itself (each under its model name, :meth:`Backend.served_as`).
    base : the base model's entry (``name`` None).
    adapters_dir : the only folder adapters may be loaded from; None forbids loading.
    scoring : batch size and text caps of every entry's classifier (:attr:`Settings.scoring`).
    """

    def __init__(self, backend: Backend, base: Served, *, adapters_dir: Path | None,
                 scoring: Mapping[str, Any], canary: str = "refuse"):
        self.backend = backend
        self.base = base
        self.adapters_dir = None if adapters_dir is None else adapters_dir.resolve()
        self.scoring = dict(scoring)
        self.canary = canary
        self._adapters: dict[str, Served] = {}
        #: The last canary check of each entry whose bundle carries one, by its metrics name (reported at
        #: /metrics and the drift endpoint; kept when ``--canary mark`` serves a failed one).
        self.canaries: dict[str, CanaryCheck] = {}

    def __len__(self) -> int:
        return len(self._adapters)

    def get(self, name: str | None) -> Served:
        if name is None:
            return self.base
        try:
            return self._adapters[name]
        except KeyError:
            loaded = ", ".join(sorted(self._adapters)) or "none"
            raise UnknownAdapterError(f"no adapter named {name!r} is loaded (loaded: {loaded})") from None

    def infos(self) -> list[ModelInfo]:
        return [served.info() for _, served in sorted(self._adapters.items())]

    def resolve(self, name: str, path: str | None = None) -> tuple[Path, str]:
        """The adapter folder for ``name`` (or ``path``, relative to the adapters folder), and that relative path.

        Raises
        ------
        AdapterPathError
            If there is no adapters folder, or the name or path is absolute, malformed, or resolves
            (after ``..`` and symbolic links) outside the adapters folder.
        """
        if self.adapters_dir is None:
            raise AdapterPathError("this server has no adapters folder: start it with --adapters DIR")
        if not re.fullmatch(ADAPTER_NAME_PATTERN, name):
            raise AdapterPathError(f"invalid adapter name {name!r}: use letters, digits, '.', '_' and '-', "
                                   "starting with a letter or digit")
        relative = name if path is None else path
        if PurePath(relative).is_absolute() or "\\" in relative or "\x00" in relative:
            raise AdapterPathError(f"adapter path {relative!r} must be relative to the adapters folder")
        folder = (self.adapters_dir / relative).resolve()
        if folder == self.adapters_dir or not folder.is_relative_to(self.adapters_dir):
            raise AdapterPathError(f"adapter path {relative!r} is outside the adapters folder")
        return folder, folder.relative_to(self.adapters_dir).as_posix()

    # -- on the model's worker thread only ---------------------------------------------------------
    def load(self, name: str, path: str | None = None) -> Served:
        """Check and load an adapter (replacing one of the same name) and return its entry."""
        folder, relative = self.resolve(name, path)
        if not folder.is_dir():
            raise UnknownAdapterError(f"no adapter folder {relative!r} in the adapters folder")
        try:
            served = Served.adapter(self.backend, name, folder, relative=relative, scoring=self.scoring)
            # Checked before the adapter it replaces is unloaded, so a broken replacement keeps the old one.
            _check_weights(folder)
            # Unload first: the backend caches the prompt prefix per adapter name, which would go stale.
            self.backend.unload_adapter(name)
            self._adapters = {k: v for k, v in self._adapters.items() if k != name}
            self.backend.load_adapter(folder, name, activate=False)
        except ConfidentlyError:
            raise
        except Exception as error:  # libraries raise many types for unreadable files; name the adapter
            raise AdapterLoadError(f"adapter {name!r} ({relative}) could not be loaded: "
                                   f"{type(error).__name__}: {error}") from error
        try:
            served.check_loaded()  # the weights loaded are the ones the bundle was read with
            self._check_canary(served)
        except ConfidentlyError:
            self.backend.unload_adapter(name)
            raise
        self._adapters = {**self._adapters, name: served}
        return served

    def _check_canary(self, served: Served) -> None:
        """Re-score the bundle's golden prompts; refuse the entry (or log it as unhealthy) when they moved.

        Raises
        ------
        CanaryFailedError
            With ``--canary refuse``, when the largest deviation exceeds the canary's tolerance.
        """
        key = Metrics.BASE if served.name is None else served.name
        self.canaries.pop(key, None)
        canary = served.canary
        if served.weights_checked_by == "canary" and (canary is None or self.canary == "off"):
            bundle = served.bundle
            why = "the bundle carries no canary.json" if canary is None else "--canary off skips it"
            raise BundleMismatchError(
                f"{served.describe()} refused: its bundle {bundle.folder} was fitted on {bundle.model.describe()}, "
                f"and the engine's weights cannot be hashed from here: only the bundle's canary, re-scored through "
                f"the engine, can show they are the same, and {why}; use a bundle written by `confidently "
                "evaluate` or `finetune` (they carry one), or fit one on the engine (`confidently evaluate "
                "--backend openai --base-url URL`)")
        if self.canary == "off" or canary is None:
            return
        self.backend.set_adapter(served.name)
        try:
            probs = served.classifier.score(list(canary.texts)).probs
        except BackendError as error:
            raise engine_error(served, error) from None
        check = canary.check(probs)
        self.canaries[key] = check
        if check.passed:
            log.info("%s: %s", served.describe(), check.describe())
            return
        if self.canary == "refuse":
            raise CanaryFailedError(f"{served.describe()} refused: {check.describe()}; its calibrator does not "
                                    "hold for the model as it scores here")
        log.error("%s is unhealthy: %s", served.describe(), check.describe())

    def check_base(self) -> None:
        """Run the base model's canary (when its calibration bundle carries one), as adapters' run at load."""
        self._check_canary(self.base)

    def refresh_versions(self) -> None:
        """Apply any newer recalibrated version (``versions/vN`` beside a bundle) without reloading weights."""
        for name, served in [(None, self.base), *sorted(self._adapters.items())]:
            try:
                newer = served.with_latest_version()
            except ConfidentlyError as error:
                log.error("%s: newer calibration version not applied: %s", served.describe(), error)
                continue
            if newer is served:
                continue
            if name is None:
                self.base = newer
            elif self._adapters.get(name) is served:
                self._adapters = {**self._adapters, name: newer}
            log.info("%s: now deciding with calibration version %s", newer.describe(), newer.bundle_version)

    def unload(self, name: str) -> Served:
        served = self.get(name)
        self._adapters = {k: v for k, v in self._adapters.items() if k != name}
        self.backend.unload_adapter(name)
        return served

    def load_all(self) -> None:
        """Load every adapter folder found directly in the adapters folder; log and skip broken ones.

        Locally an adapter folder holds PEFT's ``adapter_config.json``; for a serving engine, which holds
        the weights itself, a bundle's ``manifest.json`` is enough.
        """
        if self.adapters_dir is None:
            return
        marker = "adapter_config.json" if self.backend.hashes_weights else MANIFEST_FILE
        for folder in sorted(self.adapters_dir.iterdir()):
            if not (folder / marker).exists():
                continue
            try:
                self.load(folder.name)
            except Exception as error:  # one broken adapter must not keep the others from being served
                log.error("adapter %s not loaded: %s", folder.name, error)


def _check_weights(folder: Path) -> None:
    """Read the weights file's header, which safetensors checks against the file's size."""
    from safetensors import safe_open

    from confidently.finetune.artifacts import WEIGHTS_FILE

    if (folder / WEIGHTS_FILE).exists():  # a missing file is the backend's to explain
        with safe_open(folder / WEIGHTS_FILE, framework="pt") as weights:
            weights.keys()
