"""The epoch-based runner: mmcv 1.x ``EpochBasedRunner`` semantics on HuggingFace Accelerate, with
the training step in the loop (``Runner.train_epoch``) where a reader sees it, as mmengine does.

    runner = Runner(model, optimizer, accelerator, work_dir="work_dirs/x", train_step=classification_step,
                    lr_schedule=build_lr_schedule(recipe.schedule_args, recipe.lr), grad_clip=40.0)
    runner.register_hook(EMAHook(model))          # any callable or object with event methods
    runner.run({"train": train_loader}, workflow=[("train", 1)], max_epochs=10)

Event order (mmcv 1.x's)::

    before_run
      for each (mode, epochs) in workflow, repeated until max_epochs:
        before_{mode}_epoch
          (before_{mode}_iter -> step -> after_{mode}_iter) * len(loader)
        after_{mode}_epoch
    after_run

A train iteration: LR and momentum of the schedules -> ``before_train_iter`` hooks -> mix the
batch -> ``train_step`` (forward + loss) -> non-finite check -> backward -> (sync step) clip, step,
zero the gradients -> ``after_train_iter`` hooks (they see the stepped weights: EMA, loggers).
``iter`` counts data iterations (micro-batches), as mmcv's ``GradientCumulativeOptimizerHook`` does.
"""

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator

from accel_slowfast.checkpointing.faults import any_process
from accel_slowfast.checkpointing.manifest import find_resume_checkpoint
from accel_slowfast.engine.events import EVENTS, PRIORITIES, get_priority, refuse_stray_methods
from accel_slowfast.engine.faults import NonFiniteLossError
from accel_slowfast.engine.log_buffer import LogBuffer
from accel_slowfast.engine.schedule import LrSchedule, MomentumSchedule, Position, set_lr_and_momentum

TrainStep = Callable[[torch.nn.Module, dict[str, Any], bool], dict[str, Any]]
Mix = Callable[[dict[str, Any], int], dict[str, Any]]  # (batch, global iteration) -> the batch trained on


