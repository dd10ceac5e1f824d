"""Which texts a bundle was fitted on or saw: ``seen_texts.json``, so accuracy on them is not taken for out-of-sample.

``evaluate`` and ``finetune`` write it as an extra payload (hashed in the manifest like the rest); a
recalibrated version carries its root's, with the reviewed texts it was refitted or judged on added. ``score``
and ``compare`` given labels count the rows whose text the bundle saw, warn, and state their figures on the
unseen rows too (:class:`confidently.workflows.labelled.SeenRows`).

Each text is recorded as the first :data:`PREFIX_HEX` hex digits of the sha256 of its UTF-8 bytes, the
hash the score cache keys rows by (:func:`confidently.scoring.checkpointed.text_key`; no normalisation:
the model sees the text as given, so a text differing by a space is another text). 64 bits: with 10^6
recorded texts, a scored text that was not seen matches one by chance with probability about
10^6 / 2^64 ≈ 5e-14, so 10^6 scored rows expect about 5e-8 false matches.

Roles: ``calibration`` (the rows the calibrator and policy were fitted on), ``shots`` (worked examples in
the prompt, or the nearest-shot pool), ``training`` and ``validation`` (a fine-tuned adapter's),
``feedback`` (the reviewed texts a recalibrated version was refitted on), ``feedback-holdout`` (the reviewed
texts held out to judge it: it was adopted for doing better on them). Bundles
written before the payload existed have none: what they saw is unknown (:meth:`SeenTexts.from_bundle`
returns None).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from confidently.errors import ArtifactError

if TYPE_CHECKING:
    from confidently.bundle.bundle import Bundle

SEEN_FILE = "seen_texts.json"
SEEN_FORMAT = "confidently.seen_texts"
SEEN_VERSION = 1
PREFIX_HEX = 16
ROLES = ("calibration", "shots", "training", "validation", "feedback", "feedback-holdout")
HOW = (f"first {PREFIX_HEX} hex digits of sha256(text as UTF-8), no normalisation (the score cache's text_key); "
       "sorted, one list per role")


def fingerprint(text: str) -> str:
    """A text's fingerprint as :data:`SEEN_FILE` records it."""
    from confidently.scoring.checkpointed import text_key

    return text_key(text)[:PREFIX_HEX]


def seen_payload(roles: Mapping[str, Iterable[str]], *, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON payload for texts by role (``roles``: role in :data:`ROLES` -> texts); ``notes`` say what is
    known to be missing (feedback texts a recalibrated version was fitted on, say)."""
    unknown = sorted(set(roles) - set(ROLES))
    if unknown:
        raise ValueError(f"seen-text roles must be among {', '.join(ROLES)}; got {', '.join(unknown)}")
    return SeenTexts({role: frozenset(fingerprint(t) for t in texts) for role, texts in roles.items()},
                     tuple(notes)).to_dict()


@dataclass(frozen=True)
class SeenOverlap:
    """Which of some texts a bundle saw: ``seen`` one bool per text, ``by_role`` role -> how many texts."""

    seen: np.ndarray
    by_role: dict[str, int] = field(default_factory=dict)

    @property
    def n_seen(self) -> int:
        return int(self.seen.sum())

    def describe(self) -> str:
        """``'3 as calibration, 1 as shots'``: how many texts the bundle saw in each role."""
        return ", ".join(f"{n} as {role}" for role, n in self.by_role.items() if n)

    def warning(self, bundle_folder, figures: str) -> str:
        """The one-line warning: how many of the rows the bundle at ``bundle_folder`` saw, in which roles,
        and what that makes of ``figures`` (e.g. ``'figures over all rows are partly in-sample'``)."""
        return (f"warning: {self.n_seen} of {self.seen.size} labelled rows have texts the bundle {bundle_folder} "
                f"saw when it was fitted ({self.describe()}): {figures}")


@dataclass(frozen=True)
class SeenTexts:
    """A bundle's :data:`SEEN_FILE`: fingerprints by role, and notes on what it does not record."""

    roles: dict[str, frozenset[str]]
    notes: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, where: str) -> SeenTexts:
        if not isinstance(data, dict) or data.get("format") != SEEN_FORMAT or data.get("version") != SEEN_VERSION:
            raise ArtifactError(f"{where}: expected format {SEEN_FORMAT!r} version {SEEN_VERSION}")
        roles = data.get("roles")
        if not isinstance(roles, dict) or not set(roles) <= set(ROLES) or not all(
                isinstance(keys, list) and all(isinstance(k, str) and len(k) == PREFIX_HEX for k in keys)
                for keys in roles.values()):
            raise ArtifactError(f"{where}: 'roles' must map roles among {', '.join(ROLES)} to lists of "
                                f"{PREFIX_HEX}-digit fingerprints")
        notes = data.get("notes", [])
        if not isinstance(notes, list) or not all(isinstance(n, str) for n in notes):
            raise ArtifactError(f"{where}: 'notes' must be a list of strings")
        return cls({role: frozenset(keys) for role, keys in roles.items()}, tuple(notes))

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> SeenTexts | None:
        """The bundle's record (hash-checked when the bundle was read); None when it has none (unknown)."""
        if SEEN_FILE not in bundle.extras:
            return None
        return cls.from_dict(bundle.extras[SEEN_FILE], str(bundle.folder / SEEN_FILE))

    def to_dict(self) -> dict[str, Any]:
        return {"format": SEEN_FORMAT, "version": SEEN_VERSION, "how": HOW,
                "roles": {role: sorted(keys) for role, keys in self.roles.items()}, "notes": list(self.notes)}

    def with_role(self, role: str, texts: Iterable[str], *notes: str) -> SeenTexts:
        """This record with ``texts`` (fingerprinted) as ``role``, replacing any there, and ``notes`` added."""
        if role not in ROLES:
            raise ValueError(f"seen-text roles must be among {', '.join(ROLES)}; got {role}")
        return SeenTexts({**self.roles, role: frozenset(fingerprint(t) for t in texts)}, (*self.notes, *notes))

    def overlap(self, texts: Sequence[str]) -> SeenOverlap:
        """Which of ``texts`` the bundle saw, and how many in each role (a text in two roles counts in both)."""
        keys = [fingerprint(t) for t in texts]
        by_role = {role: sum(k in seen for k in keys) for role, seen in self.roles.items()}
        every = frozenset().union(*self.roles.values())
        return SeenOverlap(np.array([k in every for k in keys], dtype=bool), by_role)
