"""Resumable training checkpoints, without pickle: tensors in safetensors, everything else in JSON.

A checkpoint folder (``<out>.checkpoint/``, replaced as a whole on every save) holds::

    adapter.safetensors   the adapter's current weights
    best.safetensors      the weights at the best validation loss so far
    trainer.safetensors   AdamW state tensors and the torch RNG state(s)
    state.json            step, evaluations, early-stopping counters, optimizer hyperparameters,
                          and the identity of the run (data hash, settings, base weights)

The learning-rate schedule is a pure function of the step and the data order a pure function of
the seed and the step, so the step restores both. A checkpoint is refused for another run.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from confidently.errors import ArtifactError
from confidently.finetune.artifacts import atomic_folder
from confidently.files import atomic_write_json

STATE_FILE = "state.json"


@dataclass
class Progress:
    """Where training stands; saved in ``state.json``.

    ``train_seconds`` is the time spent in optimizer steps (evaluations and checkpoints excluded),
    summed over resumed sessions. ``history`` has one entry per evaluation (step, mean train loss
    since the previous one, validation loss and accuracy); ``losses_since_eval`` holds the train
    losses of the steps since the last one.
    """

    step: int = 0
    examples_seen: int = 0
    train_seconds: float = 0.0
    best_loss: float = math.inf
    best_step: int = 0
    evals_since_best: int = 0
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)
    losses_since_eval: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["best_loss"] = None if math.isinf(self.best_loss) else self.best_loss
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        """Rebuild from :meth:`to_dict`; anything else raises ``ValueError`` naming the field."""
        if not isinstance(data, dict) or set(data) != {f.name for f in fields(cls)}:
            raise ValueError(f"progress must hold exactly {', '.join(f.name for f in fields(cls))}")
        for name in ("step", "examples_seen", "best_step", "evals_since_best"):
            if not (isinstance(data[name], int) and not isinstance(data[name], bool) and data[name] >= 0):
                raise ValueError(f"progress.{name} must be a whole number >= 0; got {data[name]!r}")
        if not _finite(data["train_seconds"]) or data["train_seconds"] < 0:
            raise ValueError(f"progress.train_seconds must be a number >= 0; got {data['train_seconds']!r}")
        if data["best_loss"] is not None and not _finite(data["best_loss"]):
            raise ValueError(f"progress.best_loss must be a number or null; got {data['best_loss']!r}")
        if not isinstance(data["stopped_early"], bool):
            raise ValueError("progress.stopped_early must be true or false")
        if not (isinstance(data["history"], list) and all(isinstance(h, dict) for h in data["history"])):
            raise ValueError("progress.history must be a list of objects")
        if not (isinstance(data["losses_since_eval"], list) and all(map(_finite, data["losses_since_eval"]))):
            raise ValueError("progress.losses_since_eval must be a list of numbers")
        return cls(**{**data, "best_loss": math.inf if data["best_loss"] is None else data["best_loss"]})


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def checkpoint_dir(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".checkpoint")


def save_checkpoint(folder: Path, *, weights: dict, best: dict, optimizer, rng: dict, progress: Progress,
                    identity: dict[str, Any]) -> None:
    """Write a complete checkpoint, replacing the previous one only once every file is written."""
    from safetensors.torch import save_file

    tensors, optimizer_meta = _flatten_optimizer(optimizer.state_dict())
    tensors.update({f"rng.{name}": state for name, state in rng.items()})
    try:
        with atomic_folder(folder) as staging:
            save_file(weights, str(staging / "adapter.safetensors"))
            save_file(best, str(staging / "best.safetensors"))
            save_file(tensors, str(staging / "trainer.safetensors"))
            atomic_write_json(staging / STATE_FILE, {"identity": identity, "progress": progress.to_dict(),
                                                     "optimizer": optimizer_meta, "rng": sorted(rng)})
    except OSError as error:
        raise ArtifactError(f"could not write the checkpoint {folder}: {error.strerror or error}; "
                            "the previous checkpoint is unchanged") from error


def load_checkpoint(folder: Path, *, optimizer, identity: dict[str, Any]) -> tuple[dict, dict, dict, Progress]:
    """Read a checkpoint into ``optimizer``; returns (weights, best weights, RNG states, progress).

    Raises
    ------
    ArtifactError
        When the checkpoint is missing, unreadable, or was made by a run with other data or settings.
    """
    from safetensors.torch import load_file

    try:
        state = json.loads((folder / STATE_FILE).read_text(encoding="utf-8"))
        weights = load_file(str(folder / "adapter.safetensors"))
        best = load_file(str(folder / "best.safetensors"))
        tensors = load_file(str(folder / "trainer.safetensors"))
    except (OSError, ValueError, RecursionError) as error:  # ValueError: bad UTF-8 / JSON / safetensors
        raise ArtifactError(f"cannot resume from {folder}: {error}") from None
    damaged = f"cannot resume from {folder}: its {STATE_FILE} is damaged"
    if not (isinstance(state, dict) and isinstance(state.get("identity"), dict)
            and isinstance(state.get("optimizer"), dict) and isinstance(state.get("rng"), list)):
        raise ArtifactError(f"{damaged}: expected identity, progress, optimizer and rng; delete the folder to "
                            "start over")
    changed = sorted(k for k in set(identity) | set(state["identity"]) if identity.get(k) != state["identity"].get(k))
    if changed:
        raise ArtifactError(f"the checkpoint in {folder} was made by a run with other {', '.join(changed)}; "
                            "rerun with the same data and settings, or delete it to start over")
    try:
        progress = Progress.from_dict(state.get("progress"))
        rng = {name: tensors[f"rng.{name}"] for name in state["rng"]}
        optimizer.load_state_dict(_unflatten_optimizer(tensors, state["optimizer"]))
    except (AttributeError, KeyError, TypeError, ValueError, IndexError, RuntimeError) as error:
        # What torch's load_state_dict and the unflattening raise for a state that does not fit
        raise ArtifactError(f"{damaged} ({type(error).__name__}: {error}); delete the folder to start over") from None
    return weights, best, rng, progress


def _flatten_optimizer(state_dict: dict) -> tuple[dict, dict]:
    """Split an optimizer ``state_dict`` into named tensors and a JSON-able remainder."""
    import torch

    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict, meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = [{**group, "betas": tuple(group["betas"])} if "betas" in group else group
              for group in meta["param_groups"]]
    return {"state": state, "param_groups": groups}
