"""The fused Sinkhorn (wslib.fused_sinkhorn) against the unrolled log-domain loop under autograd.

The Triton kernels run under Triton's interpreter on the CPU (TRITON_INTERPRET=1), so these
tests check the kernels themselves without a GPU; sizes stay small because the interpreter is
slow. On a machine with CUDA the same comparisons run on the GPU as well.
"""
import importlib
import os
import sys

import pytest
import torch

# Triton reads the interpreter switch when it is imported (its own library functions are
# compiled then), so it must be set first. Only without a GPU: with one, the interpreter would
# also take over every Triton kernel that torch.compile generates in this test session.
if "triton" not in sys.modules and not torch.cuda.is_available():
    os.environ["TRITON_INTERPRET"] = "1"
INTERPRETER = os.environ.get("TRITON_INTERPRET") == "1"
pytest.importorskip("triton", reason="the fused Sinkhorn's kernels are written in Triton")

from wslib import fused_sinkhorn as fs  # noqa: E402
from wslib.sinkhorn import log_sinkhorn, sinkhorn  # noqa: E402

sk = importlib.import_module("wslib.sinkhorn")


@pytest.fixture(params=(["interpreter"] if INTERPRETER else []) + (["cuda"] if torch.cuda.is_available() else []))
def where(request):
    """Where the kernels run: Triton's CPU interpreter (no GPU), or a real GPU."""
    return torch.device("cpu" if request.param == "interpreter" else "cuda")


def _logits(kind: str, batch: int, n: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(n + batch)
    if kind == "random":
        return torch.randn(batch, n, n, generator=g) * 2
    # near-permutation: a large multiple of a permutation plus a little noise
    perms = torch.stack([torch.eye(n)[torch.randperm(n, generator=g)] for _ in range(batch)])
    return 8.0 * perms + 0.3 * torch.rand(batch, n, n, generator=g)


def _value_and_grad(fn, logits, weights):
    x = logits.clone().requires_grad_(True)
    out = fn(x)
    (out.exp() * weights).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("kind", ["random", "near-permutation"])
@pytest.mark.parametrize("batch, n, n_iter", [(3, 7, 5), (2, 16, 20), (1, 25, 12)])
def test_kernels_match_unrolled_autograd(where, kind, batch, n, n_iter):
    assert fs._use_triton(torch.empty(0, device=where))  # the kernels, not the PyTorch fallback
    logits = _logits(kind, batch, n).to(where)
    weights = torch.randn(batch, n, n, generator=torch.Generator().manual_seed(1)).to(where)
    ref_val, ref_grad = _value_and_grad(lambda t: sk._iterate(t, n_iter), logits, weights)
    val, grad = _value_and_grad(lambda t: fs.fused_log_sinkhorn(t, n_iter), logits, weights)
    torch.testing.assert_close(val, ref_val, atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(grad, ref_grad, atol=2e-5, rtol=1e-4)


def test_pytorch_path_is_the_same_algorithm(monkeypatch):
    # Without CUDA or the interpreter, the op runs the potential-form algorithm in PyTorch.
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    logits = _logits("near-permutation", 2, 9).double()
    assert not fs._use_triton(logits)
    weights = torch.randn(2, 9, 9, dtype=torch.float64)
    ref = _value_and_grad(lambda t: sk._iterate(t.float(), 7).double(), logits, weights)
    got = _value_and_grad(lambda t: fs.fused_log_sinkhorn(t, 7), logits, weights)
    assert got[0].dtype == torch.float64
    torch.testing.assert_close(got[0], ref[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got[1], ref[1], atol=1e-5, rtol=1e-4)


def test_method_fused_through_the_public_functions(where):
    logits = _logits("random", 2, 6).to(where)
    torch.testing.assert_close(sinkhorn(logits, 6, temperature=0.5, method="fused"),
                               sinkhorn(logits, 6, temperature=0.5, method="log"), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(log_sinkhorn(logits, 6, method="fused"),
                               log_sinkhorn(logits, 6, method="log"), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="up to 256"):
        fs.fused_log_sinkhorn(torch.zeros(1, 300, 300, device=where), 2)


def test_custom_op_registration_and_capture(monkeypatch):
    # opcheck: the fake (meta) implementation, schema and autograd registration are consistent.
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x = torch.randn(2, 5, 5, requires_grad=True)
    torch.library.opcheck(torch.ops.wslib.log_sinkhorn_fwd.default, (x, 4))
    # torch.compile captures a function calling the op as one graph (fullgraph: no break).
    fn = torch.compile(lambda t: fs.fused_log_sinkhorn(t, 4).exp().sum(), backend="aot_eager",
                       fullgraph=True)
    torch.testing.assert_close(fn(x), fs.fused_log_sinkhorn(x, 4).exp().sum())
