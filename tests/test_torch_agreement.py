"""lrcore's optimizers against torch.optim (the for-loop implementation) over 100 steps.

Every rule and option combination, float32 and float64, sizes that are not a
multiple of any vector width, on every kernel variant this CPU can run.
Skipped when torch is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

from rules import DTYPES, SIZES, TORCH_RULE_CASES, TORCH_RULE_IDS, make_gradients

torch = pytest.importorskip("torch")

STEPS = 100
# After 100 steps the trajectories differ only by rounding: torch's vectorized
# CPU kernels fuse some multiply-adds, lrcore's never do.
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
STATE_NAMES = ("momentum_buffer", "sum", "square_avg", "grad_avg", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
               "exp_inf", "mu_product", "z")


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    # torch's OpenMP threads keep spinning after each operation and starve
    # lrcore's pool on a small machine; one torch thread keeps the run fast.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def run_both(rule, config, size, dtype, seed=0):
    shape = size if isinstance(size, tuple) else (size,)
    rng = np.random.default_rng(seed)
    initial = rng.standard_normal(shape).astype(dtype)
    ours = initial.copy()
    theirs = torch.tensor(initial.copy())
    optimizer = rule.optimizer([ours], **config)
    # torch keeps per-tensor scalar state (NAdam's mu_product) in its default dtype, float32
    # unless changed; lrcore keeps it in float64. For float64 parameters torch is asked for
    # float64 scalars too, else its float32 product alone would part the trajectories by ~1e-10.
    default_dtype = torch.get_default_dtype()
    if dtype == np.float64 and rule.description.scalars:
        torch.set_default_dtype(torch.float64)
    try:
        torch_optimizer = rule.torch_optimizer([theirs], **config)
        for (grad,) in make_gradients(rng, [shape], dtype, STEPS):
            optimizer.step([grad])
            theirs.grad = torch.from_numpy(grad.copy())
            torch_optimizer.step()
    finally:
        torch.set_default_dtype(default_dtype)
    return ours, theirs.numpy(), optimizer, torch_optimizer


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("rule", "config"), TORCH_RULE_CASES, ids=TORCH_RULE_IDS)
def test_matches_torch(each_isa, rule, config, size, dtype):
    ours, theirs, optimizer, torch_optimizer = run_both(rule, config, size, dtype)
    np.testing.assert_allclose(ours, theirs, **TOLERANCE[dtype])
    # The optimizer state agrees too, entry by entry.
    our_state = optimizer.state_dict()["state"][0]
    their_state = torch_optimizer.state_dict()["state"].get(0, {})
    compared = 0
    for name in STATE_NAMES:
        theirs_value = their_state.get(name)
        if isinstance(theirs_value, torch.Tensor):
            np.testing.assert_allclose(our_state[name], theirs_value.numpy(), **TOLERANCE[dtype], err_msg=name)
            compared += 1
    assert compared >= 1 or rule.name == "sgd" and not config.get("momentum")
    if "step" in their_state:
        assert our_state["step"] == int(their_state["step"]) == STEPS


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("rule", "config"), TORCH_RULE_CASES, ids=TORCH_RULE_IDS)
def test_matches_torch_two_dimensional(rule, config, dtype):
    ours, theirs, optimizer, torch_optimizer = run_both(rule, config, (37, 29), dtype, seed=1)
    assert ours.shape == theirs.shape == (37, 29)
    np.testing.assert_allclose(ours, theirs, **TOLERANCE[dtype])
    our_state = optimizer.state_dict()["state"].get(0, {})
    for name, value in torch_optimizer.state_dict()["state"].get(0, {}).items():
        if name in STATE_NAMES:
            np.testing.assert_allclose(our_state[name], value.numpy(), **TOLERANCE[dtype], err_msg=name)
