"""A plain-PyTorch training loop for weight-sharing networks, with exact resumption.

:func:`train` runs AdamW on ``task loss + λ_norm·Σ norm + λ_ent·Σ ent`` (the paper's regularisers
over every :class:`~wslib.nn.LearnedRepresentation`), with its own learning rate for
the representation logits, and returns a :class:`History`: per-epoch losses and accuracies plus
snapshots of every learned stack, which the book plots.

Checkpoints are written atomically (a temporary file, then ``os.replace``) after every epoch. A
run that is interrupted resumes from its last checkpoint to *the same result* as an uninterrupted
run, because all randomness of epoch e (shuffling, augmentation, dropout) is re-seeded from
(seed, e) instead of being carried along in generator state. A loss, parameter, buffer or
optimiser state that turns NaN or infinite stops training with :class:`TrainingDiverged` before
the diverged state reaches the checkpoint.

The checkpoint files (:func:`save_checkpoint`, :func:`load_checkpoint`) live in
``wslib/checkpoints.py``, and the toy problems' single weight-sharing layer
(:class:`SharedKernelLayer`) and its :func:`reconstruction_objective` in ``wslib/toy_layer.py``;
all of them are importable from here.
"""
from __future__ import annotations

import math
import numbers
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, TensorDataset

from . import _validate as _check
from .checkpoints import _check_writable_path, _load_training_state, load_checkpoint, save_checkpoint
from .nn import LearnedRepresentation, representation_losses, shared_sinkhorn
from .toy_layer import SharedKernelLayer, reconstruction_objective

__all__ = [
    "TrainConfig",
    "History",
    "train",
    "train_restarts",
    "evaluate",
    "predict",
    "recalibrate_batch_norm",
    "seed_everything",
    "default_device",
    "save_checkpoint",
    "load_checkpoint",
    "TrainingDiverged",
    "learned_stacks",
    "set_temperature",
    "classification_objective",
    "SharedKernelLayer",
    "reconstruction_objective",
]


# What torch.compile turns the captured step into (TrainConfig.compile); the tests set
# "aot_eager", which captures the same graphs without generating code.
COMPILE_BACKEND = "inductor"


# An objective maps (model, inputs, targets) to (scalar loss, logits or None); logits, when given,
# are scored for accuracy against integer targets.
Objective = Callable[[nn.Module, Tensor, Tensor], "tuple[Tensor, Tensor | None]"]


