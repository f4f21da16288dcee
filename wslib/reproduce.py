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
from typing import Any, Callable

import torch

from . import data as wdata
from ._validate import BadArgument, OneLineParser
from .analysis import closure, recovery
from .models import CNN, GCNN, WSCNN, cifar_cnn, cifar_gcnn, cifar_wscnn
from .nn import LearnedRepresentation, count_parameters
from .profiles import PROFILES, SETTINGS, ProfileSettings, current_profile, settings
from .train import (
    History,
    SharedKernelLayer,
    TrainConfig,
    _check_writable_path,
    default_device,
    reconstruction_objective,
    seed_everything,
    train,
    train_restarts,
)

__all__ = ["EXPERIMENTS", "TABLE1_RUNS", "run_experiment", "is_paper_scale", "run_table1", "toy_recipe",
           "toy_model", "write_result", "main"]

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
    callback: Callable[[int, History], None] | None = None,
) -> dict[str, Any]:
    """Train one model on one experiment at the scale of ``profile``; return the result record.

    Args:
        experiment: a key of ``EXPERIMENTS``.
        model: ``cnn``, ``gcnn`` or ``wscnn`` (toys: ``wscnn``, the learned layer).
        profile: ``quick`` / ``tutorial`` / ``paper`` (default: ``WSLIB_PROFILE``).
        seed: seeds data subsets, augmentation and initialisation.
        lambda_ent: entropy regulariser weight of WSCNN runs (the paper's "+ent" rows).
        theta: maximum angle of ``partial-rotated-mnist``.
        device: default CUDA when present.
        checkpoint_dir: where to checkpoint (``None``: no checkpoints).
        task: labels of the toy problems, ``"invariant"`` or ``"equivariant"``.
        callback: passed to :func:`wslib.train.train` (MNIST and CIFAR runs): called after
            every epoch as ``callback(epoch, history)``.

    Returns:
        a JSON-serialisable dict with ``metrics``, ``provenance``, ``config``, ``history``.
        ``paper_scale`` is true only when every setting is the paper's (:func:`is_paper_scale`).
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
    variant = _run_variant(experiment, model, lambda_ent, theta, task)
    ckpt = (Path(checkpoint_dir) / f"{experiment}_{variant}_{profile}_seed{seed}.pt"
            if checkpoint_dir is not None else None)
    if ckpt is not None:  # before the data and the training: a checkpoint must be writable
        _check_writable_path(ckpt, "the checkpoint")
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
        history: History = train(net, tr, te, cfg, callback=callback)
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
        "paper_scale": is_paper_scale(exp.kind, s, dataset, len(history), cfg.epochs),
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
            **({"note": f"lambda_ent = {lambda_ent:g} is our choice: the paper does not report the "
                        "entropy weight of its '+ent' rows"} if lambda_ent and exp.kind != "toy" else {}),
            "train_seconds_per_epoch": [round(x, 3) for x in history.seconds],
            "command": "python -m wslib.reproduce " + " ".join(_cli_args(experiment, model, profile, seed,
                                                                             lambda_ent, theta, task)),
        },
        "config": {k: v for k, v in cfg.as_dict().items() if k not in ("progress", "checkpoint")},
        "history": {k: v for k, v in history.as_dict().items() if k != "snapshots"},
    }
    return result


# Full dataset sizes (train, test) that the paper trains and tests on.
_FULL_SIZES = {"mnist": (60_000, 10_000), "cifar": (50_000, 10_000)}


def is_paper_scale(kind: str, s: ProfileSettings, dataset: dict, epochs_trained: int, epochs: int) -> bool:
    """Whether a finished run used every setting of the paper: the paper profile's settings
    unchanged, the full training and test sets (MNIST 60,000 / 10,000, CIFAR-10 50,000 /
    10,000), and all of its epochs trained."""
    if s != SETTINGS["paper"] or epochs_trained != epochs or epochs_trained == 0:
        return False
    full = _FULL_SIZES.get(kind)
    return full is None or (dataset.get("train_size"), dataset.get("test_size")) == full


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


# --- Table 1 (MNIST) in one command: eight runs as parallel processes --------------------------

# The "+ent" rows' weight: the paper does not report it; 0.01 is recorded as our choice.
TABLE1_ENT = 0.01
# (experiment, model, lambda_ent) of the paper's Table 1, MNIST part.
TABLE1_RUNS: tuple[tuple[str, str, float], ...] = tuple(
    (exp, model, ent) for exp in ("rotated-mnist", "scaled-mnist")
    for model, ent in (("cnn", 0.0), ("gcnn", 0.0), ("wscnn", 0.0), ("wscnn", TABLE1_ENT)))
# Test accuracy (%) the paper reports for the same rows (mean ± std over its seeds).
TABLE1_PAPER = {
    ("rotated-mnist", "cnn"): "98.48 ± .08", ("scaled-mnist", "cnn"): "99.30 ± .01",
    ("rotated-mnist", "gcnn"): "98.96 ± .14", ("scaled-mnist", "gcnn"): "97.50 ± .15",
    ("rotated-mnist", "wscnn"): "97.56 ± .07", ("scaled-mnist", "wscnn"): "99.27 ± .04",
    ("rotated-mnist", f"wscnn-ent{TABLE1_ENT:g}"): "98.04 ± .11",
    ("scaled-mnist", f"wscnn-ent{TABLE1_ENT:g}"): "99.24 ± .01",
}
_ROW_NAMES = {"cnn": "CNN", "gcnn": "GCNN (C4)", "wscnn": "WSCNN + norm",
              f"wscnn-ent{TABLE1_ENT:g}": "WSCNN + norm + ent"}
_PROGRESS = "WSLIB-PROGRESS "


def _run_variant(experiment: str, model: str, lambda_ent: float, theta: float, task: str) -> str:
    """The model part of a run's file names: model, entropy weight, angle, task."""
    return model + (f"-ent{lambda_ent:g}" if lambda_ent else "") + \
        (f"-theta{theta:g}" if experiment == "partial-rotated-mnist" else "") + \
        ("-equivariant" if task == "equivariant" else "")


