"""wslib: learning symmetries by weight sharing with doubly stochastic tensors.

A small PyTorch library accompanying the tutorial book on van der Linden et al., "Learning
Symmetries via Weight-Sharing with Doubly Stochastic Tensors" (NeurIPS 2024).

Modules, one idea each:
    sinkhorn     -- the log-domain Sinkhorn operator and the paper's regularisers
    groups       -- finite groups as permutations, and their actions on pixel grids
    nn           -- lifting / group convolutions driven by a (fixed or learned) representation
    models       -- the paper's MNIST and CIFAR-10 models (CNN, GCNN, WSCNN)
    equivariance -- one checker for equivariance, used by the tests and the book
    birkhoff     -- Birkhoff-von Neumann decomposition of doubly stochastic matrices
    data         -- (rotated, scaled) MNIST, CIFAR-10, toy data with a known group
    train        -- a plain, resumable training loop with the paper's regularisers
    checkpoints  -- atomic checkpoint files, and the check that a path can be written
    toy_layer    -- the toy problems' single weight-sharing layer and its objective
    analysis     -- how close learned stacks are to a group (convex coefficients, closure),
                    snapping them to permutations and naming the group they generate
    export       -- a learned network's exact copy: every learned stack snapped and fixed
    viz          -- the book's figures, one colour map for matrices
    profiles     -- the quick / tutorial / paper execution profiles
    reproduce    -- `python -m wslib.reproduce`: the paper's experiments as provenance-stamped JSON,
                    one at a time or as sweeps of job arrays (local processes or SLURM)
    bench        -- `python -m wslib.bench`: what learned weight sharing costs over a conv2d

Note that ``wslib.sinkhorn`` is the function; the module is ``importlib.import_module("wslib.sinkhorn")``.
"""
from . import analysis, birkhoff, data, equivariance, export, groups, models, nn, profiles, train, viz
from .analysis import identify_group, snap
from .equivariance import assert_equivariant, equivariance_error
from .export import to_exact
from .groups import cyclic, dihedral, interpolated_rotation_matrix, rotation_stack, shift_twist_stack
from .models import CNN, GCNN, WSCNN
from .nn import (
    FixedRepresentation,
    GroupConv2d,
    LearnedRepresentation,
    LiftingConv2d,
    count_parameters,
    representation_losses,
)
from .profiles import current_profile
from .sinkhorn import doubly_stochastic_error, entropy_loss, log_sinkhorn, normalization_loss, sinkhorn

__version__ = "0.1.0"
