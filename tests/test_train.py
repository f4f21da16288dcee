import math

import pytest
import torch
from torch import nn

from wslib import LearnedRepresentation, LiftingConv2d
from wslib.data import RotatedDataset, shifted_signals
from wslib.train import (
    History,
    SharedKernelLayer,
    TrainConfig,
    TrainingDiverged,
    classification_objective,
    load_checkpoint,
    predict,
    recalibrate_batch_norm,
    reconstruction_objective,
    save_checkpoint,
    seed_everything,
    train,
)


class TinyWS(nn.Module):
    """A learned lifting layer, dropout (to exercise per-epoch seeding) and a linear head."""

    def __init__(self):
        super().__init__()
        self.lift = LiftingConv2d(1, 2, 3, LearnedRepresentation(4, 9, n_iter=5))
        self.drop = nn.Dropout(0.2)
        self.head = nn.Linear(2, 3)

    def forward(self, x):
        return self.head(self.drop(torch.relu(self.lift(x)).mean(dim=(-3, -2, -1))))


def _rotated(n=24):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, 8, 8, generator=g)
    return RotatedDataset(x, torch.arange(n) % 3, seed=1), RotatedDataset(x[:8], torch.arange(8) % 3, train=False)


def _fresh():
    seed_everything(0)
    return TinyWS()


CFG = dict(epochs=3, batch_size=8, lr=1e-2, rep_lr=5e-2, lambda_ent=0.01, temperature=(1.0, 0.5),
           progress=False, device="cpu")


def test_history_has_one_entry_per_epoch_and_snapshots():
    tr, te = _rotated()
    h = train(_fresh(), tr, te, CFG)
    assert h.epoch == [1, 2, 3] and len(h.test_acc) == 3 and 0 <= h.test_acc[-1] <= 1
    assert len(h.snapshots) == 4 and h.snapshots[0]["lift.representation"].shape == (4, 9, 9)
    assert not torch.equal(h.snapshots[0]["lift.representation"], h.snapshots[-1]["lift.representation"])
    assert h.temperature[-1] == pytest.approx(0.5)
    assert all(math.isfinite(v) for v in h.train_loss + h.norm + h.ent)


def test_interrupted_run_resumes_to_the_same_result(tmp_path):
    tr, te = _rotated()
    whole = _fresh()
    h_whole = train(whole, tr, te, {**CFG, "checkpoint": str(tmp_path / "a.pt")})

    class Stop(Exception):
        pass

    def stop_after_one(epoch, history):
        if epoch == 1:
            raise Stop

    ckpt = str(tmp_path / "b.pt")
    with pytest.raises(Stop):
        train(_fresh(), tr, te, {**CFG, "checkpoint": ckpt}, callback=stop_after_one)
    assert load_checkpoint(ckpt)["epoch"] == 1
    tr2, te2 = _rotated()  # a new process would rebuild the datasets too
    resumed = TinyWS()  # deliberately *not* re-seeded: the checkpoint must restore everything
    h_resumed = train(resumed, tr2, te2, {**CFG, "checkpoint": ckpt})
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert h_resumed.train_loss == h_whole.train_loss and h_resumed.test_acc == h_whole.test_acc
    # A finished checkpoint returns its history without training again.
    again = train(TinyWS(), tr2, te2, {**CFG, "checkpoint": ckpt})
    assert again.train_loss == h_whole.train_loss
    # Resuming with a different recipe is refused, by name.
    with pytest.raises(ValueError, match="lambda_ent"):
        train(TinyWS(), tr2, te2, {**CFG, "checkpoint": ckpt, "lambda_ent": 0.5})


def test_checkpoints_are_atomic_and_weights_only(tmp_path):
    path = tmp_path / "sub" / "c.pt"
    save_checkpoint({"x": torch.ones(2), "h": History().as_dict()}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]  # no temporary file left

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        save_checkpoint({"x": Unpicklable()}, path)
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))  # old file intact
    assert [p.name for p in path.parent.iterdir()] == ["c.pt"]


def test_separate_learning_rate_for_representation_logits():
    tr, _ = _rotated(8)
    model = _fresh()
    before = model.lift.representation.logits.detach().clone()
    w_before = model.lift.weight.detach().clone()
    train(model, tr, None, {**CFG, "epochs": 1, "batch_size": 8, "lr": 1e-9, "rep_lr": 1e-1})
    # Adam moves each parameter by about its lr per step.
    assert (model.lift.weight - w_before).abs().max() < 1e-6
    assert (model.lift.representation.logits - before).abs().max() > 1e-2