def _variant(model: str, lambda_ent: float) -> str:
    return model + (f"-ent{lambda_ent:g}" if lambda_ent else "")


def _result_path(results_dir: Path, experiment: str, variant: str, profile: str, seed: int) -> Path:
    return Path(results_dir) / experiment / f"{variant}_{profile}_seed{seed}.json"


def _progress_printer(steps_per_epoch: int, epochs: int) -> Callable[[int, History], None]:
    """A train() callback that prints one machine-readable line per epoch (read by table1)."""

    def report(epoch: int, history: History) -> None:
        seconds = history.seconds[-1]
        line = {"epoch": epoch, "epochs": epochs, "train_loss": history.train_loss[-1],
                "test_acc": history.test_acc[-1], "seconds": seconds,
                "steps_per_s": steps_per_epoch / seconds if seconds > 0 else None}
        print(_PROGRESS + json.dumps(_json_safe(line)), flush=True)

    return report


def _finished(path: Path, s: ProfileSettings) -> dict | None:
    """The result at ``path`` if it exists and finished every epoch of these settings."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    done = saved.get("metrics", {}).get("epochs_trained") == s.mnist_epochs
    return saved if done and saved.get("provenance", {}).get("profile_settings") == s.as_dict() else None


def run_table1(profile: str, device: str, seed: int = 0, jobs: int | None = None,
               results_dir: str | Path = REPO_ROOT / "results",
               checkpoint_dir: str | Path = REPO_ROOT / "runs" / "checkpoints",
               out=None) -> dict[tuple[str, str], dict]:
    """The MNIST rows of the paper's Table 1 -- CNN, GCNN, WSCNN, WSCNN + entropy on rotated and
    on scaled digits -- as parallel processes at the scale of ``profile``.

    Each run is ``python -m wslib.reproduce <experiment> --model ...`` in its own process, with
    its own atomic checkpoint (rerunning resumes every unfinished run where it stopped; a run
    whose result file is complete for these settings is not rerun) and its own provenance JSON.
    One progress line per run and epoch is printed as it arrives, then the table.

    Args:
        profile: ``quick`` ... ``paper`` (:mod:`wslib.profiles`).
        device: ``"cpu"`` or ``"cuda"``; all runs share it (one GPU holds all eight).
        jobs: processes at once (default: all eight on CUDA, one per CPU core on a CPU).
        out: where to print (default stdout).

    Returns:
        ``{(experiment, variant): result dict}`` of every run that finished.
    """
    import threading

    out = out or sys.stdout
    s = settings(profile)
    n_runs = len(TABLE1_RUNS)
    cores = os.cpu_count() or 1
    jobs = max(1, min(n_runs, jobs or (n_runs if device == "cuda" else cores)))
    # CPU threads per process: the cores shared out, so parallel runs do not oversubscribe.
    threads = max(1, cores // jobs)
    results: dict[tuple[str, str], dict] = {}
    pending = []
    for exp, model, ent in TABLE1_RUNS:
        variant = _variant(model, ent)
        saved = _finished(_result_path(Path(results_dir), exp, variant, profile, seed), s)
        if saved is not None:
            results[(exp, variant)] = saved
            print(f"[{exp} / {variant}] already finished ({saved['metrics']['epochs_trained']} epochs)",
                  file=out, flush=True)
        else:
            pending.append((exp, model, ent, variant))
    steps = (s.mnist_train_size or _FULL_SIZES["mnist"][0]) // s.mnist_batch_size
    print(f"table1: {len(pending)} of {n_runs} runs to train, profile {profile}, device {device}, "
          f"{jobs} at a time, {threads} CPU thread(s) each; {s.mnist_epochs} epochs of "
          f"~{steps} steps", file=out, flush=True)
    lock = threading.Lock()
    failures: list[str] = []

    def run_one(exp: str, model: str, ent: float, variant: str) -> None:
        cmd = [sys.executable, "-m", "wslib.reproduce", exp, "--model", model, "--profile", profile,
               "--seed", str(seed), "--device", device, "--results-dir", str(results_dir),
               "--checkpoint-dir", str(checkpoint_dir), "--no-progress", "--progress-lines"]
        if ent:
            cmd += ["--lambda-ent", f"{ent:g}"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WSLIB_TORCH_THREADS": str(threads)}
        tag, tail = f"[{exp} / {variant}]", []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                cwd=REPO_ROOT, env=env)
        for line in proc.stdout:
            if line.startswith(_PROGRESS):
                p = json.loads(line[len(_PROGRESS):])
                rate = (f", {p['seconds']:.1f} s, {p['steps_per_s']:.1f} steps/s with evaluation"
                        if p.get("steps_per_s") else "")
                acc = f"{p['test_acc']:.4f}" if p.get("test_acc") is not None else "-"
                with lock:
                    print(f"{tag} epoch {p['epoch']}/{p['epochs']}: train loss {p['train_loss']:.4f}, "
                          f"test accuracy {acc}{rate}", file=out, flush=True)
            else:
                tail = (tail + [line.rstrip()])[-15:]
        if proc.wait() != 0:
            with lock:
                failures.append(f"{tag} exited with status {proc.returncode}:\n  " + "\n  ".join(tail))
            return
        saved = _finished(_result_path(Path(results_dir), exp, variant, profile, seed), s)
        if saved is None:
            with lock:
                failures.append(f"{tag} finished without a complete result file")
            return
        results[(exp, variant)] = saved

    queue = list(pending)
    workers = []

    def worker() -> None:
        while True:
            with lock:
                if not queue:
                    return
                item = queue.pop(0)
            run_one(*item)

    for _ in range(min(jobs, len(pending))):
        t = threading.Thread(target=worker, daemon=True)
        t.start()
        workers.append(t)
    for t in workers:
        t.join()
    print(file=out)
    print(format_table1(results, profile), file=out, flush=True)
    for failure in failures:
        print(f"error: {failure}", file=out, flush=True)
    return results


def format_table1(results: dict[tuple[str, str], dict], profile: str) -> str:
    """The table: test accuracy (%) of every run, next to the paper's."""
    lines = [f"Table 1 (MNIST), profile {profile}: test accuracy %, ours (paper's)",
             f"{'model':<22} {'rotated MNIST':>24} {'scaled MNIST':>24}"]
    all_paper = True
    for variant, name in _ROW_NAMES.items():
        cells = []
        for exp in ("rotated-mnist", "scaled-mnist"):
            r = results.get((exp, variant))
            ours = "not run" if r is None else f"{100 * r['metrics']['test_acc']:.2f}"
            all_paper = all_paper and r is not None and r.get("paper_scale") is True
            cells.append(f"{ours} ({TABLE1_PAPER[(exp, variant)]})")
        lines.append(f"{name:<22} {cells[0]:>24} {cells[1]:>24}")
    lines.append("every run at the paper's scale (paper_scale: true)" if all_paper else
                 "not at the paper's scale: these numbers are not comparable with the paper's")
    return "\n".join(lines)


