"""The training loop: AdamW on the LoRA weights, gradient accumulation, validation, early stopping, resume.

One optimizer step sees ``grad_accum`` length-bucketed batches; the loss is the mean cross-entropy
over the answer tokens of the step. The validation rows are scored every ``eval_every`` steps and at
the end; the weights with the lowest validation loss are kept. A checkpoint is written every
``checkpoint_every`` steps, at every evaluation and when the run is interrupted (Ctrl-C is deferred
to the end of the current step so the checkpoint is consistent), and ``resume=True`` continues
from it exactly: same weights, optimizer moments, learning rate, data order and dropout RNG.
"""

from __future__ import annotations

import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from confidently.finetune.checkpoint import Progress, load_checkpoint, save_checkpoint
from confidently.finetune.config import FinetuneConfig
from confidently.finetune.data import EncodedSet, bucketed_batches, collate
from confidently.finetune.model import answer_logits, answer_loss, load_trainable_state, trainable_state
from confidently.progress import progress_bar
from confidently.tasks.task import Verbalizer

#: Evaluations per run when ``eval_every`` is not given.
EVALUATIONS_PER_RUN = 8


@dataclass(frozen=True)
class TrainingResult:
    """What a run did.

    ``validation`` holds the metrics of the kept (best) weights; ``seconds`` is this session's wall
    time; ``examples_per_second`` is the training throughput of the optimizer steps (forward and
    backward, evaluations and checkpoints excluded) over every session of the run.
    """

    progress: Progress
    total_steps: int
    seconds: float
    examples_per_second: float
    validation: dict[str, Any]


class Schedule:
    """Step counts, the learning rate of each step, and which rows each step trains on.

    Parameters
    ----------
    n_rows : training rows.
    config : the run's settings (epochs or max_steps, batch size, accumulation, warm-up, seed).
    lengths : token count of each row (for length bucketing).
    """

    def __init__(self, n_rows: int, config: FinetuneConfig, lengths: np.ndarray):
        self.config = config
        self.lengths = lengths
        self.batches_per_epoch = math.ceil(n_rows / config.batch_size)
        if config.max_steps is not None:
            self.total_steps = config.max_steps
        else:
            self.total_steps = max(1, math.ceil(config.epochs * self.batches_per_epoch / config.grad_accum))
        self.warmup_steps = round(config.warmup_ratio * self.total_steps)
        self.eval_every = config.eval_every or max(1, math.ceil(self.total_steps / EVALUATIONS_PER_RUN))
        self._epoch: tuple[int, list[np.ndarray]] | None = None

    def learning_rate(self, step: int) -> float:
        """Linear warm-up to the peak over ``warmup_steps``, then linear decay to 0 at the last step."""
        peak = self.config.learning_rate
        if step < self.warmup_steps:
            return peak * (step + 1) / self.warmup_steps
        return peak * max(0.0, (self.total_steps - step) / max(1, self.total_steps - self.warmup_steps))

    def batches(self, step: int) -> list[np.ndarray]:
        """Row indices of the ``grad_accum`` batches of optimizer step ``step`` (0-based).

        Epoch ``e`` is shuffled by ``default_rng([seed, e])``, so any step's data is known without
        replaying the ones before it.
        """
        out = []
        for micro in range(step * self.config.grad_accum, (step + 1) * self.config.grad_accum):
            epoch, position = divmod(micro, self.batches_per_epoch)
            if self._epoch is None or self._epoch[0] != epoch:
                rng = np.random.default_rng([self.config.seed, epoch])
                self._epoch = (epoch, bucketed_batches(self.lengths, self.config.batch_size,
                                                       self.config.bucket_batches, rng))
            out.append(self._epoch[1][position])
        return out


