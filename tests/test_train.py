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
    load_checkpoint,
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
    with pytest.raises(ValueError, match="learning rates"):
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