def _cuda_missing(device: str | None) -> str | None:
    if device is not None and device.startswith("cuda") and not torch.cuda.is_available():
        return (f"--device {device} was asked for, but torch {torch.__version__} sees no CUDA "
                "device on this machine; use --device cpu")
    return None


def _check_arguments(args: argparse.Namespace) -> None:
    """Refuse, before any work, what argparse's types let through: non-finite or negative
    numbers, an unknown device, unwritable result and checkpoint locations."""
    if not math.isfinite(args.lambda_ent) or args.lambda_ent < 0:
        raise BadArgument(f"--lambda-ent must be a finite number >= 0; got {args.lambda_ent}")
    if not math.isfinite(args.theta) or not 0 < args.theta <= 360:
        raise BadArgument(f"--theta must be an angle in degrees in (0, 360]; got {args.theta}")
    if args.jobs is not None and args.jobs < 1:
        raise BadArgument(f"--jobs must be >= 1; got {args.jobs}")
    if args.device is not None:
        try:
            torch.device(args.device)
        except (RuntimeError, ValueError):
            raise BadArgument(f"--device must name a torch device such as cpu or cuda; got "
                              f"{args.device!r}") from None
    threads = os.environ.get("WSLIB_TORCH_THREADS")
    if threads and not (threads.isdigit() and int(threads) >= 1):
        raise BadArgument(f"WSLIB_TORCH_THREADS must be a positive integer; got {threads!r}")
    try:
        _check_writable_path(args.results_dir, "--results-dir", folder=True)
        _check_writable_path(args.checkpoint_dir, "--checkpoint-dir", folder=True)
        if args.experiment in EXPERIMENTS:
            profile = args.profile or current_profile()
            variant = _run_variant(args.experiment, args.model, args.lambda_ent, args.theta, args.task)
            _check_writable_path(_result_path(Path(args.results_dir), args.experiment, variant,
                                              profile, args.seed), "the result file")
    except ValueError as err:
        raise BadArgument(str(err)) from None


