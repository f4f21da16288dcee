"""Running one experiment: train one model at the scale of a profile and write its result, a JSON
file that says what was run and where (git commit, device, library versions, data, settings,
seed, wall time).
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from .. import data as wdata
from ..analysis import closure, recovery
from ..checkpoints import _check_writable_path
from ..nn import count_parameters
from ..profiles import SETTINGS, ProfileSettings, current_profile, settings
from ..toy_layer import reconstruction_objective
from ..train import History, TrainConfig, default_device, seed_everything, train, train_restarts
from .experiments import EXPERIMENTS, _cifar_model, _mnist_model, toy_model, toy_recipe

# The working copy: results/ and runs/ live here, and the provenance's git commit is read here.
REPO_ROOT = Path(__file__).resolve().parents[2]


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
