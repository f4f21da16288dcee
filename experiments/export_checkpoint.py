"""Copy the most C4-like run of the C4 investigation to checkpoints/, with its provenance JSON.

For each model kind -- the hybrid (learned lifting stack, exact group layers) and the fully
learned WSCNN -- "best" is the run that reached the goal (R1..R3 cover r90, r180, r270 with
convex weight ≥ 0.7) with the largest smallest weight; without such a run, the one with the
largest smallest weight among runs whose nearest elements cover the three rotations; a kind
with no covering run is not exported. Writes checkpoints/ch5_<kind>_c4.pt and .json.

Usage:
    python experiments/export_checkpoint.py [results/ch5/c4_investigation*.json ...]
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, write_json  # noqa: E402

DESCRIPTION = {
    "hybrid": "hybrid GroupNet (learned lifting stack, exact C4 shift-twist group layers) -- not the paper's WSCNN",
    "wscnn": "the paper's WSCNN (every stack learned; config.group_init says how its group stacks started)",
}
LOAD = {
    "hybrid": "GroupNet(hybrid_representations(), hidden, num_blocks=blocks, norm=norm)",
    "wscnn": "WSCNN(hidden, num_blocks=blocks, norm=norm)",
}


def export(kind: str, runs: list) -> None:
    covering = [t for t in runs if t[0]["config"]["model"] == kind
                and sorted(t[0]["final"]["element"]) == ["r180", "r270", "r90"]]
    if not covering:
        print(f"no {kind} run covers the three rotations: nothing exported")
        return
    best, prov, src = max(covering, key=lambda t: (t[0]["goal_reached"], min(t[0]["final"]["weight"])))
    cfg = best["config"]
    out = ROOT / f"checkpoints/ch5_{kind}_c4.pt"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".pt.tmp")
    shutil.copyfile(ROOT / best["state_dict_file"], tmp)
    tmp.replace(out)
    meta = {"model": DESCRIPTION[kind],
            "config": cfg, "hidden": cfg["hidden"], "blocks": cfg["blocks"],
            "norm": cfg.get("norm", "layer"), "epochs": cfg["epochs"],
            "seed": cfg["seed"], "steps": best["steps"], "data": best["data"],
            "test_acc": best["test_acc"], "final": best["final"], "goal_reached": best["goal_reached"],
            "first_goal_epoch": best.get("first_goal_epoch"),
            "wall_s": best["wall_s"], "device": prov["device"], "command": prov["command"],
            "git_commit": prov["git_commit"], "recorded_utc": prov["utc"],
            "results_file": str(src.relative_to(ROOT)),
            "load": f"{LOAD[kind]}.load_state_dict(torch.load(path, weights_only=True))"}
    write_json(meta, out.with_suffix(".json"))
    print(f"exported {kind} {cfg['name']!r}: {best['final']['element']} {best['final']['weight']}")


def main() -> None:
    files = [Path(f) for f in sys.argv[1:]] or sorted((ROOT / "results/ch5").glob("c4_investigation*.json"))
    runs = []
    for f in files:
        doc = json.loads(f.read_text())
        runs += [(r, doc["provenance"], f) for r in doc["runs"]]
    for kind in DESCRIPTION:
        export(kind, runs)


if __name__ == "__main__":
    main()
