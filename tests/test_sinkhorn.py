import pytest
import torch

from wslib import doubly_stochastic_error, entropy_loss, log_sinkhorn, normalization_loss, sinkhorn


def test_rows_and_columns_sum_to_one(device):
    torch.manual_seed(0)
    m = sinkhorn(torch.randn(5, 7, 7, device=device), n_iter=50)
    assert (m >= 0).all()
    ones = torch.ones(5, 7, device=device)
    torch.testing.assert_close(m.sum(-1), ones, atol=1e-5, rtol=0)
    torch.testing.assert_close(m.sum(-2), ones, atol=1e-6, rtol=0)
    assert doubly_stochastic_error(m).max() < 1e-5


def test_large_multiple_of_a_permutation_gives_that_permutation():
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(1))
    p = torch.eye(9)[perm]
    torch.testing.assert_close(sinkhorn(50.0 * p), p, atol=1e-6, rtol=0)


@pytest.mark.parametrize("scale", [1e2, 1e4, 1e6])
def test_extreme_logits_stay_finite(scale, device):
    torch.manual_seed(2)
    logits = torch.randn(3, 6, 6, device=device) * scale
    m = sinkhorn(logits)
    assert torch.isfinite(m).all()
    assert torch.isfinite(log_sinkhorn(logits)).all()
    # Convergence is slow for such logits, but every entry is a probability and the last
    # (column) normalisation holds exactly.
    assert m.min() >= 0 and m.max() <= 1
    torch.testing.assert_close(m.sum(-2), torch.ones(3, 6, device=device), atol=1e-5, rtol=0)
    logits.requires_grad_(True)
    sinkhorn(logits).sum().backward()
    assert torch.isfinite(logits.grad).all()


def test_gradcheck_float64():
    torch.manual_seed(3)
    logits = torch.randn(2, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: sinkhorn(x, n_iter=5, temperature=0.7), (logits,))


def test_low_temperature_sharpens():
    torch.manual_seed(4)
    logits = torch.randn(6, 6)
    soft = sinkhorn(logits, temperature=10.0).amax(-1).mean()
    hard = sinkhorn(logits, temperature=0.05, n_iter=100).amax(-1).mean()
    assert soft < 0.3 < 0.9 < hard


def test_doubly_stochastic_error_detects_violations():
    assert doubly_stochastic_error(torch.full((4, 4), 0.25)) == 0
    assert doubly_stochastic_error(torch.full((4, 4), 0.3)) == pytest.approx(0.2)
    bad = torch.eye(3)
    bad[0, 0], bad[0, 1] = 1.5, -0.5
    assert doubly_stochastic_error(bad) == pytest.approx(0.5)


def test_normalization_loss_zero_exactly_at_unit_sums():
    # logsumexp of every row and column of log(1/n · 1) is 0.
    uniform = torch.full((2, 5, 5), -torch.log(torch.tensor(5.0)))
    assert normalization_loss(uniform) == pytest.approx(0.0, abs=1e-10)
    shifted = uniform + 1.0  # every row/column logsumexp becomes 1
    assert normalization_loss(shifted).item() == pytest.approx(2.0)


def test_entropy_zero_for_permutations_and_log_n_rows_for_uniform():
    assert entropy_loss(torch.eye(4)[torch.tensor([2, 0, 3, 1])]).item() == pytest.approx(0.0)
    n = 4
    assert entropy_loss(torch.full((n, n), 1 / n)).item() == pytest.approx(n * torch.log(torch.tensor(4.0)).item())


@pytest.mark.parametrize(
    "bad, match",
    [(torch.randn(3, 4), r"\(\.\.\., n, n\)"), (torch.randn(5), r"\(\.\.\., n, n\)")],
)
def test_non_square_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        sinkhorn(bad)