@dataclass
class TrainConfig:
    """Everything that decides a training run (and is checked when it resumes).

    Every field is checked on construction: a value of the wrong type, a NaN or infinite
    number, or one below the field's minimum (a learning rate <= 0, a negative epoch count, ...)
    raises ``ValueError`` naming the field.

    Attributes:
        epochs: passes over the training data.
        batch_size: samples per step.
        lr: AdamW learning rate of all weights except the representation logits.
        rep_lr: learning rate of every ``LearnedRepresentation.logits`` (``None``: same as lr).
            The paper uses 1e-2 for both on MNIST, 1e-4 / 1e-2 on CIFAR-10.
        weight_decay: AdamW weight decay (paper: 1e-4).
        lambda_norm: weight of the normalisation regulariser (paper: 0.1).
        lambda_ent: weight of the entropy regulariser (paper: 0 or a tuned value, e.g. 0.01).
        temperature: ``(start, end)`` anneals the Sinkhorn temperature of every learned stack
            geometrically from start to end over the hardening steps (see ``harden_from``);
            ``None`` leaves it alone.
        sinkhorn_tol: ``None`` (default) leaves every learned stack's Sinkhorn rule as the
            model set it; a number sets ``tol`` of every ``LearnedRepresentation`` before
            training: Sinkhorn stops early once the stack's row and column sums are within it
            of 1 (``wslib.sinkhorn.AUTHORS_TOL`` is the authors' rule).
        harden_from: the epoch at which hardening starts: before it the entropy weight is 0 and
            the temperature stays at its start value; from it on, ``lambda_ent`` applies and the
            temperature anneals. 0 (default) hardens from the first step. Training in two
            phases -- first let the task pick the matrices, then make them hard -- is what
            recovers exact permutations in chapter 4.
        bn_recalibration: at the end of every epoch (before evaluating and checkpointing),
            recompute every batch norm's running mean and variance as an equal-weight average
            over this many training batches (train mode, no gradients); 0 keeps PyTorch's
            running averages. Those lag a network whose weights
            move fast (AdamW at lr 1e-2): chapter 5 measured a WSCNN at 33 % test accuracy with
            them and 67 % after recalibration. Models without batch norm are not affected.
        seed: seeds shuffling, augmentation and dropout of every epoch (not the model's
            initialisation: call :func:`seed_everything` before building the model).
        device: ``"cpu"``, ``"cuda"``, ...; ``None`` picks CUDA when present.
        checkpoint: file to write after every epoch and to resume from; ``None``: no checkpoint.
        snapshots: record every learned stack after every epoch (and before the first).
        num_workers: DataLoader worker processes.
        progress: show a tqdm progress bar.
        compile: capture each step's loss (forward and regularisers; AOTAutograd captures its
            backward) with ``torch.compile`` -- ``mode="reduce-overhead"`` (CUDA graphs) on CUDA.
            Same losses to float rounding; off by default, because on a CPU the first steps
            spend minutes compiling and the steps after it are not faster (``wslib.bench``).
    """

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-2
    rep_lr: float | None = None
    weight_decay: float = 1e-4
    lambda_norm: float = 0.1
    lambda_ent: float = 0.0
    temperature: tuple[float, float] | None = None
    sinkhorn_tol: float | None = None
    harden_from: int = 0
    bn_recalibration: int = 16
    seed: int = 0
    device: str | None = None
    checkpoint: str | None = None
    snapshots: bool = True
    num_workers: int = 0
    progress: bool = True
    compile: bool = False

    # Fields that may change between a run and its resumption without changing its result.
    _RESUMABLE = ("epochs", "device", "checkpoint", "num_workers", "progress", "compile")

    def __post_init__(self) -> None:
        # Every field is checked against its annotation and its range, so a meaningless
        # setting (a NaN learning rate, a negative epoch count, "yes" for a flag) fails here,
        # by name, instead of as a silent wrong run.
        for f in fields(self):
            setattr(self, f.name, _checked_field(f.name, f.type, getattr(self, f.name)))
        if self.device is not None:
            try:
                torch.device(self.device)
            except (RuntimeError, ValueError):
                raise ValueError(f"TrainConfig.device must name a torch device such as 'cpu' or "
                                 f"'cuda'; got {self.device!r}") from None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# The smallest allowed value of each bounded field, and whether the bound itself is allowed.
_FIELD_MINIMA = {
    "epochs": (0, True), "batch_size": (1, True), "lr": (0, False), "rep_lr": (0, False),
    "weight_decay": (0, True), "lambda_norm": (0, True), "lambda_ent": (0, True),
    "temperature": (0, False), "sinkhorn_tol": (0, False), "harden_from": (0, True), "bn_recalibration": (0, True),
    "num_workers": (0, True),
}


# The annotations TrainConfig's fields may use (without "| None"); see _checked_field.
_FIELD_KINDS = ("bool", "int", "float", "str", "tuple[float, float]")


