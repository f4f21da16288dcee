"""Benchmark: what learned weight sharing costs over a plain convolution and over a G-CNN.

    python -m wslib.bench [--devices cpu,cuda] [--threads N] [--min-time 2] [--baseline]

At the paper's MNIST sizes (batch 64, 28×28, 32 channels, |H| = 4, k = 5) it times, on every
device asked for, medians of calls made in alternation (so a machine that slows down or speeds
up hits every variant alike), and prints these ratios:

* forward+backward of one learned group-conv layer ÷ forward+backward of a plain ``conv2d`` whose
  kernel of the same shape is simply given (the floor: Sinkhorn and the expansion R_g θ are the
  overhead);
* eval-mode forward of the same layer (kernel cached) ÷ the plain ``conv2d`` forward;
* one training step of WSCNN-32 ÷ one of GCNN-32, the step being exactly what
  :func:`wslib.train.train` runs (forward, the paper's regularisers with λ_norm = 0.1 and
  λ_ent = 0.01, backward, fused AdamW), every stack normalised once per step;
* the same for the book's small models (8 channels, a lifting and three group layers, batch norm);
* both WSCNN steps again with the authors' Sinkhorn rule (stop once the stack's row and column
  sums are allclose to 1, at most 20 iterations: :data:`wslib.sinkhorn.AUTHORS_TOL`) instead of
  a fixed 20 iterations.

``--baseline`` adds the training step as it was before the step was restructured (each layer's
log-domain Sinkhorn run twice per step, once for the forward pass and once for the entropy
regulariser; unfused AdamW), so one run shows both. On CUDA ``--compile`` (default on there) adds
the steps captured with ``torch.compile(mode="reduce-overhead")`` for all three models, and the
layer timed with the fused Triton Sinkhorn.
"""
from __future__ import annotations

import argparse
import importlib
import math
import platform
import sys
import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import BadArgument, OneLineParser
from .models import CNN, GCNN, WSCNN
from .nn import GroupConv2d, LearnedRepresentation, representation_losses
from .train import _step_loss, classification_objective

# The module, not the function of the same name that wslib exports.
sk = importlib.import_module("wslib.sinkhorn")

LAMBDA_NORM, LAMBDA_ENT = 0.1, 0.01


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _medians(fns: dict[str, Callable[[], None]], device: torch.device, min_time: float,
             warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation, for at least ``min_time``
    seconds and 5 calls each, after ``warmup`` untimed calls (allocations, cuDNN choices)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in fns}
    while min(len(v) for v in samples.values()) < 5 or min(sum(v) for v in samples.values()) < min_time:
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in samples.items()}


def _set_method(model: nn.Module, method: str | None) -> None:
    for m in model.modules():
        if isinstance(m, LearnedRepresentation):
            m.method = method


def layer_benchmarks(device: torch.device, min_time: float, batch=64, size=28, channels=32,
                     group=4, k=5, fused: bool = False) -> dict[str, float]:
    """Medians (s) of one learned group-conv layer against ``conv2d`` with the kernel given."""
    torch.manual_seed(0)
    layer = GroupConv2d(channels, channels, k, LearnedRepresentation(group, group * k * k)).to(device)
    x = torch.randn(batch, channels, group, size, size, device=device, requires_grad=True)
    weight = layer.expanded_kernel().detach().clone().requires_grad_(True)
    bias = torch.zeros(channels * group, device=device, requires_grad=True)
    flat = x.detach().view(batch, channels * group, size, size).clone().requires_grad_(True)

    def ws_train():
        layer(x).sum().backward()

    def floor_train():
        F.conv2d(flat, weight, bias).sum().backward()

    def ws_eval():
        with torch.no_grad():
            layer(x)

    def floor_eval():
        with torch.no_grad():
            F.conv2d(flat, weight, bias)

    fns = {"ws layer fwd+bwd": ws_train, "conv2d fwd+bwd (floor)": floor_train}
    if fused:
        fused_layer = GroupConv2d(channels, channels, k, LearnedRepresentation(group, group * k * k)).to(device)
        fused_layer.load_state_dict(layer.state_dict())
        _set_method(fused_layer, "fused")
        fns["ws layer fwd+bwd (fused Sinkhorn)"] = lambda: fused_layer(x).sum().backward()
    times = _medians(fns, device, min_time)
    if device.type == "cuda" and sk.COMPILE_ON_CUDA:  # what torch.compile of Sinkhorn buys
        sk.COMPILE_ON_CUDA = False
        times.update(_medians({"ws layer fwd+bwd (eager)": ws_train}, device, min_time))
        sk.COMPILE_ON_CUDA = True
    layer.eval()
    times.update(_medians({"ws layer eval fwd (cached)": ws_eval, "conv2d eval fwd (floor)": floor_eval},
                          device, min_time))
    return times