def main(argv: list[str] | None = None) -> int:
    """The command line ``python -m wslib.reproduce`` (``argv``: its arguments, default
    ``sys.argv[1:]``); returns the exit status: 0 on success, 2 for bad arguments (one line on
    stderr, checked before any training) or a missing dataset, 1 if the result cannot be
    written after all (it is then printed)."""
    parser = OneLineParser(prog="python -m wslib.reproduce", description=__doc__.split("\n\n")[0],
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
    parser.add_argument("--jobs", type=int, default=None,
                        help="table1: runs at once (default: all on CUDA, one per core on a CPU)")
    parser.add_argument("--progress-lines", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    try:
        args = parser.parse_args(argv)
        if args.list or not args.experiment:
            print(f"{'table1':24s} the MNIST rows of Table 1 (8 runs, parallel processes)")
            for e in EXPERIMENTS.values():
                print(f"{e.name:24s} models: {', '.join(e.models):16s} {e.paper:16s} {e.description}")
            return 0
        _check_arguments(args)
    except BadArgument as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    missing = _cuda_missing(args.device)
    if missing:
        print(f"error: {missing}", file=sys.stderr)
        return 2
    if os.environ.get("WSLIB_TORCH_THREADS"):  # set by table1 for each of its processes
        torch.set_num_threads(int(os.environ["WSLIB_TORCH_THREADS"]))
    if args.experiment == "table1":
        try:
            done = run_table1(args.profile or current_profile(), args.device or str(default_device()),
                              args.seed, args.jobs, args.results_dir, args.checkpoint_dir)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        return 0 if len(done) == len(TABLE1_RUNS) else 1
    callback = None
    if args.progress_lines and args.experiment in EXPERIMENTS and EXPERIMENTS[args.experiment].kind == "mnist":
        s = settings(args.profile)
        callback = _progress_printer((s.mnist_train_size or _FULL_SIZES["mnist"][0]) // s.mnist_batch_size,
                                     s.mnist_epochs)
    try:
        result = run_experiment(args.experiment, args.model, args.profile, args.seed, args.lambda_ent,
                                args.theta, args.device, args.checkpoint_dir, not args.no_progress,
                                args.task, callback=callback)
    except ValueError as err:  # bad arguments or a missing dataset: say so, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        path = write_result(result, args.results_dir)
    except OSError as err:  # checked before training, but the disk may have changed since
        print(json.dumps(_json_safe(result), indent=2, ensure_ascii=False))
        print(f"error: the result could not be written ({err}); it is printed above",
              file=sys.stderr)
        return 1
    m = result["metrics"]
    print(f"{result['experiment']} / {result['model']} / profile {result['profile']}: "
          f"test accuracy {m['test_acc']:.4f} after {m['epochs_trained']} epochs "
          f"({result['provenance']['wall_time_s']:.1f} s) -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
