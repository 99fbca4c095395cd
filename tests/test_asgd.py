"""ASGD beyond the shared tables: its per-tensor eta and mu as torch keeps them, and its ranges.

tests/rules.py rows already hold ASGD to the numpy reference bitwise, to torch
over 100 steps (with float64 scalars in torch for float64 parameters) and
through the bad-input, transaction and checkpoint tables. Here: eta and mu
step by step against torch's, with the lr changing every step (each step sets
them from its own lr) and a parameter first stepped late; the average's start
after t0; a state without eta and mu; and the argument checks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import functional, reference

torch = pytest.importorskip("torch")


@pytest.fixture
def torch_float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch keeps eta and mu in its default dtype; lrcore in float64
    yield
    torch.set_default_dtype(previous)


def test_eta_and_mu_follow_each_steps_lr_like_torch(torch_float64_default):
    rng = np.random.default_rng(0)
    start = [rng.standard_normal(11), rng.standard_normal((3, 4))]
    ours = [p.copy() for p in start]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in start]
    config = dict(lr=0.05, lambd=0.01, alpha=0.6, t0=3.0, weight_decay=0.01)
    opt = lrcore.ASGD(ours, **config)
    torch_opt = torch.optim.ASGD(theirs, foreach=False, **config)
    lrs = [0.3, 0.05, 0.07, 0.01, 0.2, 0.02, 0.09, 0.04]
    for k, lr in enumerate(lrs):
        opt.param_groups[0]["lr"] = lr
        torch_opt.param_groups[0]["lr"] = lr
        # Parameter 1 has no gradient for the first two steps: its eta and mu are created at step 3's lr.
        grads = [rng.standard_normal(p.shape) if (i == 0 or k >= 2) else None for i, p in enumerate(start)]
        opt.step(grads)
        for tensor, grad in zip(theirs, grads):
            tensor.grad = None if grad is None else torch.from_numpy(grad.copy())
        torch_opt.step()
        for i in range(2):
            if grads[i] is None and k < 2:
                continue
            state, their_state = opt.state_dict()["state"][i], torch_opt.state[theirs[i]]
            assert float(state["eta"]) == their_state["eta"].item(), (k, i)
            assert float(state["mu"]) == their_state["mu"].item(), (k, i)
            np.testing.assert_allclose(ours[i], theirs[i].detach().numpy(), rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(state["ax"], their_state["ax"].numpy(), rtol=1e-13, atol=1e-15)
    state = opt.state_dict()["state"]
    assert state[0]["step"] == len(lrs) and state[1]["step"] == len(lrs) - 2


def test_the_average_is_a_copy_until_t0_then_moves():
    w = np.zeros(5)
    opt = lrcore.ASGD([w], lr=0.1, t0=2.0)
    grads = [np.full(5, float(k + 1)) for k in range(4)]
    params = []
    for grad in grads:
        opt.step([grad])
        params.append(w.copy())
    ax = opt.state_dict()["state"][0]["ax"]
    # mu after step t is 1 / max(1, t - 2): 1 for steps 1-3, so ax copies the parameter through step 3 ...
    assert float(opt.state_dict()["state"][0]["mu"]) == 0.5
    # ... and step 4 averages with mu = 1 / max(1, 3 - 2) = 1: still a copy; step 5 would use 0.5.
    np.testing.assert_array_equal(ax, params[-1])
    opt.step([np.ones(5)])
    expected = params[-1] + (w - params[-1]) * 0.5
    np.testing.assert_array_equal(opt.state_dict()["state"][0]["ax"], expected)


def test_a_state_without_eta_and_mu_resumes_from_their_closed_form():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(9), None
    b = a.copy()
    config = dict(lr=0.05, lambd=0.02, alpha=0.5, t0=1.0)
    first, second = lrcore.ASGD([a], **config), lrcore.ASGD([b], **config)
    grads = [rng.standard_normal(9) for _ in range(4)]
    for grad in grads[:3]:
        first.step([grad])
        second.step([grad])
    saved = second.state_dict()
    del saved["state"][0]["eta"], saved["state"][0]["mu"]
    second.load_state_dict(saved)
    assert math.isnan(float(second._states[0]["eta"][0]))  # unset: the next step works it out
    first.step([grads[3]])
    second.step([grads[3]])
    assert a.tobytes() == b.tobytes()  # a constant lr: the closed form is what the dropped values were
    for name in ("ax", "eta", "mu"):
        assert np.array_equal(first.state_dict()["state"][0][name], second.state_dict()["state"][0][name]), name


def test_functional_none_scalars_start_unset_and_explicit_ones_are_used():
    params = [np.ones(4), np.ones(4)]
    axs = [np.zeros(4), np.zeros(4)]
    mus = [None, np.array(1.0)]
    etas = [None, np.array(0.5)]  # an explicit eta is used as it is, even on a first step
    steps = np.zeros(2, np.int64)
    functional.asgd(params, [np.ones(4), np.ones(4)], axs, mus, etas, steps, lr=0.1, lambd=0.0)
    np.testing.assert_array_equal(params[0], np.full(4, 0.9))
    np.testing.assert_array_equal(params[1], np.full(4, 0.5))
    for k in range(2):
        assert float(etas[k]) == 0.1 / (1 + 0.0) ** 0.75 and float(mus[k]) == 1.0
    expected = [np.ones(4), np.ones(4)]
    ref_axs, ref_mus, ref_etas = [np.zeros(4), np.zeros(4)], [None, np.array(1.0)], [None, np.array(0.5)]
    reference.asgd(expected, [np.ones(4), np.ones(4)], ref_axs, ref_mus, ref_etas, np.zeros(2, np.int64), lr=0.1,
                   lambd=0.0)
    for ours, theirs in zip(params + axs, expected + ref_axs):
        assert ours.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("make, error, message", [
    (lambda p: lrcore.ASGD(p, lambd=-1e-4), ValueError, r"lambd must be a finite number >= 0, got -0.0001"),
    (lambda p: lrcore.ASGD(p, lr=-0.01), ValueError, r"lr must be a finite number >= 0"),
    (lambda p: lrcore.ASGD(p, weight_decay=-0.1), ValueError, r"weight_decay must be a finite number >= 0"),
    (lambda p: lrcore.ASGD(p, alpha=math.nan), ValueError, r"alpha must be a finite number"),
    (lambda p: lrcore.ASGD(p, t0=math.inf), ValueError, r"t0 must be a finite number, got inf"),
    (lambda p: lrcore.ASGD(p, t0="soon"), TypeError, r"t0 must be a number, got str"),
])
def test_arguments_are_checked_naming_them(make, error, message):
    with pytest.raises(error, match=message):
        make([np.zeros(3)])


def test_torchs_own_checks_are_refused_too():
    w = torch.zeros(3, requires_grad=True)
    for kwargs in (dict(lr=-0.01), dict(weight_decay=-0.1)):
        with pytest.raises(ValueError):
            torch.optim.ASGD([w], **kwargs)
        with pytest.raises(ValueError):
            lrcore.ASGD([np.zeros(3)], **kwargs)
    lrcore.ASGD([np.zeros(3)], alpha=-0.5, t0=-3.0)  # torch accepts any alpha and t0, and so does lrcore