def _checked_field(name: str, annotation: str, value: Any) -> Any:
    """``value`` of TrainConfig field ``name`` as a plain Python value, or a ValueError naming
    the field: the type must fit ``annotation`` (a string, as ``from __future__ import
    annotations`` leaves it), numbers must be finite and at least the field's minimum."""
    kind = annotation.removesuffix("| None").strip()
    if value is None:
        if annotation.endswith("| None"):
            return None
        raise ValueError(f"TrainConfig.{name} must not be None")

    def bad(expected: str) -> ValueError:
        return ValueError(f"TrainConfig.{name} must be {expected}; got {value!r}")

    is_bool = isinstance(value, (bool, np.bool_))
    if kind == "bool":
        if not is_bool:
            raise bad("True or False")
        return bool(value)
    if kind == "str":
        if isinstance(value, (os.PathLike, torch.device)):
            value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if kind == "int":
        if is_bool or not isinstance(value, numbers.Integral):
            raise bad("an integer")
        vals = (int(value),)
    elif kind == "float":
        if is_bool or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise bad("a finite number")
        vals = (float(value),)
    elif kind == "tuple[float, float]":
        pair = tuple(value) if isinstance(value, (tuple, list)) else ()
        if len(pair) != 2 or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                     and math.isfinite(v) for v in pair):
            raise bad("a pair (start, end) of finite numbers")
        vals = tuple(float(v) for v in pair)
    else:
        raise TypeError(f"TrainConfig.{name}: no check for annotation {annotation!r}; "
                        f"use one of {_FIELD_KINDS}")
    if name in _FIELD_MINIMA:
        low, inclusive = _FIELD_MINIMA[name]
        if any(v < low or (v == low and not inclusive) for v in vals):
            both = " in both entries" if len(vals) > 1 else ""
            raise bad(f"{'>=' if inclusive else '>'} {low}{both}")
    return vals if kind.startswith("tuple") else vals[0]


