"""Benchmark: what learned weight sharing costs over a plain convolution.

    python -m wslib.bench [--device cuda] [--min-time 2]

At the paper's MNIST sizes (batch 64, 28×28, 32 channels, |H| = 4, k = 5) it prints medians and
these ratios:

* forward+backward of one learned group-conv layer ÷ forward+backward of a plain ``conv2d`` whose
  kernel of the same shape is simply given (the floor: the expansion R_g θ and Sinkhorn are the
  overhead) -- goal ≤ 1.15 on CPU;
* eval-mode forward of the same layer (kernel cached) ÷ plain ``conv2d`` forward -- goal ≤ 1.05;
* one training step (forward, backward, AdamW) of WSCNN, GCNN and CNN, relative to the CNN.
"""
from __future__ import annotations

import argparse
import importlib
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from .models import CNN, GCNN, WSCNN
from .nn import GroupConv2d, LearnedRepresentation, representation_losses

# The module, not the function of the same name that wslib exports.
sk = importlib.import_module("wslib.sinkhorn")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _medians(fns: dict, device: torch.device, min_time: float) -> dict[str, float]:
    """Median seconds per call of each function, timed in alternation (so slow drifts in the
    machine's speed hit all of them alike), for at least ``min_time`` seconds each, >= 5 calls."""
    for fn in fns.values():
        fn()  # warm-up: allocations, cuDNN algorithm choice
    samples = {name: [] for name in fns}
    while min(len(v) for v in samples.values()) < 5 or min(sum(v) for v in samples.values()) < min_time:
        for name, fn in fns.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(v) for name, v in samples.items()}


def layer_benchmarks(device: torch.device, min_time: float, batch=64, size=28, channels=32,
                     group=4, k=5) -> dict[str, float]:
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

    times = _medians({"ws layer fwd+bwd": ws_train, "conv2d fwd+bwd (floor)": floor_train},
                     device, min_time)
    if device.type == "cuda" and sk.COMPILE_ON_CUDA:  # what torch.compile of Sinkhorn buys
        sk.COMPILE_ON_CUDA = False
        times.update(_medians({"ws layer fwd+bwd (eager)": ws_train}, device, min_time))
        sk.COMPILE_ON_CUDA = True
    layer.eval()
    times.update(_medians({"ws layer eval fwd (cached)": ws_eval, "conv2d eval fwd (floor)": floor_eval},
                          device, min_time))
    return times


def training_step_benchmarks(device: torch.device, min_time: float, batch=64) -> dict[str, float]:
    torch.manual_seed(0)
    x = torch.randn(batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (batch,), device=device)
    steps = {}
    for name, model in (("WSCNN-32", WSCNN()), ("GCNN-32", GCNN()), ("CNN-64", CNN())):
        model = model.to(device)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=1e-4)

        def step(model=model, opt=opt):
            opt.zero_grad(set_to_none=True)
            norm, _ = representation_losses(model)
            loss = F.cross_entropy(model(x), y) + 0.1 * norm
            loss.backward()
            opt.step()

        steps[f"train step {name}"] = step
    return _medians(steps, device, min_time)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per measurement")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print("sizes: batch 64, 28×28, 32 channels, |H| = 4, k = 5\n")

    t = layer_benchmarks(device, args.min_time)
    t.update(training_step_benchmarks(device, args.min_time))
    for key, value in t.items():
        print(f"{key:<30} {1e3 * value:10.2f} ms")
    print()
    ratios = [
        ("ws fwd+bwd / conv2d fwd+bwd", t["ws layer fwd+bwd"] / t["conv2d fwd+bwd (floor)"], "<= 1.15"),
        ("ws eval fwd / conv2d fwd", t["ws layer eval fwd (cached)"] / t["conv2d eval fwd (floor)"], "<= 1.05"),
        ("train step WSCNN / CNN", t["train step WSCNN-32"] / t["train step CNN-64"], ""),
        ("train step GCNN / CNN", t["train step GCNN-32"] / t["train step CNN-64"], ""),
        ("train step WSCNN / GCNN", t["train step WSCNN-32"] / t["train step GCNN-32"], ""),
    ]
    print(f"{'ratio':<30} {'value':>10}   goal")
    if "ws layer fwd+bwd (eager)" in t:
        ratios.insert(1, ("  same, eager Sinkhorn", t["ws layer fwd+bwd (eager)"] / t["conv2d fwd+bwd (floor)"], ""))
    for label, value, goal in ratios:
        print(f"{label:<30} {value:10.3f}   {goal}")


if __name__ == "__main__":
    main()