class Trainer:
    """Trains the adapter attached by :func:`confidently.finetune.model.training_adapter`.

    Parameters
    ----------
    model : the PEFT model (its only trainable parameters are the LoRA weights).
    train, validation : encoded rows.
    config : the run's settings.
    verbalizers : each prompt's verbalizer (one unless the task has a prompt ensemble), to turn validation
        logits into class probabilities; a row's is ``verbalizers[encoded.prompt_index[row]]``.
    pad_id, cache_kwarg : from the backend (padding token; the forward's cache argument name).
    checkpoint : checkpoint folder, or None for no checkpoints.
    identity : what a checkpoint must match to be resumed (data hash, settings, base weights).
    """

    def __init__(self, model, train: EncodedSet, validation: EncodedSet, config: FinetuneConfig, *,
                 verbalizers: Sequence[Verbalizer], pad_id: int, cache_kwarg: str, checkpoint: Path | None,
                 identity: dict[str, Any], show_progress: bool = True):
        import torch

        self.model = model
        self.train_set, self.validation_set = train, validation
        self.config = config
        self.verbalizers = tuple(verbalizers)
        self.pad_id, self.cache_kwarg = pad_id, cache_kwarg
        self.checkpoint, self.identity = checkpoint, identity
        self.show_progress = show_progress
        self.schedule = Schedule(len(train), config, train.lengths)
        self.parameters = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(self.parameters, lr=config.learning_rate,
                                           weight_decay=config.weight_decay)
        self.progress = Progress()
        self.best: dict = {}

    # -- the loop --------------------------------------------------------------------------------
    def run(self, *, resume: bool = False, on_step: Callable[[int], None] | None = None) -> TrainingResult:
        """Train until the last step or early stop; the model ends with the best weights.

        ``on_step(step)`` is called after each optimizer step; raising ``KeyboardInterrupt`` there
        stops the run the way Ctrl-C does (a checkpoint is saved, then the interrupt propagates).
        """
        import torch

        torch.manual_seed(self.config.seed)
        if resume:
            self._restore()
        else:
            self.best = trainable_state(self.model)
        self.model.train()
        start = time.perf_counter()
        remaining = (self.schedule.total_steps - self.progress.step) * self.config.batch_size * self.config.grad_accum
        bar = progress_bar(remaining, "fine-tuning", enabled=self.show_progress)
        with bar as advance, _deferred_interrupt() as stop:
            while self.progress.step < self.schedule.total_steps and not self.progress.stopped_early:
                loss, seen = self._step()
                self.progress.losses_since_eval.append(loss)
                step = self.progress.step
                if step % self.schedule.eval_every == 0 or step == self.schedule.total_steps:
                    self._evaluate()
                    self._save()
                elif step % self.config.checkpoint_every == 0:
                    self._save()
                advance(seen, loss=loss, step=f"{step}/{self.schedule.total_steps}")
                try:
                    if on_step is not None:
                        on_step(step)
                except KeyboardInterrupt:
                    stop.set()
                if stop.is_set():
                    self._save()
                    raise KeyboardInterrupt
        self.model.eval()
        load_trainable_state(self.model, self.best)
        best_eval = next((h for h in self.progress.history if h["step"] == self.progress.best_step), {})
        rate = self.progress.examples_seen / self.progress.train_seconds if self.progress.train_seconds else 0.0
        return TrainingResult(self.progress, self.schedule.total_steps, time.perf_counter() - start, rate, best_eval)

    def _step(self) -> tuple[float, int]:
        """One optimizer step over ``grad_accum`` batches; returns its mean answer loss and rows seen."""
        import torch

        started = time.perf_counter()
        step = self.progress.step
        batches = [collate(self.train_set, index, self.pad_id) for index in self.schedule.batches(step)]
        n_tokens = sum(b.n_answer_tokens for b in batches)
        total = 0.0
        for batch in batches:
            loss = answer_loss(answer_logits(self.model, batch, self.train_set.prefix, self.cache_kwarg), batch)
            (loss / n_tokens).backward()
            total += float(loss.detach())
        if self.config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.parameters, self.config.max_grad_norm)
        for group in self.optimizer.param_groups:
            group["lr"] = self.schedule.learning_rate(step)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        seen = sum(len(b.label_index) for b in batches)
        self.progress.step += 1
        self.progress.examples_seen += seen
        self.progress.train_seconds += time.perf_counter() - started
        return total / n_tokens, seen

    # -- validation ------------------------------------------------------------------------------
    def _evaluate(self) -> None:
        metrics = evaluate(self.model, self.validation_set, self.verbalizers, pad_id=self.pad_id,
                           cache_kwarg=self.cache_kwarg, batch_size=2 * self.config.batch_size)
        self.model.train()
        step = self.progress.step
        train_loss = float(np.mean(self.progress.losses_since_eval))
        self.progress.losses_since_eval = []
        self.progress.history.append({"step": step, "train_loss": train_loss, **metrics})
        if metrics["loss"] < self.progress.best_loss:
            self.progress.best_loss, self.progress.best_step = metrics["loss"], step
            self.progress.evals_since_best = 0
            self.best = trainable_state(self.model)
        else:
            self.progress.evals_since_best += 1
            if self.config.patience and self.progress.evals_since_best >= self.config.patience:
                self.progress.stopped_early = True

    # -- checkpoints -----------------------------------------------------------------------------
    def _save(self) -> None:
        if self.checkpoint is not None:
            save_checkpoint(self.checkpoint, weights=trainable_state(self.model), best=self.best,
                            optimizer=self.optimizer, rng=_rng_state(), progress=self.progress,
                            identity=self.identity)

    def _restore(self) -> None:
        from confidently.errors import ArtifactError

        if self.checkpoint is None or not self.checkpoint.exists():
            raise ArtifactError(f"nothing to resume: no checkpoint at {self.checkpoint}")
        weights, self.best, rng, self.progress = load_checkpoint(self.checkpoint, optimizer=self.optimizer,
                                                                 identity=self.identity)
        load_trainable_state(self.model, weights)
        _set_rng_state(rng)