class Runner:
    """Runs train/val epochs over data loaders, steps the optimizer, and calls hooks at mmcv's events.

    State the hooks read: ``epoch`` (0-based index of the current epoch, incremented after
    ``after_train_epoch`` as in mmcv, so it counts finished epochs between epochs), ``iter`` (train
    iterations finished, global), ``inner_iter`` (index in the current epoch), ``start_inner_iter``
    (iterations of the current epoch already done before a mid-epoch resume), ``max_epochs``,
    ``max_iters``, ``mode`` (``"train"``/``"val"``), ``data_batch`` (the training batch of the
    current iteration, as mmcv's runner has it: a ``before_train_iter`` hook may replace it before
    the step gets it), ``outputs`` (the last ``train_step`` result), ``log_buffer``,
    ``data_loader`` (the current one), ``meta`` (free-form, saved in checkpoints: ``skipped_steps``),
    ``stop_training`` (set by a hook: the run ends after the current epoch).

    Args:
        model: the prepared model.
        optimizer: the prepared optimizer.
        accelerator: the ``Accelerator`` that prepared them.
        work_dir: where hooks write logs and checkpoints.
        train_step: ``train_step(model, batch, train_mode) -> {"loss", "log_vars", "num_samples"}``.
        logger: text logger; defaults to ``logging.getLogger("accel_slowfast")``.
        lr_schedule, momentum_schedule: the LR and momentum of each iteration; None: as the optimizer has it.
        mix: ``mix(batch, iteration)``, the training batch blended (``mixing.BatchMixing``); None: as loaded.
        grad_clip: max L2 norm of the gradients (0: no clipping).
        skip_nonfinite: a NaN/inf loss skips its accumulation window instead of raising ``NonFiniteLossError``.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        accelerator: Accelerator,
        work_dir: str | Path,
        train_step: TrainStep,
        logger: logging.Logger | None = None,
        *,
        lr_schedule: LrSchedule | None = None,
        momentum_schedule: MomentumSchedule | None = None,
        mix: Mix | None = None,
        grad_clip: float = 0.0,
        skip_nonfinite: bool = False,
    ):
        self.model = model
        self.optimizer = optimizer
        self.accelerator = accelerator
        self.work_dir = Path(work_dir)
        self.train_step = train_step
        self.logger = logger or logging.getLogger("accel_slowfast")
        self.lr_schedule, self.momentum_schedule, self.mix = lr_schedule, momentum_schedule, mix
        self.grad_clip, self.skip_nonfinite = grad_clip, skip_nonfinite
        self.log_buffer = LogBuffer()
        self.meta: dict[str, Any] = {}
        self._hooks: list[tuple[int, Any]] = []
        self.epoch = 0
        self.iter = 0
        self.inner_iter = 0
        self.start_inner_iter = 0
        self.stop_training = False  # a hook (early stopping) ends the run after the current epoch
        self.max_epochs = 0
        self.max_iters = 0
        self.mode = "train"
        self.outputs: dict[str, Any] = {}
        self.data_loader: Iterable | None = None
        self.data_batch: dict[str, Any] | None = None

    # --- hooks ---------------------------------------------------------------------------
    @property
    def hooks(self) -> list[Any]:
        """Registered hooks in call order."""
        return [hook for _, hook in self._hooks]

    def register_hook(self, hook: Any, priority: int | str | None = None) -> None:
        """Add ``hook``: a callable ``hook(runner, event)`` or an object with event-named methods.

        ``priority`` defaults to the hook's ``priority`` attribute, else ``"NORMAL"``; among equal
        priorities hooks run in registration order. A public method that is not an event (a
        misspelled ``after_train_iteration``) is refused: it would never be called.
        """
        if not isinstance(hook, type(lambda: None)):
            refuse_stray_methods(hook)
        value = get_priority(priority if priority is not None else getattr(hook, "priority", "NORMAL"))
        position = len(self._hooks)
        while position > 0 and self._hooks[position - 1][0] > value:
            position -= 1
        self._hooks.insert(position, (value, hook))

    def hook_info(self) -> str:
        """For each event, the hooks that run at it, in order, with their priority (mmcv's ``get_hook_info``)."""
        names = {value: name for name, value in PRIORITIES.items()}
        lines = []
        for event in EVENTS:
            called = [(priority, hook) for priority, hook in self._hooks if hasattr(hook, event)
                      or not any(hasattr(hook, name) for name in EVENTS) and callable(hook)]
            if called:
                lines.append(f"{event}:")
                lines.extend(f"  ({names.get(priority, priority):<12}) {getattr(hook, '__name__', type(hook).__name__)}"
                             for priority, hook in called)
        return "\n".join(lines)

    def call_hook(self, event: str) -> None:
        """Call ``event`` on every hook that defines it; plain callables get every event."""
        if event not in EVENTS:
            raise ValueError(f"unknown hook event {event!r}; events are {EVENTS}")
        for hook in self.hooks:
            method = getattr(hook, event, None)
            if method is not None:
                method(self)
            elif not any(hasattr(hook, name) for name in EVENTS) and callable(hook):
                hook(self, event)

    def epoch_due(self, interval: int) -> bool:
        """Whether the train epoch that just ended (in ``after_train_epoch``) is an ``interval``-th
        one or the last: when evaluation and epoch checkpoints happen."""
        epoch = self.epoch + 1
        return epoch % interval == 0 or epoch == self.max_epochs

    # --- loops ---------------------------------------------------------------------------
    def run(self, data_loaders: dict[str, Iterable], workflow: list[tuple[str, int]], max_epochs: int,
            max_iters: int = 0) -> None:
        """Run ``workflow`` phases (e.g. ``[("train", 2), ("val", 1)]``) until ``max_epochs`` train epochs.

        ``max_iters``: the run's train iterations, when the train loader's length changes by epoch
        (multigrid); 0: ``max_epochs`` x its length."""
        for mode, _ in workflow:
            if mode not in ("train", "val"):
                raise ValueError(f"workflow mode must be 'train' or 'val', got {mode!r}")
            if mode not in data_loaders:
                raise ValueError(f"workflow has {mode!r} but no {mode!r} data loader was given")
        self.max_epochs = max_epochs
        if "train" in data_loaders:
            self.max_iters = max_iters or max_epochs * len(data_loaders["train"])
        self.logger.info("Hooks, in the order they run at each event:\n%s", self.hook_info())
        for schedule in (self.lr_schedule, self.momentum_schedule):  # a run longer than a schedule fails now
            if schedule is not None:
                schedule.check_run(self.max_epochs, self.max_iters)
        self.call_hook("before_run")
        while self.epoch < max_epochs and not self.stop_training:
            for mode, epochs in workflow:
                for _ in range(epochs):
                    if self.stop_training or mode == "train" and self.epoch >= max_epochs:
                        break
                    (self.train_epoch if mode == "train" else self.val_epoch)(data_loaders[mode])
        self.call_hook("after_run")

    def train_epoch(self, data_loader: Iterable) -> None:
        """One training epoch: each iteration reads top to bottom here."""
        self.model.train()
        self.mode, self.data_loader = "train", data_loader
        self.call_hook("before_train_epoch")  # sets the sampler's epoch: a multigrid epoch's length is known after
        iters_per_epoch = len(data_loader)
        start, self.start_inner_iter = self.start_inner_iter, 0
        if start:  # resuming mid-epoch: the sampler's order is the epoch's, skip what was done
            data_loader = self.accelerator.skip_first_batches(data_loader, start)
        for self.inner_iter, self.data_batch in enumerate(data_loader, start):
            # Inside accumulate() Accelerate scales the loss by 1 / gradient_accumulation_steps, skips the
            # gradient all-reduce on all but the last micro-batch of the window and makes optimizer.step()
            # and zero_grad() no-ops there: N micro-batches make one step.
            with self.accelerator.accumulate(self.model):
                # This iteration's LR and momentum, set first (from the position alone, so a resumed run
                # needs no scheduler state): every hook and the step see them.
                at = Position(self.epoch, self.iter, self.inner_iter, iters_per_epoch, self.max_epochs, self.max_iters)
                lr = self.lr_schedule(at) if self.lr_schedule is not None else None
                momentum = self.momentum_schedule(at) if self.momentum_schedule is not None else None
                set_lr_and_momentum(self.optimizer, lr, momentum)
                self.call_hook("before_train_iter")  # may replace data_batch
                if self.mix is not None:  # after the hooks: IterTimerHook's data_time is loading, not mixing
                    self.data_batch = self.mix(self.data_batch, self.iter)
                self.outputs = self.train_step(self.model, self.data_batch, True)  # forward + loss
                self.log_buffer.update(self.outputs["log_vars"], self.outputs["num_samples"])
                loss = self.outputs["loss"]
                # One value read per iteration (on every process): the price of never stepping on a NaN.
                if any_process(self.accelerator, not bool(torch.isfinite(loss.detach()).all())):
                    self._nonfinite_loss(float(loss.detach().float().mean()))
                else:
                    self.accelerator.backward(loss)
                    if self.accelerator.sync_gradients and self.grad_clip > 0:  # the window's whole gradient
                        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.grad_clip)
                        self.log_buffer.update({"grad_norm": grad_norm})
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                self.call_hook("after_train_iter")  # EMA, timer, loggers, checkpoints: after the step
            self.iter += 1
            self.data_batch = None  # not kept alive while the next batch loads
        self.call_hook("after_train_epoch")
        self.epoch += 1

    def _nonfinite_loss(self, value: float) -> None:
        """A NaN/inf loss: stop, naming the last good checkpoint, or (``skip_nonfinite``) drop the
        accumulation window, counted in ``meta["skipped_steps"]``. Nothing was stepped either way."""
        where = f"iteration {self.iter + 1} (epoch {self.epoch + 1}, iteration {self.inner_iter + 1} of it)"
        if not self.skip_nonfinite:
            last = find_resume_checkpoint(self.work_dir)
            raise NonFiniteLossError(
                f"loss is {value} at {where}; nothing was stepped. The last good checkpoint is "
                f"{last or 'none yet'}. Lower lr, keep grad_clip on, or set skip_nonfinite_loss to skip such steps.")
        self.meta["skipped_steps"] = self.meta.get("skipped_steps", 0) + 1
        self.logger.warning("loss is %s at %s: optimizer step skipped (%d so far)", value, where,
                            self.meta["skipped_steps"])
        if self.accelerator.sync_gradients:  # drop the whole accumulation window
            self.optimizer.zero_grad()

    @torch.no_grad()
    def val_epoch(self, data_loader: Iterable) -> None:
        """One validation epoch computing the loss under ``no_grad`` (mmcv's ``('val', N)``)."""
        self.model.eval()
        self.mode, self.data_loader = "val", data_loader
        self.call_hook("before_val_epoch")
        for self.inner_iter, batch in enumerate(data_loader):
            self.call_hook("before_val_iter")
            self.outputs = self.train_step(self.model, batch, False)
            self.log_buffer.update(self.outputs["log_vars"], self.outputs["num_samples"])
            self.call_hook("after_val_iter")
        self.call_hook("after_val_epoch")

    # --- state ---------------------------------------------------------------------------
    def state_dict(self, *, epoch: int, inner_iter: int, iter: int) -> dict[str, Any]:
        """What a checkpoint keeps of the runner (``custom_checkpoint_0.pkl``, and ``meta.json`` to
        read without loading it): ``epoch`` (the epoch to run next, or the one in progress),
        ``inner_iter`` (its iterations done), ``iter`` (global iterations done), ``meta`` and, mid-epoch,
        the log buffer's values not yet logged.

        A hook saves before the runner moves its counters on (the epoch's end is saved in
        ``after_train_epoch``, before ``epoch`` counts it), so the hook gives the position a
        resume starts from. The keys and plain values are those checkpoints have always held.
        """
        history = {key: [(float(value), count) for value, count in entries]
                   for key, entries in self.log_buffer.history.items()} if inner_iter else {}
        return {"epoch": epoch, "inner_iter": inner_iter, "iter": iter, "meta": dict(self.meta),
                "log_history": history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put the runner at the position ``state`` (``state_dict``) holds: a mid-epoch one resumes
        after ``start_inner_iter`` iterations of that epoch."""
        self.epoch, self.iter = state["epoch"], state["iter"]
        self.start_inner_iter = state.get("inner_iter", 0)
        self.meta.update(state["meta"])
        for key, entries in state.get("log_history", {}).items():
            self.log_buffer.history[key] = [tuple(entry) for entry in entries]
