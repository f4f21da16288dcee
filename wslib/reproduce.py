"""Reproduce the paper's experiments from one command, with a provenance-stamped JSON result.

    python -m wslib.reproduce rotated-mnist --model wscnn --profile paper
    python -m wslib.reproduce toy-shift --profile quick
    python -m wslib.reproduce --list

Each run trains one model on one experiment of the paper (Tables 1-4) or one of
its toy problems, at the scale of a profile (:mod:`wslib.profiles`), and writes
``results/<experiment>/<model>_<profile>_seed<seed>.json`` atomically. The JSON says what was
run and where: git commit (and whether the tree had uncommitted changes), device, library
versions, dataset source and sizes, epochs, seed and wall time -- so that the book can label
every recorded number, and never call a number paper-scale unless ``paper_scale`` is true.
Training checkpoints go to ``runs/checkpoints/`` (ignored by git): rerunning an interrupted
command resumes it.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import data as wdata
from .analysis import closure, recovery
from .models import CNN, GCNN, WSCNN, cifar_cnn, cifar_gcnn, cifar_wscnn
from .nn import LearnedRepresentation, count_parameters
from .profiles import PROFILES, ProfileSettings, current_profile, settings
from .train import (
    History,
    SharedKernelLayer,
    TrainConfig,
    default_device,
    reconstruction_objective,
    seed_everything,
    train,
    train_restarts,
)

__all__ = ["EXPERIMENTS", "run_experiment", "toy_recipe", "toy_model", "write_result", "main"]

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Experiment:
    """One row of the paper: its data, which models it compares, and where it is reported."""

    name: str
    kind: str  # "mnist", "cifar" or "toy"
    models: tuple[str, ...]
    description: str
    paper: str


EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in [
    Experiment("rotated-mnist", "mnist", ("cnn", "gcnn", "wscnn"),
               "MNIST, every digit rotated by U[0°, 360°) (fresh each epoch)", "Table 1"),
    Experiment("scaled-mnist", "mnist", ("cnn", "gcnn", "wscnn"),
               "MNIST, every digit scaled by U[0.3, 1.0] and zero-padded", "Table 1"),
    Experiment("partial-rotated-mnist", "mnist", ("gcnn", "wscnn"),
               "MNIST rotated by U[0, θ] for train and test (--theta, default 90)", "Table 3"),
    Experiment("cifar10", "cifar", ("cnn", "gcnn", "wscnn"),
               "CIFAR-10 without augmentation", "Table 2"),
    Experiment("cifar10-flips", "cifar", ("cnn", "gcnn", "wscnn"),
               "CIFAR-10 with random horizontal flips", "Table 4"),
    Experiment("toy-shift", "toy", ("wscnn",),
               "1-D signals under all 8 cyclic shifts; one learned layer", "§5 toy problems"),
    Experiment("toy-shift-partial", "toy", ("wscnn",),
               "1-D signals under the first half (4) of the 8 cyclic shifts", "§5 toy problems"),
    Experiment("toy-c4", "toy", ("wscnn",),
               "5×5 patterns under the 4 rotations of C4", "§5 toy problems"),
]}


# --- the toy problems: one recipe, shared with chapter 4 --------------------------------------


def toy_recipe(experiment: str, profile: str | None = None, task: str = "invariant",
               seed: int = 0) -> tuple[wdata.ToyData, wdata.ToyData, dict]:
    """Data and training recipe of a toy experiment, as chapter 4 runs it.

    32 random templates (enough to pin down every matrix: with fewer, the stack often
    settles on the same element twice), noise 0.05, the reconstruction objective, AdamW at
    lr 0.05, batch 32. Two phases (``TrainConfig.harden_from``): the first half of the epochs
    lets the stack find its matrices (they stay soft), the second anneals the Sinkhorn
    temperature from 1 to 0.1, which makes them hard.

    Args:
        experiment: ``toy-shift`` (1-D, all 8 cyclic shifts), ``toy-shift-partial`` (the first
            4 of the 8 shifts), or ``toy-c4`` (5×5 patterns under the 4 rotations of C4).
        profile: sets the number of samples and epochs (:class:`~wslib.profiles.ProfileSettings`).
        task: ``"invariant"`` or ``"equivariant"`` labels.
        seed: seeds the data.

    Returns:
        ``(train, test, config)``: two :class:`~wslib.data.ToyData` and a dict of
        :class:`~wslib.train.TrainConfig` fields.
    """
    s = settings(profile)
    n = s.toy_samples + s.toy_samples // 4
    common = dict(n_templates=32, n_samples=n, task=task, noise=0.05, seed=seed)
    if experiment == "toy-shift":
        full = wdata.shifted_signals(length=8, **common)
    elif experiment == "toy-shift-partial":
        full = wdata.shifted_signals(length=8, elements=range(4), **common)
    elif experiment == "toy-c4":
        full = wdata.rotated_patterns(size=5, order=4, **common)
    else:
        raise ValueError(f"{experiment!r} is not a toy experiment; choose from "
                         f"{', '.join(e for e, x in EXPERIMENTS.items() if x.kind == 'toy')}")
    tr, te = full.split(s.toy_samples // 4)
    config = dict(epochs=s.toy_epochs, harden_from=s.toy_epochs // 2, temperature=(1.0, 0.1),
                  batch_size=32, lr=5e-2, lambda_norm=0.1, lambda_ent=0.0, seed=seed)
    return tr, te, config


def toy_model(data: wdata.ToyData, **representation_kwargs) -> SharedKernelLayer:
    """The single learned layer for toy data: one learned matrix per sampled group element
    (the first anchored to the identity) and one base kernel per template."""
    rep = LearnedRepresentation(len(data.sampled), data.representation.shape[1], **representation_kwargs)
    return SharedKernelLayer(rep, data.templates.shape[0], task=data.task)


# --- runners --------------------------------------------------------------------------------


def _git() -> dict[str, Any]:
    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, " \
           f"{torch.get_num_threads()} torch threads)"


def _mnist_model(model: str, s: ProfileSettings) -> torch.nn.Module:
    if model == "cnn":
        return CNN(hidden=2 * s.mnist_hidden, norm=s.mnist_norm)
    if model == "gcnn":
        return GCNN(hidden=s.mnist_hidden, norm=s.mnist_norm)
    return WSCNN(hidden=s.mnist_hidden, norm=s.mnist_norm)


def _cifar_model(model: str, s: ProfileSettings) -> torch.nn.Module:
    if model == "cnn":
        return cifar_cnn(2 * s.cifar_width)
    if model == "gcnn":
        return cifar_gcnn(s.cifar_width)
    return cifar_wscnn(s.cifar_width)


def run_experiment(
    experiment: str,
    model: str = "wscnn",
    profile: str | None = None,
    seed: int = 0,
    lambda_ent: float = 0.0,
    theta: float = 90.0,
    device: str | None = None,
    checkpoint_dir: str | Path | None = "runs/checkpoints",
    progress: bool = True,
    task: str = "invariant",
) -> dict[str, Any]:
    """Train one model on one experiment at the scale of ``profile``; return the result record.

    Args:
        experiment: a key of :data:`EXPERIMENTS`.
        model: ``cnn``, ``gcnn`` or ``wscnn`` (toys: ``wscnn``, the learned layer).
        profile: ``quick`` / ``tutorial`` / ``paper`` (default: ``WSLIB_PROFILE``).
        seed: seeds data subsets, augmentation and initialisation.
        lambda_ent: entropy regulariser weight of WSCNN runs (the paper's "+ent" rows).
        theta: maximum angle of ``partial-rotated-mnist``.
        device: default CUDA when present.
        checkpoint_dir: where to checkpoint (``None``: no checkpoints).
        task: labels of the toy problems, ``"invariant"`` or ``"equivariant"``.

    Returns:
        a JSON-serialisable dict: ``metrics``, ``provenance``, ``config``, ``history``.
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose from {', '.join(EXPERIMENTS)}")
    exp = EXPERIMENTS[experiment]
    if model not in exp.models:
        raise ValueError(f"{experiment} compares {', '.join(exp.models)}; got model {model!r}")
    profile = current_profile() if profile is None else profile
    s = settings(profile)
    dev = torch.device(device) if device is not None else default_device()
    if task not in ("invariant", "equivariant"):
        raise ValueError(f"task must be 'invariant' or 'equivariant'; got {task!r}")
    if task != "invariant" and exp.kind != "toy":
        raise ValueError(f"--task applies to the toy problems only, not {experiment}")
    variant = model + (f"-ent{lambda_ent:g}" if lambda_ent else "") + \
        (f"-theta{theta:g}" if experiment == "partial-rotated-mnist" else "") + \
        ("-equivariant" if task == "equivariant" else "")
    ckpt = (Path(checkpoint_dir) / f"{experiment}_{variant}_{profile}_seed{seed}.pt"
            if checkpoint_dir is not None else None)
    started, t0 = _dt.datetime.now(_dt.timezone.utc), time.perf_counter()
    extra: dict[str, Any] = {}

    if exp.kind == "mnist":
        kwargs = dict(source=s.mnist_source, train_size=s.mnist_train_size,
                      test_size=s.mnist_test_size, seed=seed)
        if experiment == "scaled-mnist":
            tr, te, source = wdata.scaled_mnist(**kwargs)
        else:
            angles = (0.0, float(theta)) if experiment == "partial-rotated-mnist" else (0.0, 360.0)
            tr, te, source = wdata.rotated_mnist(angle_range=angles, **kwargs)
        seed_everything(seed)
        net = _mnist_model(model, s)
        cfg = TrainConfig(epochs=s.mnist_epochs, batch_size=s.mnist_batch_size, lr=s.mnist_lr,
                          lambda_ent=lambda_ent, seed=seed)
        dataset = {"name": "MNIST", "source": source, "train_size": len(tr), "test_size": len(te)}
    elif exp.kind == "cifar":
        tr, te, source = wdata.cifar10(flips=experiment == "cifar10-flips", train_size=s.cifar_train_size,
                                       test_size=s.cifar_test_size, seed=seed)
        seed_everything(seed)
        net = _cifar_model(model, s)
        cfg = TrainConfig(epochs=s.cifar_epochs, batch_size=s.cifar_batch_size, lr=s.cifar_lr,
                          rep_lr=s.cifar_rep_lr, lambda_ent=lambda_ent, seed=seed)
        dataset = {"name": "CIFAR-10", "source": source, "train_size": len(tr), "test_size": len(te)}
    else:
        tr, te, recipe = toy_recipe(experiment, profile, task=task, seed=seed)
        if lambda_ent:
            recipe["lambda_ent"] = lambda_ent
        cfg = TrainConfig(**recipe)
        objective = reconstruction_objective()
        restarts = s.toy_restarts
        dataset = {"name": experiment, "source": "synthetic (wslib.data)", "train_size": len(tr.labels),
                   "test_size": len(te.labels), "group": tr.group.name, "sampled_elements": tr.sampled,
                   "noise": tr.noise, "templates": tr.templates.shape[0], "task": tr.task}

    cfg.device, cfg.progress = str(dev), progress
    cfg.checkpoint = str(ckpt) if ckpt is not None else None
    if exp.kind == "toy":
        # The toy layer's tensors are tiny: on a CPU, extra threads only add synchronisation
        # (measured: 2 threads on a busy 2-core machine were ~17x slower than 1).
        threads = torch.get_num_threads()
        if dev.type == "cpu":
            torch.set_num_threads(1)
        try:
            net, history, losses = train_restarts(lambda _: toy_model(tr), tr, te, cfg, objective, restarts)
            device_name = _device_name(dev)
        finally:
            torch.set_num_threads(threads)
        extra["restart_train_losses"] = [round(x, 5) for x in losses]
    else:
        history: History = train(net, tr, te, cfg)
        device_name = _device_name(dev)
    wall = time.perf_counter() - t0

    if exp.kind == "toy":
        stack = net.representation().detach().cpu()
        rec = recovery(stack[1:], tr.representation, tr.group.element_names)
        clo = closure(stack)
        extra["recovery"] = {
            "coefficients": [[round(float(w), 4) for w in row] for row in rec.coefficients],
            "element": [tr.group.element_names[g] for g in rec.element],
            "weight": [round(w, 4) for w in rec.weight],
            "min_weight": round(rec.min_weight, 4),
            "covered": [tr.group.element_names[g] for g in rec.covered],
            "closure_max_error": round(clo.max_error, 4),
        }

    counts = count_parameters(net)
    result = {
        "experiment": experiment,
        "model": variant,
        "profile": profile,
        "paper_scale": profile == "paper",
        "seed": seed,
        "reported_in": exp.paper,
        "description": exp.description + (f" (θ = {theta:g}°)" if experiment == "partial-rotated-mnist" else ""),
        "metrics": {
            "test_acc": history.test_acc[-1] if history.epoch else math.nan,
            "train_acc": history.train_acc[-1] if history.epoch else math.nan,
            "test_loss": history.test_loss[-1] if history.epoch else math.nan,
            "train_loss": history.train_loss[-1] if history.epoch else math.nan,
            "epochs_trained": len(history),
            **extra,
        },
        "parameters": counts,
        "provenance": {
            "git": _git(),
            "device": device_name,
            "python": platform.python_version(),
            "torch": torch.__version__,
            "dataset": dataset,
            "epochs": cfg.epochs,
            "seed": seed,
            "profile_settings": s.as_dict(),
            "started_utc": started.isoformat(timespec="seconds"),
            "wall_time_s": round(wall, 2),
            "train_seconds_per_epoch": [round(x, 3) for x in history.seconds],
            "command": "python -m wslib.reproduce " + " ".join(_cli_args(experiment, model, profile, seed,
                                                                             lambda_ent, theta, task)),
        },
        "config": {k: v for k, v in cfg.as_dict().items() if k not in ("progress", "checkpoint")},
        "history": {k: v for k, v in history.as_dict().items() if k != "snapshots"},
    }
    return result


def _cli_args(experiment: str, model: str, profile: str, seed: int, lambda_ent: float,
              theta: float, task: str) -> list[str]:
    args = [experiment, "--model", model, "--profile", profile, "--seed", str(seed)]
    if task != "invariant":
        args += ["--task", task]
    if lambda_ent:
        args += ["--lambda-ent", f"{lambda_ent:g}"]
    if experiment == "partial-rotated-mnist":
        args += ["--theta", f"{theta:g}"]
    return args


def _json_safe(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None  # JSON has no NaN; null means "not measured"
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def write_result(result: dict, results_dir: str | Path = REPO_ROOT / "results") -> Path:
    """Write ``result`` to ``results/<experiment>/<model>_<profile>_seed<seed>.json`` atomically."""
    path = Path(results_dir) / result["experiment"] / \
        f"{result['model']}_{result['profile']}_seed{result['seed']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_json_safe(result), f, indent=2, ensure_ascii=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    """The command line ``python -m wslib.reproduce`` (``argv``: its arguments, default
    ``sys.argv[1:]``); returns the exit status: 0 on success, 2 for bad arguments or a
    missing dataset."""
    parser = argparse.ArgumentParser(prog="python -m wslib.reproduce", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("experiment", nargs="?", help="experiment name (see --list)")
    parser.add_argument("--model", default="wscnn", help="cnn, gcnn or wscnn (default wscnn)")
    parser.add_argument("--profile", choices=PROFILES, default=None,
                        help="quick, tutorial or paper (default: $WSLIB_PROFILE, else tutorial)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--lambda-ent", type=float, default=0.0, help="entropy regulariser weight")
    parser.add_argument("--theta", type=float, default=90.0, help="max angle of partial-rotated-mnist")
    parser.add_argument("--task", choices=("invariant", "equivariant"), default="invariant",
                        help="labels of the toy problems")
    parser.add_argument("--device", default=None, help="default: cuda when present, else cpu")
    parser.add_argument("--results-dir", default=str(REPO_ROOT / "results"))
    parser.add_argument("--checkpoint-dir", default=str(REPO_ROOT / "runs" / "checkpoints"))
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    args = parser.parse_args(argv)
    if args.list or not args.experiment:
        for e in EXPERIMENTS.values():
            print(f"{e.name:24s} models: {', '.join(e.models):16s} {e.paper:16s} {e.description}")
        return 0
    try:
        result = run_experiment(args.experiment, args.model, args.profile, args.seed, args.lambda_ent,
                                args.theta, args.device, args.checkpoint_dir, not args.no_progress,
                                args.task)
    except ValueError as err:  # bad arguments or a missing dataset: say so, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    path = write_result(result, args.results_dir)
    m = result["metrics"]
    print(f"{result['experiment']} / {result['model']} / profile {result['profile']}: "
          f"test accuracy {m['test_acc']:.4f} after {m['epochs_trained']} epochs "
          f"({result['provenance']['wall_time_s']:.1f} s) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
