"""The experiment scripts' helpers (experiments/common.py) and the hybrid model they study."""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from common import c4_recovery, reached_goal  # noqa: E402

from wslib.groups import rotation_stack  # noqa: E402
from wslib.models import GroupNet, hybrid_representations  # noqa: E402
from wslib.nn import LearnedRepresentation  # noqa: E402


def test_exact_rotations_reach_the_goal_and_uniform_matrices_do_not():
    exact = rotation_stack(5)
    rec = c4_recovery(exact)
    assert rec["element"] == ["r90", "r180", "r270"] and min(rec["weight"]) > 0.99
    assert reached_goal(rec)
    uniform = torch.cat([torch.eye(25)[None], torch.full((3, 25, 25), 1 / 25)])
    assert not reached_goal(c4_recovery(uniform))
    # Two matrices on the same rotation do not cover C4, however sharp they are.
    assert not reached_goal(c4_recovery(exact[[0, 1, 1, 3]]))


def test_hybrid_with_rotation_logits_is_a_c4_invariant_network():
    # Logits that are large on the rotation permutations make Sinkhorn return (almost) exactly
    # them; with the exact shift-twist group layers the hybrid is then a C4 G-CNN.
    torch.manual_seed(0)
    model = GroupNet(hybrid_representations(), hidden=4, num_blocks=3).eval()
    lifting = model.convs[0].representation
    assert isinstance(lifting, LearnedRepresentation)
    assert sum(isinstance(m, LearnedRepresentation) for m in model.modules()) == 1
    with torch.no_grad():
        lifting.logits.copy_(30.0 * rotation_stack(5)[1:])
        x = torch.randn(2, 1, 28, 28)
        y, y_rot = model(x), model(torch.rot90(x, 1, dims=(-2, -1)))
    assert torch.allclose(y, y_rot, atol=1e-4)
    with torch.no_grad():  # the wrong order (r270 in slot 1) breaks the invariance
        lifting.logits.copy_(30.0 * rotation_stack(5)[[3, 2, 1]])
        assert not torch.allclose(model(x), model(torch.rot90(x, 1, dims=(-2, -1))), atol=1e-3)