def _train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, compile: bool = False,
                baseline: bool = False) -> Callable[[], None]:
    """One training step of ``model`` as :func:`wslib.train.train` runs it; ``baseline``: as it
    ran before (Sinkhorn twice per layer and step in the log domain, unfused AdamW)."""
    device = x.device
    if baseline:
        _set_method(model, "log")
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            norm, ent = representation_losses(model)
            loss = F.cross_entropy(model(x), y) + LAMBDA_NORM * norm + LAMBDA_ENT * ent
            loss.backward()
            opt.step()

        return step
    fused = device.type in ("cpu", "cuda")
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4, fused=fused or None,
                            capturable=compile and device.type == "cuda")
    loss_fn = _step_loss
    if compile:
        loss_fn = torch.compile(_step_loss, mode="reduce-overhead" if device.type == "cuda" else None)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model, classification_objective, x, y, LAMBDA_NORM, LAMBDA_ENT)[0].backward()
        opt.step()

    return step


# (label, constructor): the paper's MNIST models, and the book's small ones.
# "(tol)": the same WSCNN with the authors' Sinkhorn rule.
PAPER_MODELS = (("WSCNN-32", lambda: WSCNN()), ("WSCNN-32 (tol)", lambda: WSCNN(tol=sk.AUTHORS_TOL)),
                ("GCNN-32", lambda: GCNN()), ("CNN-64", lambda: CNN()))
BOOK_MODELS = (("WSCNN-8/3", lambda: WSCNN(hidden=8, num_blocks=4, norm="batch")),
               ("WSCNN-8/3 (tol)", lambda: WSCNN(hidden=8, num_blocks=4, norm="batch", tol=sk.AUTHORS_TOL)),
               ("GCNN-8/3", lambda: GCNN(hidden=8, num_blocks=4, norm="batch")))


def training_step_benchmarks(device: torch.device, min_time: float, batch=64, baseline: bool = False,
                             compile: bool = False) -> dict[str, float]:
    """Medians (s) of training steps; the paper's models, then the book's, each set interleaved."""
    torch.manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    times = {}
    for models in (PAPER_MODELS, BOOK_MODELS):
        steps = {}
        for name, make in models:
            torch.manual_seed(0)
            steps[f"train step {name}"] = _train_step(make().to(device), x, y)
            if name.endswith("(tol)"):  # a data-dependent loop: neither baseline nor compiled
                continue
            if baseline and name.startswith("WSCNN"):
                torch.manual_seed(0)
                steps[f"train step {name} (before)"] = _train_step(make().to(device), x, y, baseline=True)
            if compile:
                torch.manual_seed(0)
                steps[f"train step {name} (compiled)"] = _train_step(make().to(device), x, y, compile=True)
        times.update(_medians(steps, device, min_time, warmup=3 if compile else 2))
    return times