def test_batch_norm_recalibration_uses_the_current_weights():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    x = 3.0 + 2.0 * torch.randn(64, 1, 6, 6)
    data = (x, torch.zeros(64, dtype=torch.long))
    model(x)  # materialise the lazy layer; the running averages now mix initial and batch values
    model.eval()
    bn = model[1]
    assert recalibrate_batch_norm(model, data, batches=1, batch_size=64) == 1
    assert not model.training and bn.momentum == 0.1  # mode and momentum restored
    with torch.no_grad():
        h = model[0](x)
    # One batch of the whole data: the running statistics are exactly its statistics.
    torch.testing.assert_close(bn.running_mean, h.mean(dim=(0, 2, 3)))
    torch.testing.assert_close(bn.running_var, h.var(dim=(0, 2, 3)))  # PyTorch stores the unbiased one
    # With several batches they are equal-weight averages, not an exponential moving average.
    recalibrate_batch_norm(model, data, batches=4, batch_size=16)
    assert int(bn.num_batches_tracked) == 4
    assert recalibrate_batch_norm(TinyWS(), data, batches=4) == 0  # nothing to do without batch norm


def test_bad_config_and_data_raise():
    with pytest.raises(ValueError, match="TrainConfig.lr must be > 0"):
        TrainConfig(lr=0)
    with pytest.raises(ValueError, match="temperature"):
        TrainConfig(temperature=(1.0, 0.0))
    with pytest.raises(ValueError, match="bn_recalibration"):
        TrainConfig(bn_recalibration=-1)
    with pytest.raises(ValueError, match="must be a torch Dataset"):
        train(TinyWS(), [1, 2, 3], None, {"epochs": 1, "progress": False})


@pytest.mark.parametrize("task", ["invariant", "equivariant"])
def test_toy_layer_learns_shifts(task):
    # A tiny end-to-end run: the reconstruction objective on cyclic shifts of 4 signals.
    d = shifted_signals(n_templates=4, length=4, n_samples=256, task=task, seed=0)
    seed_everything(0)
    layer = SharedKernelLayer(LearnedRepresentation(4, 4, n_iter=10), 4, task=task)
    h = train(layer, d, d, {"epochs": 15, "batch_size": 32, "lr": 5e-2, "progress": False,
                            "device": "cpu"}, objective=reconstruction_objective())
    assert h.train_loss[-1] < 0.5 * h.train_loss[0]
    assert h.test_acc[-1] > 0.9
    with pytest.raises(ValueError, match="values per sample"):
        layer(torch.zeros(2, 5))



# --- a config that means something, a loss that stays finite, checkpoints that are checkpoints --


@pytest.mark.parametrize("field_name, value", [
    ("lr", float("nan")), ("lr", -1e-3), ("rep_lr", float("inf")), ("rep_lr", 0.0),
    ("weight_decay", -1e-4), ("lambda_norm", float("nan")), ("lambda_ent", -0.1),
    ("epochs", -1), ("epochs", 2.5), ("batch_size", 0), ("harden_from", -2),
    ("bn_recalibration", -1), ("num_workers", -1), ("seed", "zero"), ("seed", None),
    ("temperature", (1.0, float("nan"))), ("temperature", (1.0,)), ("temperature", 1.0),
    ("device", "gpu"), ("device", 3), ("checkpoint", 3.5), ("snapshots", "yes"),
    ("progress", 1),
])
def test_meaningless_settings_are_refused_by_name(field_name, value):
    with pytest.raises(ValueError, match=rf"TrainConfig\.{field_name} must"):
        TrainConfig(**{field_name: value})


def test_every_config_field_is_checked():
    # Each field, set to a value of the wrong kind, must be refused by name -- including fields
    # added later, whose annotation must be one the check knows.
    import numpy as np
    from dataclasses import fields

    wrong = {"bool": "yes", "int": 1.5, "float": "fast", "str": 1.5,
             "tuple[float, float]": "hot"}
    for f in fields(TrainConfig):
        kind = f.type.removesuffix("| None").strip()
        assert kind in wrong, f"TrainConfig.{f.name}: annotation {f.type!r} is not validated"
        with pytest.raises(ValueError, match=rf"TrainConfig\.{f.name} must"):
            TrainConfig(**{f.name: wrong[kind]})
    # NumPy scalars are accepted and stored as plain Python numbers (checkpoints stay loadable
    # with weights_only=True and compare equal on resumption).
    cfg = TrainConfig(epochs=np.int64(3), lr=np.float32(0.5), temperature=[2, 1], device="cpu")
    assert type(cfg.epochs) is int and type(cfg.lr) is float and cfg.temperature == (2.0, 1.0)


