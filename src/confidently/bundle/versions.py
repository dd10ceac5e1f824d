"""Recalibrated versions of a calibration bundle: ``FOLDER/versions/vN``, each a complete bundle.

A bundle folder (an ``evaluate`` run folder, a ``finetune`` adapter folder) is version 1.
``confidently recalibrate`` writes version N+1 into ``versions/vN+1`` with
:func:`~confidently.bundle.bundle.write_bundle` (same model identity and task as the folder's own, a new
calibrator and policy), so every version is read back through :func:`~confidently.bundle.bundle.read_bundle`
with every file's hash checked. Nothing is overwritten or deleted; ``serve`` applies the newest.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confidently.bundle.bundle import MANIFEST_FILE, Bundle, read_bundle, write_bundle
from confidently.errors import ArtifactError
from confidently.files import current_umask, read_json, sha256_file

VERSIONS_DIR = "versions"
_VERSION_NAME = re.compile(r"^v([0-9]+)$")


@dataclass(frozen=True)
class BundleVersion:
    """Version ``number`` of a bundle folder (1 is the folder's own bundle)."""

    number: int
    bundle: Bundle

    @property
    def label(self) -> str:
        return version_label(self.bundle, self.number)


def version_label(bundle: Bundle, number: int) -> str:
    """What replies name a version by: its manifest's sha256 (12 hex digits, pinning every file) and number."""
    return f"{bundle.manifest_sha256[:12]}.v{number}"


def version_numbers(folder: str | Path) -> list[int]:
    """The numbers of the recalibrated versions under ``folder/versions``, ascending."""
    root = Path(folder) / VERSIONS_DIR
    return sorted(int(m.group(1)) for p in (root.iterdir() if root.is_dir() else ())
                  if (m := _VERSION_NAME.match(p.name)) and p.is_dir())


def latest_version(folder: str | Path, root: Bundle | None = None) -> BundleVersion:
    """The newest version of the bundle in ``folder``.

    ``root`` is the folder's own bundle when already read, or any version of it (all share its model
    and task); without it the folder's bundle is read, every file hashed (an adapter's weights too).

    Raises
    ------
    ArtifactError
        The newest version's files are missing or changed (:func:`read_bundle`), it was fitted for
        another model or task than the folder's own bundle, or it descends from another bundle than
        the folder's (versions left from a bundle written into the folder before this one).
    """
    numbers = version_numbers(folder)
    root = root if root is not None else read_bundle(folder)
    if not numbers:
        return BundleVersion(1, root)
    bundle = read_bundle(Path(folder) / VERSIONS_DIR / f"v{numbers[-1]}")
    bundle.check_task(root.task, root.chat)
    bundle.check_model(root.model.weights_id, root.model.adapter_sha256, name=root.model.name)
    _check_lineage(Path(folder), bundle, numbers[-1])
    return BundleVersion(numbers[-1], bundle)


def _check_lineage(folder: Path, newest: Bundle, number: int) -> None:
    """Refuse version ``number`` unless each version down to the folder's own bundle was recalibrated from
    the one before, as recorded (``fitted_on.parent_manifest_sha256``; a version that records no parent is
    taken as it is). Only manifests are read: each pins its bundle's other files."""
    fitted_on, child = newest.fitted_on, number
    while child > 1 and isinstance(fitted_on.get("parent_manifest_sha256"), str):
        parent = fitted_on.get("parent_version", child - 1)
        if not isinstance(parent, int) or isinstance(parent, bool) or not 1 <= parent < child:
            raise ArtifactError(f"{folder / VERSIONS_DIR / f'v{child}'}: parent_version {parent!r} is not an earlier "
                                "version")
        where = folder if parent == 1 else folder / VERSIONS_DIR / f"v{parent}"
        manifest = where / MANIFEST_FILE
        if not manifest.is_file() or sha256_file(manifest) != fitted_on["parent_manifest_sha256"]:
            raise ArtifactError(
                f"{folder / VERSIONS_DIR / f'v{child}'} was recalibrated from another bundle than {where} holds now "
                f"(a bundle written into {folder} after it): the versions under {folder / VERSIONS_DIR} are stale; "
                "move them away, and recalibrate the new bundle if needed")
        if parent == 1:
            return
        data = read_json(manifest)  # its hash matched what the child recorded, so it is the parent's own
        fitted_on = data.get("fitted_on") if isinstance(data, dict) and isinstance(data.get("fitted_on"), dict) else {}
        child = parent


def write_version(root: Bundle, number: int, **bundle_fields: Any) -> BundleVersion:
    """Write version ``number`` of ``root`` (fields as :func:`write_bundle` takes them, model and task
    the root's), complete in a staging folder first and then renamed into place.

    Raises
    ------
    ArtifactError
        Version ``number`` exists already (another run wrote it): nothing is overwritten.
    """
    versions = root.folder / VERSIONS_DIR
    versions.mkdir(exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".v{number}.", dir=versions))
    target = versions / f"v{number}"
    try:
        write_bundle(staging, model=root.model, task=root.task, chat=root.chat, **bundle_fields)
        os.chmod(staging, 0o777 & ~current_umask())  # mkdtemp makes it private
        try:
            os.rename(staging, target)  # fails when the target exists: nothing is overwritten
        except OSError:
            raise ArtifactError(f"{target} already exists: another recalibration wrote version {number}; "
                                "run again to build on it") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BundleVersion(number, read_bundle(target))