def evaluate(model, encoded: EncodedSet, verbalizers: Sequence[Verbalizer], *, pad_id: int, cache_kwarg: str,
             batch_size: int) -> dict[str, Any]:
    """Answer loss, accuracy and ECE of ``model`` on ``encoded`` (eval mode, no gradient), over every row (every
    text asked each way, with a prompt ensemble).

    Class probabilities come from the position that predicts the first answer token, through the row's
    prompt's verbalizer's single-token variants, as scoring computes them.
    """
    import torch

    from confidently.metrics import metric_function

    model.eval()
    order = np.argsort(encoded.lengths, kind="stable")
    loss_sum, tokens = 0.0, 0
    probs = np.zeros((len(encoded), len(verbalizers[0].labels)))
    with torch.no_grad():
        for start in range(0, order.size, batch_size):
            index = order[start:start + batch_size]
            batch = collate(encoded, index, pad_id)
            logits = answer_logits(model, batch, encoded.prefix, cache_kwarg)
            loss_sum += float(answer_loss(logits, batch))
            tokens += batch.n_answer_tokens
            first = [batch.keep - len(encoded.answers[i]) for i in index]
            logprobs = torch.log_softmax(logits[torch.arange(len(index)), first], dim=-1).cpu().numpy()
            asked = encoded.prompt_index[index]
            mass = np.zeros((len(index), probs.shape[1]))
            for prompt in np.unique(asked):
                mass[asked == prompt] = verbalizers[prompt].class_mass(logprobs[asked == prompt])
            probs[index] = mass / np.maximum(mass.sum(axis=1, keepdims=True), 1e-300)
    y = encoded.label_index
    return {"loss": loss_sum / tokens, "n": int(y.size),
            "accuracy": float(metric_function("accuracy")(probs[None], y[None])[0]),
            "ece": float(metric_function("ece")(probs[None], y[None])[0])}


def _rng_state() -> dict:
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    return state


def _set_rng_state(state: dict) -> None:
    import torch

    torch.set_rng_state(state["torch"])
    cuda = [state[k] for k in sorted(state) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def _deferred_interrupt() -> Iterator[threading.Event]:
    """Turn the first Ctrl-C into a flag the loop checks after each step; a second one stops at once."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag  # signal handlers can only be set from the main thread
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag.set()

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