def _poisoned(call_number, value):
    """Cross-entropy, except that call ``call_number`` (1-based) adds ``value`` to the loss."""
    calls = [0]

    def objective(model, x, y):
        calls[0] += 1
        loss, logits = classification_objective(model, x, y)
        return (loss + value if calls[0] == call_number else loss), logits

    return objective


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_diverging_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path, value):
    tr, _ = _rotated()  # 24 samples in batches of 8: 3 steps per epoch
    ckpt = tmp_path / "c.pt"
    after_epoch = {}

    def remember(epoch, history):
        after_epoch[epoch] = ckpt.read_bytes()

    with pytest.raises(TrainingDiverged, match=r"epoch 2 at step 2 of 3") as err:
        train(_fresh(), tr, None, {**CFG, "checkpoint": str(ckpt)},
              objective=_poisoned(5, value), callback=remember)
    assert (err.value.epoch, err.value.step) == (2, 2)
    assert "last good checkpoint" in str(err.value) and str(ckpt) in str(err.value)
    assert list(after_epoch) == [1] and ckpt.read_bytes() == after_epoch[1]  # never overwritten
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    # Without a checkpoint the error says so; a loss that is bad from the first step names it.
    with pytest.raises(TrainingDiverged, match=r"epoch 1 at step 1 of 3.*no checkpoint"):
        train(_fresh(), tr, None, CFG, objective=_poisoned(1, value))


class _NaNInEpoch(torch.utils.data.Dataset):
    """Sixteen finite digits-sized inputs, NaN in every input during one epoch (0-based)."""

    def __init__(self, bad_epoch: int):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(16, 1, 12, 12, generator=g), torch.arange(16) % 10
        self.bad_epoch, self.epoch = bad_epoch, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return self.x[i] * (math.nan if self.epoch == self.bad_epoch else 1.0), self.y[i]


def test_nan_data_in_a_learned_model_is_reported_as_divergence_where_it_began():
    # The NaN loss of step 1 makes the logits NaN, and Sinkhorn refuses them at step 2: that
    # refusal must surface as the divergence of step 1, not as an error about Sinkhorn's input.
    from wslib.models import WSCNN

    seed_everything(0)
    model = WSCNN(hidden=2, num_blocks=2, n_iter=3, norm="batch")
    with pytest.raises(TrainingDiverged, match=r"the loss became NaN or infinite in epoch 2 at "
                                               r"step 1 of 2") as err:
        train(model, _NaNInEpoch(bad_epoch=1), None, {**CFG, "epochs": 3, "lambda_ent": 0.0,
                                                      "temperature": None})
    assert (err.value.epoch, err.value.step) == (2, 1)
    assert isinstance(err.value.__cause__, ValueError)


def test_a_checkpoint_is_written_only_when_every_tensor_in_it_is_finite(tmp_path):
    # At a huge learning rate the loss of every step of an epoch can stay finite while a batch
    # norm's running variance overflows: that epoch diverged, and no checkpoint may keep it.
    from wslib.models import CNN

    seed_everything(0)
    x, y = torch.randn(64, 1, 12, 12, generator=torch.Generator().manual_seed(1)), torch.arange(64) % 10
    ckpt = tmp_path / "c.pt"
    with pytest.raises(TrainingDiverged, match=r"became NaN or infinite") as err:
        train(CNN(hidden=4, num_blocks=2, norm="batch"), (x, y), None,
              dict(epochs=4, batch_size=8, lr=1e5, progress=False, device="cpu",
                   checkpoint=str(ckpt)))
    state = load_checkpoint(ckpt)  # at this rate, the first epoch still ends finite
    tensors = list(state["model"].values()) + [
        t for st in state["optimizer"]["state"].values() for t in st.values()
        if isinstance(t, torch.Tensor)]
    assert all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())
    assert err.value.epoch == state["epoch"] + 1


class Foreign:
    """A class that ``weights_only`` loading must refuse to construct."""