def test_nan_logits_raise(device):
    x = torch.zeros(3, 3, device=device)
    x[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        sinkhorn(x, check_finite=True)  # checked by default on the CPU only (no GPU sync)
    if device.type == "cpu":
        with pytest.raises(ValueError, match="NaN"):
            sinkhorn(x)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_iter"):
        sinkhorn(torch.zeros(3, 3), n_iter=0)
    with pytest.raises(ValueError, match="temperature"):
        sinkhorn(torch.zeros(3, 3), temperature=0.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="the compiled path is used on CUDA only")
def test_compiled_cuda_path_matches_eager(monkeypatch):
    import importlib

    sk = importlib.import_module("wslib.sinkhorn")  # the module, not the exported function

    torch.manual_seed(5)
    logits = torch.randn(3, 20, 20, device="cuda", dtype=torch.float64, requires_grad=True)
    weights = torch.randn(3, 20, 20, device="cuda", dtype=torch.float64)
    results = []
    for compiled in (False, True):
        monkeypatch.setattr(sk, "COMPILE_ON_CUDA", compiled)
        logits.grad = None
        out = sk.sinkhorn(logits, n_iter=7)
        (out * weights).sum().backward()
        results.append((out.detach(), logits.grad.clone()))
    torch.testing.assert_close(results[0][0], results[1][0])
    torch.testing.assert_close(results[0][1], results[1][1])


def _value_and_grad(logits, method, n_iter=20, temperature=1.0):
    x = logits.clone().requires_grad_(True)
    weights = torch.randn(logits.shape, generator=torch.Generator().manual_seed(9)).to(logits.dtype)
    out = sinkhorn(x, n_iter, temperature, method=method)
    (out * weights).sum().backward()
    return out.detach(), x.grad


@pytest.mark.parametrize("scale", [1.0, 10.0, 60.0])
def test_scaling_form_matches_the_log_domain_loop(scale):
    # The scaling form is the same operator as the unrolled log-domain loop: values and
    # gradients agree to float32 rounding, for near-uniform and near-permutation logits.
    torch.manual_seed(10)
    logits = torch.rand(3, 12, 12) * scale
    ref = _value_and_grad(logits.double(), "log")
    for dtype, tol in ((torch.float32, 2e-6), (torch.float64, 1e-12)):
        val, grad = _value_and_grad(logits.to(dtype), "scaling")
        assert val.dtype == grad.dtype == dtype
        torch.testing.assert_close(val.double(), ref[0], atol=tol, rtol=0)
        torch.testing.assert_close(grad.double(), ref[1], atol=tol * 10, rtol=0)
    # near-permutation logits with a temperature
    perm = torch.eye(10)[torch.randperm(10, generator=torch.Generator().manual_seed(3))]
    noisy = 5.0 * perm + 0.1 * torch.rand(10, 10)
    ref = _value_and_grad(noisy.double(), "log", temperature=0.2)
    val, grad = _value_and_grad(noisy, "scaling", temperature=0.2)
    torch.testing.assert_close(val.double(), ref[0], atol=2e-6, rtol=0)
    torch.testing.assert_close(grad.double(), ref[1], atol=2e-5, rtol=0)


def test_scaling_form_gradcheck_and_automatic_choice():
    torch.manual_seed(11)
    x = torch.randn(2, 5, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: sinkhorn(t, n_iter=6, method="scaling"), (x,))
    assert torch.autograd.gradcheck(lambda t: log_sinkhorn(t, n_iter=4, method="scaling"), (x,))
    sk = __import__("importlib").import_module("wslib.sinkhorn")
    assert sk._resolve(torch.rand(2, 4, 4), None) == "scaling"
    wide = torch.zeros(2, 4, 4)
    wide[1, 0, 0] = 2 * sk.SCALING_MAX_RANGE  # too wide for the scaling form: the log loop
    assert sk._resolve(wide, "auto") == "log"
    torch.testing.assert_close(sinkhorn(wide), sinkhorn(wide, method="log"))
    with pytest.raises(ValueError, match="logit ranges"):
        sinkhorn(wide, method="scaling")
    with pytest.raises(ValueError, match="method must be one of"):
        sinkhorn(wide, method="exact")


# --- Stopping at a tolerance ------------------------------------------------------------------

from wslib.sinkhorn import AUTHORS_TOL, sinkhorn_iterations  # noqa: E402


def _allclose_rule(x, cap=20):
    """The stopping rule as written with torch.allclose at its defaults, counted by hand."""
    for k in range(cap):
        p = x.exp()
        one = torch.ones((), dtype=x.dtype)
        if torch.allclose(p.sum(-1), one) and torch.allclose(p.sum(-2), one):
            return k
        x = x - torch.logsumexp(x, -1, keepdim=True)
        x = x - torch.logsumexp(x, -2, keepdim=True)
    return cap


@pytest.mark.parametrize("n, expected", [(25, 3), (100, 2)])
def test_authors_rule_stops_after_few_iterations_at_the_papers_initialisation(n, expected):
    # Logits U[0,1), stacks of three matrices as in a lifting (25) and a group layer (100).
    for seed in range(5):
        x = torch.rand(3, n, n, generator=torch.Generator().manual_seed(seed))
        assert sinkhorn_iterations(x, 20, AUTHORS_TOL) == _allclose_rule(x) == expected


@pytest.mark.parametrize("tol", [1e-2, 1e-4, AUTHORS_TOL])
def test_result_is_doubly_stochastic_within_tol(tol):
    x = 4 * torch.rand(3, 25, 25, generator=torch.Generator().manual_seed(1))
    k = sinkhorn_iterations(x, 200, tol)
    assert 0 < k < 200  # it stopped early, and not before starting
    for method in ("log", "scaling"):
        m = sinkhorn(x, 200, tol=tol, method=method)
        assert doubly_stochastic_error(m).max() <= tol + 1e-6
        # exactly the fixed-count operator with the counted number of iterations
        torch.testing.assert_close(m, sinkhorn(x, k, method=method), atol=1e-7, rtol=0)
    # One iteration fewer is not yet within tol (for the looser tolerances, where float32
    # rounding cannot hide the difference).
    if tol >= 1e-4:
        assert doubly_stochastic_error(sinkhorn(x, k - 1, method="log")).max() > tol


def test_the_scaling_form_stops_where_the_count_says():
    # The scaling form tests the tolerance inside its loop (in float64) instead of counting
    # first; on stacks like those of training (logits N(0, s²)) it runs the same iterations.
    for n in (9, 25, 100):
        for scale in (0.5, 1.0, 2.0, 4.0, 8.0):
            for seed in range(4):
                x = scale * torch.randn(3, n, n, generator=torch.Generator().manual_seed(seed))
                k = sinkhorn_iterations(x, 20, AUTHORS_TOL)
                fixed = sinkhorn(x, k, method="scaling") if k else x.exp()
                assert torch.equal(sinkhorn(x, 20, tol=AUTHORS_TOL, method="scaling"), fixed)


def test_tol_result_equals_the_fixed_twenty_where_both_converged():
    for n in (25, 100):
        x = torch.rand(3, n, n, generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(sinkhorn(x, 20, tol=AUTHORS_TOL), sinkhorn(x, 20), atol=1e-6,
                                   rtol=0)
        torch.testing.assert_close(log_sinkhorn(x, 20, tol=AUTHORS_TOL).exp(), sinkhorn(x, 20),
                                   atol=1e-6, rtol=0)


def test_gradients_flow_through_the_iterations_that_ran():
    x = torch.rand(2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    k = sinkhorn_iterations(x, 20, 1e-6)
    assert 1 < k < 20
    w = torch.randn(2, 6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    for method in ("log", "scaling"):
        torch.autograd.gradcheck(lambda t: sinkhorn(t, 20, tol=1e-6, method=method), (x.clone().requires_grad_(),))
        a = x.clone().requires_grad_()
        (sinkhorn(a, 20, tol=1e-6, method=method) * w).sum().backward()
        b = x.clone().requires_grad_()
        (sinkhorn(b, k, method=method) * w).sum().backward()
        torch.testing.assert_close(a.grad, b.grad)


def test_tol_stops_before_the_first_iteration_when_already_doubly_stochastic():
    p = torch.full((4, 4), 0.25)  # log of a doubly stochastic matrix
    assert sinkhorn_iterations(p.log(), 20, AUTHORS_TOL) == 0
    torch.testing.assert_close(sinkhorn(p.log(), tol=AUTHORS_TOL), p)
    torch.testing.assert_close(log_sinkhorn(p.log(), tol=AUTHORS_TOL), p.log())


def test_tol_never_exceeds_n_iter():
    x = 30 * torch.rand(2, 9, 9, generator=torch.Generator().manual_seed(5))  # slow to converge
    assert sinkhorn_iterations(x, 3, 1e-9) == 3
    torch.testing.assert_close(sinkhorn(x, 3, tol=1e-9), sinkhorn(x, 3))


@pytest.mark.parametrize("tol", [0, -1e-3, float("nan"), float("inf"), "1e-5", True])
def test_bad_tol_raises(tol):
    with pytest.raises(ValueError, match="tol"):
        sinkhorn(torch.rand(3, 3), tol=tol)
    with pytest.raises(ValueError, match="tol"):
        sinkhorn_iterations(torch.rand(3, 3), 20, tol)


def test_normalization_loss_of_no_matrices_is_zero():
    assert normalization_loss(torch.zeros(0, 5, 5)).item() == 0.0


def test_integer_logits_and_bad_check_finite_are_named():
    with pytest.raises(ValueError, match="^logits must be a floating-point tensor"):
        sinkhorn(torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(TypeError, match="^check_finite must be True or False"):
        sinkhorn(torch.zeros(3, 3), check_finite="yes")
    with pytest.raises(TypeError, match="^n_iter must be an integer"):
        sinkhorn_iterations(torch.zeros(3, 3), 2.5)