def ratios(t: dict[str, float]) -> list[tuple[str, float, str]]:
    """(label, value, goal) per reported ratio, from the medians of one device."""
    out = [
        ("ws fwd+bwd / conv2d fwd+bwd", t["ws layer fwd+bwd"] / t["conv2d fwd+bwd (floor)"], "<= 1.3 GPU"),
        ("ws eval fwd / conv2d fwd", t["ws layer eval fwd (cached)"] / t["conv2d eval fwd (floor)"], "<= 1.05"),
        ("step WSCNN-32 / GCNN-32", t["train step WSCNN-32"] / t["train step GCNN-32"],
         "<= 1.2 GPU, <= 1.05 CPU"),
        ("step WSCNN-8/3 / GCNN-8/3", t["train step WSCNN-8/3"] / t["train step GCNN-8/3"], "<= 1.15 CPU"),
        ("step GCNN-32 / CNN-64", t["train step GCNN-32"] / t["train step CNN-64"], ""),
    ]
    optional = [  # (label, numerator, denominator, goal): where both were measured
        ("step WSCNN-32 (tol) / GCNN-32", "train step WSCNN-32 (tol)", "train step GCNN-32",
         "<= 1.05 CPU"),
        ("step WSCNN-8/3 (tol) / GCNN-8/3", "train step WSCNN-8/3 (tol)", "train step GCNN-8/3",
         "<= 1.15 CPU"),
        ("  layer, fused Sinkhorn", "ws layer fwd+bwd (fused Sinkhorn)", "conv2d fwd+bwd (floor)"),
        ("  layer, eager Sinkhorn", "ws layer fwd+bwd (eager)", "conv2d fwd+bwd (floor)"),
        ("  step WSCNN-32 before / GCNN-32", "train step WSCNN-32 (before)", "train step GCNN-32"),
        ("  step WSCNN-8/3 before / GCNN-8/3", "train step WSCNN-8/3 (before)", "train step GCNN-8/3"),
        ("  compiled WSCNN-32 / GCNN-32", "train step WSCNN-32 (compiled)", "train step GCNN-32 (compiled)"),
        ("  compiled WSCNN-8/3 / GCNN-8/3", "train step WSCNN-8/3 (compiled)", "train step GCNN-8/3 (compiled)"),
    ]
    out += [(label, t[a] / t[b], goal[0] if goal else "")
            for label, a, b, *goal in optional if a in t and b in t]
    return out


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def _devices(text: str) -> list[torch.device]:
    """The comma-separated devices of ``--devices``; a BadArgument for an empty list or a name
    torch does not know."""
    names = [d.strip() for d in text.split(",") if d.strip()]
    if not names:
        raise BadArgument("--devices must name at least one device, e.g. cpu or cpu,cuda")
    try:
        return [torch.device(d) for d in names]
    except (RuntimeError, ValueError):
        raise BadArgument(f"--devices must be torch devices such as cpu or cuda; got {text!r}") from None


def main(argv=None) -> int:
    """The command line ``python -m wslib.bench``; returns the exit status: 0 after printing the
    medians and ratios, 2 for a bad argument (one line on stderr)."""
    try:
        return _main(argv)
    except BadArgument as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _main(argv=None) -> int:
    parser = OneLineParser(prog="python -m wslib.bench", description=__doc__.split("\n")[0])
    default = "cpu,cuda" if torch.cuda.is_available() else "cpu"
    parser.add_argument("--devices", default=default, help=f"comma-separated (default {default})")
    parser.add_argument("--device", dest="devices", help="the same as --devices")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    parser.add_argument("--baseline", action="store_true", help="also time the step as it was before")
    parser.add_argument("--compile", choices=("auto", "yes", "no"), default="auto",
                        help="also time torch.compile'd steps (auto: on CUDA only; minutes on a CPU)")
    parser.add_argument("--skip-steps", action="store_true", help="time the layer only")
    args = parser.parse_args(argv)
    devices = _devices(args.devices)
    if args.threads is not None and args.threads < 1:
        raise BadArgument(f"--threads must be >= 1; got {args.threads}")
    if not math.isfinite(args.min_time) or args.min_time < 0:
        raise BadArgument(f"--min-time must be a finite number of seconds >= 0; got {args.min_time}")
    if any(d.type == "cuda" for d in devices) and not torch.cuda.is_available():
        raise BadArgument("CUDA was asked for, but torch sees no CUDA device here")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; "
          "batch 64, 28×28, 32 channels, |H| = 4, k = 5\n")
    results = {}
    for device in devices:
        compile = args.compile == "yes" or (args.compile == "auto" and device.type == "cuda")
        fused = device.type == "cuda"
        t = layer_benchmarks(device, args.min_time, fused=fused)
        if not args.skip_steps:
            t.update(training_step_benchmarks(device, args.min_time, baseline=args.baseline, compile=compile))
        results[device] = t
        print(f"== {device} ({_device_name(device)}): medians")
        for key, value in t.items():
            print(f"  {key:<40} {1e3 * value:10.2f} ms")
        print()
    for device, t in results.items():
        if args.skip_steps:
            continue
        print(f"== {device}: ratios")
        for label, value, goal in ratios(t):
            print(f"  {label:<40} {value:8.3f}   {goal}")
        print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