def test_corrupted_or_foreign_checkpoints_are_named(tmp_path):
    tr, _ = _rotated()
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a checkpoint")
    truncated = tmp_path / "truncated.pt"
    save_checkpoint({"x": torch.ones(1000)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:300])
    for path in (garbage, truncated):
        with pytest.raises(ValueError, match=rf"{path}.*save_checkpoint") as err:
            train(_fresh(), tr, None, {**CFG, "checkpoint": str(path)})
        assert "weights_only" in str(err.value)

    foreign = tmp_path / "foreign.pt"
    torch.save({"net": Foreign()}, foreign)  # an arbitrary pickled object: refused, never run
    with pytest.raises(ValueError, match=rf"{foreign}.*not a readable checkpoint"):
        load_checkpoint(foreign)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, other)
    with pytest.raises(ValueError, match=rf"{other}.*expected the keys.*missing model"):
        train(_fresh(), tr, None, {**CFG, "checkpoint": str(other)})
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")


_KILLABLE_RUN = r"""
import sys, time
from pathlib import Path

import torch
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from test_train import CFG, _fresh, _rotated
from wslib.train import train

ckpt, pause_epoch, marker = sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
tr, te = _rotated()


class PausesMidEpoch(torch.utils.data.Dataset):
    # Halfway through epoch `pause_epoch` (0-based) it says so and waits to be killed.
    def __len__(self):
        return len(tr)

    def set_epoch(self, epoch):
        self.epoch, self.served = epoch, 0
        tr.set_epoch(epoch)

    def __getitem__(self, i):
        self.served += 1
        if self.epoch == pause_epoch and self.served > len(tr) // 2:
            marker.touch()
            time.sleep(600)
        return tr[i]


train(_fresh(), PausesMidEpoch(), te, {**CFG, "epochs": 4, "checkpoint": ckpt})
"""


def test_a_run_killed_mid_epoch_resumes_to_the_same_result(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    script = tmp_path / "run.py"
    script.write_text(_KILLABLE_RUN)
    here = str(Path(__file__).resolve().parent)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def run(ckpt, pause_epoch, marker):
        return subprocess.Popen([sys.executable, str(script), here, str(ckpt), str(pause_epoch),
                                 str(marker)], env=env, stderr=subprocess.PIPE, text=True)

    whole, killed = tmp_path / "whole.pt", tmp_path / "killed.pt"
    proc = run(whole, -1, tmp_path / "unused")
    assert proc.wait(timeout=300) == 0, proc.stderr.read()

    marker = tmp_path / "mid-epoch"
    proc = run(killed, 2, marker)
    deadline = time.monotonic() + 300
    while not marker.exists():
        assert proc.poll() is None, f"the run ended before it was killed: {proc.stderr.read()}"
        assert time.monotonic() < deadline, "the run never reached the middle of epoch 3"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert load_checkpoint(killed)["epoch"] == 2  # epochs 1-2 saved, epoch 3 lost mid-way

    proc = run(killed, -1, tmp_path / "unused")  # a new process resumes from the checkpoint
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    a, b = load_checkpoint(whole), load_checkpoint(killed)
    assert a["epoch"] == b["epoch"] == 4
    for name, tensor in a["model"].items():
        assert torch.equal(tensor, b["model"][name]), name
    for key in ("train_loss", "train_acc", "test_loss", "test_acc", "norm", "ent"):
        assert a["history"][key] == b["history"][key], key


def test_predict_is_the_eval_mode_forward_in_batches_and_keeps_the_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))
    model.train()
    for _ in range(3):  # move the running statistics away from their initial values
        model(torch.randn(16, 4) * 3 + 1)
    x = torch.randn(10, 4)
    out = predict(model, x, batch_size=3)  # batches of 3, 3, 3, 1
    assert model.training, "predict must leave the model in the mode it found it in"
    assert out.device.type == "cpu" and not out.requires_grad
    model.eval()
    with torch.no_grad():
        expected = model(x)
    # In training mode batch norm would use each batch's statistics: a different answer.
    assert torch.allclose(out, expected, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        predict(model, x, batch_size=0)


def test_train_config_sets_the_sinkhorn_tolerance_of_every_learned_stack():
    from wslib import WSCNN
    from wslib.nn import LearnedRepresentation
    from wslib.sinkhorn import AUTHORS_TOL

    torch.manual_seed(0)
    model = WSCNN(hidden=2, num_blocks=2)
    x, y = torch.randn(8, 1, 28, 28), torch.randint(0, 10, (8,))
    train(model, (x, y), None, TrainConfig(epochs=1, batch_size=8, sinkhorn_tol=AUTHORS_TOL,
                                           device="cpu", progress=False, snapshots=False))
    reps = [m for m in model.modules() if isinstance(m, LearnedRepresentation)]
    assert reps and all(r.tol == AUTHORS_TOL for r in reps)
    with pytest.raises(ValueError, match="sinkhorn_tol"):
        TrainConfig(sinkhorn_tol=0.0)
