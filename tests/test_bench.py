import pytest
import torch

from wslib import bench


def test_medians_alternate_and_take_the_median():
    calls = []
    times = bench._medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                           torch.device("cpu"), min_time=0.0, warmup=1)
    assert set(times) == {"a", "b"} and all(t >= 0 for t in times.values())
    assert calls[:2] == ["a", "b"] and calls[2:6] == ["a", "b", "a", "b"]  # warm-up, then in turn


def test_layer_benchmark_at_small_sizes_and_ratios():
    t = bench.layer_benchmarks(torch.device("cpu"), 0.0, batch=2, size=8, channels=2, group=4, k=3)
    assert {"ws layer fwd+bwd", "conv2d fwd+bwd (floor)", "ws layer eval fwd (cached)"} <= set(t)
    medians = {**t, "train step WSCNN-32": 2.0, "train step GCNN-32": 1.6, "train step CNN-64": 1.0,
               "train step WSCNN-8/3": 1.1, "train step GCNN-8/3": 1.0, "train step WSCNN-8/3 (before)": 1.5,
               "train step WSCNN-8/3 (tol)": 1.05}
    got = {label: value for label, value, _ in bench.ratios(medians)}
    assert got["step WSCNN-32 / GCNN-32"] == pytest.approx(1.25)
    assert got["step WSCNN-8/3 / GCNN-8/3"] == pytest.approx(1.1)
    assert got["  step WSCNN-8/3 before / GCNN-8/3"] == pytest.approx(1.5)
    assert got["step WSCNN-8/3 (tol) / GCNN-8/3"] == pytest.approx(1.05)
    assert "step WSCNN-32 (tol) / GCNN-32" not in got
    assert "  compiled WSCNN-32 / GCNN-32" not in got  # only what was measured


def test_bench_step_is_the_training_step():
    # The timed step trains: a few steps lower the loss of a fixed batch.
    torch.manual_seed(0)
    model = bench.WSCNN(hidden=2, num_blocks=2, n_iter=4, norm="batch")
    x, y = torch.randn(8, 1, 12, 12), torch.arange(8) % 10
    step = bench._train_step(model, x, y)
    before = torch.nn.functional.cross_entropy(model(x), y).item()
    for _ in range(5):
        step()
    assert torch.nn.functional.cross_entropy(model(x), y).item() < before


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_it(capsys):
    assert bench.main(["--devices", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.parametrize("argv, says", [
    (["--threads", "0"], "--threads"),
    (["--threads", "two"], "--threads"),
    (["--min-time", "-1"], "--min-time"),
    (["--min-time", "nan"], "--min-time"),
    (["--devices", ""], "--devices"),
    (["--devices", "cpu,nonsense"], "--devices"),
    (["--no-such-option"], "--no-such-option"),
])
def test_every_bad_argument_is_one_line_and_status_2(argv, says, capsys):
    assert bench.main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