@dataclass
class History:
    """What :func:`train` records, one entry per finished epoch.

    Attributes:
        epoch: 1, 2, ... (epochs finished).
        train_loss, test_loss: mean task loss (without regularisers) per sample.
        train_acc, test_acc: accuracy in [0, 1] (``nan`` when the objective gives no logits or
            there is no test set).
        norm: the normalisation regulariser, averaged over the epoch's steps.
        ent: the entropy regulariser, averaged over the epoch's steps while it is trained
            (``lambda_ent > 0``), otherwise its value at the end of the epoch.
        temperature: the Sinkhorn temperature at the end of the epoch (``nan`` if not annealed).
        seconds: wall time of the epoch (training and evaluation).
        snapshots: ``snapshots[0]`` is every learned stack before training, ``snapshots[e]``
            after epoch e; each a dict {module name: (|H|, d, d) CPU tensor}.
    """

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    norm: list[float] = field(default_factory=list)
    ent: list[float] = field(default_factory=list)
    temperature: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    snapshots: list[dict[str, Tensor]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "History":
        return cls(**{f.name: list(d.get(f.name, [])) for f in fields(cls)})

    def __len__(self) -> int:
        return len(self.epoch)

    def final(self) -> dict[str, float]:
        """The last epoch's scalar metrics (empty before the first epoch)."""
        if not self.epoch:
            return {}
        return {f.name: getattr(self, f.name)[-1] for f in fields(self) if f.name != "snapshots"}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices); call it before building a model."""
    seed = _check.integer("seed", seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TrainingDiverged(FloatingPointError):
    """Training diverged: the loss, a parameter, a buffer (a batch norm's statistics) or the
    optimiser's state became NaN or infinite; ``epoch`` (1-based) and ``step`` (1-based,
    within the epoch; the epoch's last step when found at its end) say where it was found first.
    The checkpoint on disk, if any, still holds the last epoch whose every tensor was finite."""

    def __init__(self, message: str, epoch: int, step: int):
        super().__init__(message)
        self.epoch, self.step = epoch, step


def learned_stacks(model: nn.Module) -> dict[str, Tensor]:
    """{name: (|H|, d, d) stack} of every LearnedRepresentation in ``model``, detached, on CPU."""
    with torch.no_grad():
        return {name or "representation": m().detach().cpu().clone()
                for name, m in model.named_modules() if isinstance(m, LearnedRepresentation)}


def set_temperature(model: nn.Module, temperature: float) -> None:
    """Set the Sinkhorn temperature (a finite number > 0) of every LearnedRepresentation in
    ``model``."""
    temperature = _check.number("temperature", temperature, 0, inclusive=False)
    for m in model.modules():
        if isinstance(m, LearnedRepresentation):
            m.temperature = temperature


def _normalization_only(model: nn.Module) -> Tensor:
    terms = [m.normalization_loss() for m in model.modules() if isinstance(m, LearnedRepresentation)]
    return torch.stack(terms).sum() if terms else next(model.parameters()).new_zeros(())


def _step_loss(model: nn.Module, objective: Objective, x: Tensor, y: Tensor, lambda_norm: float,
               lambda_ent: float) -> tuple[Tensor, Tensor, Tensor, Tensor | None, Tensor | None]:
    """One step's (loss, task loss, norm, ent or None, logits). Inside ``shared_sinkhorn`` every
    learned stack is normalised once -- same-shape stacks of all layers in one call -- and the
    forward pass and the entropy regulariser share that result."""
    with shared_sinkhorn(model):
        task, logits = objective(model, x, y)
        if lambda_ent > 0:
            norm, ent = representation_losses(model)
            return task + lambda_norm * norm + lambda_ent * ent, task, norm, ent, logits
        # Without an entropy term it is logged once at the end of the epoch instead.
        norm = _normalization_only(model)
        return task + lambda_norm * norm, task, norm, None, logits


def _adamw(model: nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.AdamW:
    # The fused kernel updates every parameter of a group in one pass (CPU and CUDA);
    # capturable keeps its step count on the device, as CUDA-graph capture needs.
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(_param_groups(model, cfg), weight_decay=cfg.weight_decay,
                             fused=fused or None, capturable=cfg.compile and device.type == "cuda")


def classification_objective(model: nn.Module, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Cross-entropy of ``model(x)`` (B, classes) against integer labels y (B,)."""
    logits = model(x)
    return F.cross_entropy(logits, y), logits


def _as_dataset(data, name: str = "data") -> Dataset:
    """``data`` as a Dataset of (input, target) pairs, or a ValueError naming the argument."""
    if isinstance(data, Dataset):
        dataset = data
    elif hasattr(data, "dataset") and callable(data.dataset):  # e.g. wslib.data.ToyData
        dataset = data.dataset()
    elif isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        if len(data[0]) != len(data[1]):
            raise ValueError(f"{name}: inputs and targets must have the same length; got "
                             f"{len(data[0])} and {len(data[1])}")
        dataset = TensorDataset(*data)
    else:
        raise ValueError(
            f"{name} must be a torch Dataset, a ToyData, or a pair of tensors (inputs, targets); "
            f"got {type(data).__name__}"
        )
    return dataset


def _pair(batch, name: str) -> tuple[Tensor, Tensor]:
    """A loader's batch as (inputs, targets), or a ValueError saying what ``name`` yields
    instead (a check in Python, no device synchronisation)."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2 and isinstance(batch[0], Tensor):
        return batch[0], batch[1]
    what = (f"a {type(batch).__name__} of {len(batch)}" if isinstance(batch, (tuple, list))
            else f"a {type(batch).__name__}")
    raise ValueError(f"{name} must yield (input tensor, target) pairs; a batch of it is {what}")


def _epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + 7919 * epoch) % 2**63


def _set_epoch(dataset: Dataset, epoch: int) -> None:
    # Datasets with per-epoch randomness (wslib.data.RotatedDataset, ...) redraw it here.
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict]:
    rep = [p for m in model.modules() if isinstance(m, LearnedRepresentation)
           for p in m.parameters(recurse=False)]
    rep_ids = {id(p) for p in rep}
    other = [p for p in model.parameters() if id(p) not in rep_ids]
    groups = [{"params": other, "lr": cfg.lr}]
    if rep:
        groups.append({"params": rep, "lr": cfg.rep_lr if cfg.rep_lr is not None else cfg.lr})
    return groups


def _config_mismatch(saved: dict, cfg: TrainConfig) -> list[str]:
    now = cfg.as_dict()
    return [k for k in now if k not in TrainConfig._RESUMABLE and saved.get(k) != now[k]]


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, data, batches: int, batch_size: int = 64,
                           device: str | torch.device | None = None, seed: int = 0) -> int:
    """Recompute every batch norm's running statistics from ``batches`` batches of ``data``.

    Each batch norm is reset and then averages the batch statistics of a seeded random sample
    of ``batches × batch_size`` inputs with equal weights (PyTorch's ``momentum=None``), in
    train mode and without gradients; the model's mode and momenta are restored afterwards.
    Evaluating with these statistics describes the network as it is *now*, not an average
    over its last few optimiser steps. Returns the number of batch norms recalibrated.
    """
    batches = _check.integer("batches", batches)
    batch_size = _check.integer("batch_size", batch_size, 1)
    norms = [m for m in model.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms or batches <= 0:
        return 0
    dataset = _as_dataset(data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    sampler = RandomSampler(dataset, num_samples=min(batches * batch_size, len(dataset)),
                            generator=torch.Generator().manual_seed(seed))
    was_training, momenta = model.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    try:
        with shared_sinkhorn(model):  # the weights do not change here: one Sinkhorn for all batches
            for batch in DataLoader(dataset, batch_size=batch_size, sampler=sampler):
                model(_pair(batch, "data")[0].to(device, non_blocking=True))
    finally:
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        model.train(was_training)
    return len(norms)


@torch.no_grad()
def evaluate(model: nn.Module, data, objective: Objective = classification_objective,
             batch_size: int = 256, device: str | torch.device | None = None) -> tuple[float, float]:
    """Mean task loss and accuracy of ``model`` on ``data`` (eval mode, no gradients).

    Args:
        data: a Dataset of (input, target), a ToyData, or a pair of tensors.
        objective: see :func:`train`.

    Returns:
        ``(loss, accuracy)``; accuracy is ``nan`` when the objective gives no logits.
    """
    batch_size = _check.integer("batch_size", batch_size, 1)
    dataset = _as_dataset(data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    n, scored = 0, False
    for batch in DataLoader(dataset, batch_size=batch_size, shuffle=False):
        x, y = _pair(batch, "data")
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        loss, logits = objective(model, x, y)
        loss_sum += loss.detach() * len(y)
        if logits is not None:
            correct += (logits.argmax(dim=-1) == y).sum()
            scored = True
        n += len(y)
    model.train(was_training)
    if n == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    return float(loss_sum) / n, (float(correct) / n if scored else math.nan)


@torch.no_grad()
def predict(model: nn.Module, x: Tensor, batch_size: int = 1024) -> Tensor:
    """The outputs of ``model`` (in eval mode, no gradients) for the inputs ``x``, on the CPU.

    The inputs go to the model's device in batches of ``batch_size`` and the outputs come back,
    so code that reads them works alike for a model trained on a GPU or on the CPU. The model is
    left in the mode it was in.
    """
    _check.tensor("x", x)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer; got {batch_size!r}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(chunk.to(device)).cpu() for chunk in x.split(batch_size)])
    finally:
        model.train(was_training)


def train(
    model: nn.Module,
    train_data,
    test_data=None,
    config: TrainConfig | dict | None = None,
    objective: Objective = classification_objective,
    callback: Callable[[int, History], None] | None = None,
) -> History:
    """Train ``model`` with AdamW and the paper's regularisers; resume from a checkpoint.

    Each step minimises ``objective(model, x, y)[0] + λ_norm·norm + λ_ent·ent``, with norm and
    ent summed over every learned stack (:func:`wslib.nn.representation_losses`). Metrics are
    accumulated on the device and read once per epoch, so no step waits for the host.

    If ``config.checkpoint`` names an existing file, training continues from it (the model,
    optimiser and history are restored; a config that differs in anything but epochs, device,
    workers, progress or the path raises ``ValueError``); if that checkpoint already has
    ``config.epochs`` epochs, the model is loaded and its history returned without training.

    Args:
        model: any ``nn.Module``; moved to ``config.device``.
        train_data, test_data: Datasets of (input, target), ToyData, or (inputs, targets)
            pairs; ``test_data`` may be ``None``. A dataset with ``set_epoch(e)`` is told the
            epoch first (fresh augmentation per epoch).
        config: a :class:`TrainConfig` or a dict of its fields.
        objective: ``(model, x, y) -> (loss, logits or None)``; default cross-entropy.
        callback: called as ``callback(epoch, history)`` after each epoch's checkpoint is
            written (raising from it stops training; the checkpoint survives).

    Returns:
        the :class:`History` of all epochs, including those of a resumed run.

    Raises:
        TrainingDiverged: the loss became NaN or infinite (tracked on the device, read once
            per epoch), or a tensor of the model or the optimiser did (checked at the end of
            every epoch, and when Sinkhorn refuses non-finite logits); the diverged state is
            not written, so the checkpoint keeps the last good epoch.
        ValueError: a bad config, or a checkpoint that is corrupted, foreign, or written with
            a different config.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**(config or {}))
    device = torch.device(cfg.device) if cfg.device is not None else default_device()
    train_set = _as_dataset(train_data, "train_data")
    test_set = _as_dataset(test_data, "test_data") if test_data is not None else None
    if len(train_set) == 0:
        raise ValueError("the training set is empty")
    if test_set is not None and len(test_set) == 0:
        raise ValueError("test_data is empty; pass None to train without a test set")
    if cfg.checkpoint is not None:  # before any work: a checkpoint that cannot be written loses it
        _check_writable_path(cfg.checkpoint, "TrainConfig.checkpoint")
    model.to(device)
    if cfg.sinkhorn_tol is not None:
        for m in model.modules():
            if isinstance(m, LearnedRepresentation):
                m.tol = cfg.sinkhorn_tol
    optimizer = _adamw(model, cfg, device)
    history, start = History(), 0

    if cfg.checkpoint is not None and Path(cfg.checkpoint).exists():
        state = _load_training_state(cfg.checkpoint)
        bad = _config_mismatch(state["config"], cfg)
        if bad:
            raise ValueError(
                f"checkpoint {cfg.checkpoint} was written with a different config ({', '.join(bad)}); "
                "delete it or use another path"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start = History.from_dict(state["history"]), int(state["epoch"])
    if cfg.snapshots and not history.snapshots:
        history.snapshots.append(learned_stacks(model))

    # Static batch shapes: the ragged last batch is dropped (unless it is the only one).
    drop_last = len(train_set) > cfg.batch_size
    steps_per_epoch = len(train_set) // cfg.batch_size if drop_last else 1
    step_loss = _step_loss
    if cfg.compile:
        step_loss = torch.compile(_step_loss, mode="reduce-overhead" if device.type == "cuda" else None,
                                  backend=COMPILE_BACKEND)
    total_steps = max(steps_per_epoch * cfg.epochs, 1)
    first_hard = steps_per_epoch * cfg.harden_from
    hard_steps = max(total_steps - first_hard - 1, 1)
    bar = None
    if cfg.progress and start < cfg.epochs:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=start * steps_per_epoch, desc="training", unit="step")

    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        # All randomness of this epoch comes from (seed, epoch): resuming here reproduces it.
        torch.manual_seed(_epoch_seed(cfg.seed, epoch))
        _set_epoch(train_set, epoch)
        sampler = RandomSampler(train_set, generator=torch.Generator().manual_seed(_epoch_seed(cfg.seed, epoch)))
        loader = DataLoader(train_set, batch_size=cfg.batch_size, sampler=sampler, drop_last=drop_last,
                            num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
        model.train()
        # task loss·n, norm, ent, correct, steps before the first non-finite loss, seen one yet
        sums = torch.zeros(6, device=device)
        n_seen, n_steps, scored, tau = 0, 0, False, math.nan
        lambda_ent = cfg.lambda_ent if epoch >= cfg.harden_from else 0.0
        for i, batch in enumerate(loader):
            x, y = _pair(batch, "train_data")
            if cfg.temperature is not None:
                t_start, t_end = cfg.temperature
                frac = (epoch * steps_per_epoch + i - first_hard) / hard_steps
                tau = t_start * (t_end / t_start) ** min(max(frac, 0.0), 1.0)
                set_temperature(model, tau)
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            try:
                loss, task, norm, ent, logits = step_loss(model, objective, x, y, cfg.lambda_norm,
                                                          lambda_ent)
            except ValueError as err:
                # Sinkhorn refuses non-finite logits: then an earlier step diverged, and the
                # flags on the device say whether its loss showed it first.
                bad = _first_nonfinite(model, optimizer)
                if bad is None:
                    raise
                s = sums.tolist()
                what, step = ("the loss", int(s[4]) + 1) if s[5] > 0 else (bad, max(i, 1))
                _close(bar)
                raise _diverged(cfg, epoch + 1, step, steps_per_epoch, what) from err
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                # Divergence is tracked on the device (no host sync per step) and read at the
                # end of the epoch: sums[5] turns 1 at the first non-finite loss, and sums[4]
                # counts the steps before it.
                sums[5] = torch.maximum(sums[5], (~torch.isfinite(loss.detach())).float())
                sums[4] += 1 - sums[5]
                sums[0] += task.detach() * len(y)
                sums[1] += norm.detach()
                if ent is not None:
                    sums[2] += ent.detach()
                if logits is not None:
                    sums[3] += (logits.argmax(dim=-1) == y).sum()
                    scored = True
            n_seen += len(y)
            n_steps += 1
            if bar is not None:
                bar.update(1)
        s = sums.tolist()  # the epoch's one host synchronisation of the steps
        if s[5] > 0:
            _close(bar)
            raise _diverged(cfg, epoch + 1, int(s[4]) + 1, n_steps, "the loss")
        try:
            recalibrate_batch_norm(model, train_set, cfg.bn_recalibration, cfg.batch_size, device,
                                   seed=_epoch_seed(cfg.seed, epoch) + 1)
            test_loss, test_acc = (evaluate(model, test_set, objective, max(cfg.batch_size, 256),
                                            device)
                                   if test_set is not None else (math.nan, math.nan))
            failed = None
        except ValueError as err:  # Sinkhorn's refusal of non-finite logits, or another error
            failed = err
        # A checkpoint is good only if every tensor in it is finite: the loss of every step can
        # be finite while the last update, or a batch norm's statistics, are not.
        bad = _first_nonfinite(model, optimizer)
        if bad is None and test_set is not None and failed is None and not math.isfinite(test_loss):
            bad = "the test loss"
        if bad is not None:
            _close(bar)
            raise _diverged(cfg, epoch + 1, n_steps, n_steps, bad, at_end=True) from failed
        if failed is not None:
            raise failed
        history.epoch.append(epoch + 1)
        history.train_loss.append(s[0] / n_seen)
        history.train_acc.append(s[3] / n_seen if scored else math.nan)
        history.test_loss.append(test_loss)
        history.test_acc.append(test_acc)
        history.norm.append(s[1] / n_steps)
        if lambda_ent > 0:
            history.ent.append(s[2] / n_steps)
        else:
            with torch.no_grad():
                history.ent.append(float(representation_losses(model)[1]))
        history.temperature.append(tau)
        history.seconds.append(time.perf_counter() - t0)
        if cfg.snapshots:
            history.snapshots.append(learned_stacks(model))
        if bar is not None:
            bar.set_postfix(epoch=epoch + 1, loss=f"{s[0] / n_seen:.3g}",
                            test_acc=f"{test_acc:.3f}" if test_set is not None else "-")
        if cfg.checkpoint is not None:
            save_checkpoint({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                             "epoch": epoch + 1, "history": history.as_dict(),
                             "config": cfg.as_dict()}, cfg.checkpoint)
        if callback is not None:
            callback(epoch + 1, history)
    if bar is not None:
        bar.close()
    return history


def _close(bar) -> None:
    if bar is not None:
        bar.close()


def _first_nonfinite(model: nn.Module, optimizer: torch.optim.Optimizer | None) -> str | None:
    """The first of the model's parameters and buffers and the optimiser's state tensors that
    holds a NaN or an infinity, named, or None when all are finite. One host read per device."""
    named = [(f"the parameter {n}", t) for n, t in model.named_parameters()]
    named += [(f"the buffer {n}", t) for n, t in model.named_buffers()]
    if optimizer is not None:
        for key, state in optimizer.state_dict()["state"].items():
            named += [(f"the optimizer state {name!r} of parameter {key}", t)
                      for name, t in state.items() if isinstance(t, Tensor)]
    named = [(n, t) for n, t in named if t.is_floating_point() or t.is_complex()]
    by_device: dict[torch.device, list[int]] = {}
    for k, (_, t) in enumerate(named):
        by_device.setdefault(t.device, []).append(k)
    for device, ks in by_device.items():
        finite = torch.stack([torch.isfinite(named[k][1].detach()).all() for k in ks]).tolist()
        for k, ok in zip(ks, finite):
            if not ok:
                return named[k][0]
    return None


def _diverged(cfg: TrainConfig, epoch: int, step: int, n_steps: int, what: str,
              at_end: bool = False) -> "TrainingDiverged":
    if cfg.checkpoint is None:
        kept = "no checkpoint was configured (TrainConfig.checkpoint is None)"
    elif epoch - 1 > 0 and Path(cfg.checkpoint).exists():
        kept = (f"the last good checkpoint, {cfg.checkpoint} (after epoch {epoch - 1}), is kept "
                "and was not overwritten")
    else:
        kept = f"no epoch finished before it, so no checkpoint was written to {cfg.checkpoint}"
    where = (f"by the end of epoch {epoch} (step {step} of {n_steps})" if at_end
             else f"in epoch {epoch} at step {step} of {n_steps}")
    return TrainingDiverged(
        f"training diverged: {what} became NaN or infinite {where}; {kept}. Lower the learning "
        "rates or check the data for NaNs.", epoch=epoch, step=step)


def train_restarts(
    make_model: Callable[[int], nn.Module],
    train_data,
    test_data=None,
    config: TrainConfig | dict | None = None,
    objective: Objective = classification_objective,
    restarts: int = 1,
) -> tuple[nn.Module, History, list[float]]:
    """Train ``restarts`` models from different seeds; keep the lowest final *training* loss.

    Restarts guard against bad local minima (in chapter 4: two learned matrices settling on the
    same group element). The choice uses the training loss only, never the test set.

    Args:
        make_model: ``seed -> model``; called after :func:`seed_everything` with that seed.
        train_data, test_data, objective: as in :func:`train`.
        config: as in :func:`train`; restart i uses seed ``config.seed + i`` (and, if a
            checkpoint path is given, its own file ``<path>.restart<i>``).
        restarts: how many runs (>= 1).

    Returns:
        ``(model, history, final_train_losses)``: the chosen run and every run's final loss.
    """
    restarts = _check.integer("restarts", restarts, 1)
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**(config or {}))
    best: tuple[nn.Module, History] | None = None
    losses: list[float] = []
    for i in range(restarts):
        run_cfg = TrainConfig(**{**cfg.as_dict(), "seed": cfg.seed + i,
                                 "checkpoint": None if cfg.checkpoint is None else f"{cfg.checkpoint}.restart{i}"})
        seed_everything(run_cfg.seed)
        model = make_model(run_cfg.seed)
        history = train(model, train_data, test_data, run_cfg, objective)
        losses.append(history.train_loss[-1] if history.epoch else math.inf)
        if best is None or losses[-1] < min(losses[:-1]):
            best = (model, history)
    return best[0], best[1], losses
