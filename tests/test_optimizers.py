"""The optimizer classes: parameter groups, None gradients, editable and scheduled hyperparameters, state_dict."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import lrcore
from rules import RULE_CASES, RULE_IDS, make_gradients


def build(rule, config, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(5,), (3, 4)]] + [rng.standard_normal(6)]
    return params, rule.optimizer([{"params": params[:2]}, {"params": params[2:]}], **config)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_state_dict_round_trip_continues_exactly(rule, config):
    params, opt = build(rule, config)
    rng = np.random.default_rng(1)
    grads = make_gradients(rng, [p.shape for p in params], np.float32, 10)
    grads = [[g.astype(p.dtype) for g, p in zip(step, params)] for step in grads]
    for step in grads[:5]:
        opt.step(step)
    saved = opt.state_dict()
    saved_params = [p.copy() for p in params]
    for step in grads[5:]:
        opt.step(step)
    # A fresh optimizer over copies of the saved parameters continues identically.
    resumed_params = [p.copy() for p in saved_params]
    _, resumed = build(rule, config)
    resumed = rule.optimizer([{"params": resumed_params[:2]}, {"params": resumed_params[2:]}], **config)
    resumed.load_state_dict(copy.deepcopy(saved))
    assert resumed.step_count == 5
    for step in grads[5:]:
        resumed.step(step)
    for a, b in zip(params, resumed_params):
        assert np.array_equal(a, b)
    # state_dict returns copies: stepping did not change what was saved.
    assert saved["step_count"] == 5


def test_none_gradient_skips_parameter_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(10), rng.standard_normal(10)
    ta, tb = torch.tensor(a.copy()), torch.tensor(b.copy())
    opt = lrcore.Adam([a, b], lr=0.1)
    topt = torch.optim.Adam([ta, tb], lr=0.1, foreach=False)
    for t in range(8):
        ga = rng.standard_normal(10)
        gb = rng.standard_normal(10) if t % 3 else None
        opt.step([ga, gb])
        ta.grad = torch.tensor(ga)
        tb.grad = None if gb is None else torch.tensor(gb)
        topt.step()
    np.testing.assert_allclose(a, ta.numpy(), rtol=1e-13)
    np.testing.assert_allclose(b, tb.numpy(), rtol=1e-13)
    assert opt.state_dict()["state"][1]["step"] == int(topt.state_dict()["state"][1]["step"]) == 5


def test_param_groups_override_and_editing_match_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(7).astype(np.float32), rng.standard_normal(9).astype(np.float32)
    ta, tb = torch.tensor(a.copy()), torch.tensor(b.copy())
    opt = lrcore.SGD([{"params": [a]}, {"params": [b], "lr": 0.01, "nesterov": True}], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([{"params": [ta]}, {"params": [tb], "lr": 0.01, "nesterov": True}], lr=0.1,
                           momentum=0.9, foreach=False)
    for t in range(20):
        if t == 10:  # hyperparameters are editable between steps
            opt.param_groups[0]["lr"] = topt.param_groups[0]["lr"] = 0.05
            opt.param_groups[1]["momentum"] = topt.param_groups[1]["momentum"] = 0.5
        ga, gb = rng.standard_normal(7).astype(np.float32), rng.standard_normal(9).astype(np.float32)
        opt.step([ga, gb])
        ta.grad, tb.grad = torch.tensor(ga), torch.tensor(gb)
        topt.step()
    np.testing.assert_allclose(a, ta.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(b, tb.numpy(), rtol=1e-5, atol=1e-6)
    assert opt.get_last_lr() == [0.05, 0.01]


def test_schedules_are_evaluated_at_the_step_count():
    p = np.zeros(3)
    seen = []

    def lr(t):
        seen.append(t)
        return 0.1 * (t + 1)

    opt = lrcore.SGD([p], lr=lr, momentum=lambda t: 0.0)
    for _ in range(3):
        opt.step([np.ones(3)])
    # Constructed at t=0 (validation), then steps at t = 0, 1, 2.
    assert seen[-3:] == [0, 1, 2]
    assert opt.step_count == 3
    assert opt.last_hyperparameters[0]["lr"] == pytest.approx(0.3)
    np.testing.assert_allclose(p, -(0.1 + 0.2 + 0.3) * np.ones(3))


def test_betas_accept_schedules_and_schedule_state_is_saved():
    plateau = lrcore.schedules.ReduceOnPlateau(0.1, patience=0, factor=0.5)
    p = np.zeros(4, np.float32)
    opt = lrcore.Adam([p], lr=plateau, betas=(lambda t: 0.9 - 0.01 * t, 0.999))
    opt.step([np.ones(4, np.float32)])
    plateau.observe(1.0)
    plateau.observe(2.0)  # worse: reduce
    opt.step([np.ones(4, np.float32)])
    assert opt.last_hyperparameters[0]["beta1"] == pytest.approx(0.89)
    assert opt.get_last_lr() == [pytest.approx(0.05)]
    saved = opt.state_dict()
    fresh_plateau = lrcore.schedules.ReduceOnPlateau(0.1, patience=0, factor=0.5)
    fresh = lrcore.Adam([p.copy()], lr=fresh_plateau, betas=(lambda t: 0.9 - 0.01 * t, 0.999))
    fresh.load_state_dict(saved)
    assert fresh_plateau(2) == pytest.approx(0.05)


def test_adam_amsgrad_state_created_when_switched_on():
    p = np.zeros(3, np.float32)
    opt = lrcore.Adam([p], lr=0.1)
    opt.step([np.ones(3, np.float32)])
    assert "max_exp_avg_sq" not in opt.state_dict()["state"][0]
    opt.param_groups[0]["amsgrad"] = True
    opt.step([np.ones(3, np.float32)])
    assert opt.state_dict()["state"][0]["max_exp_avg_sq"].shape == (3,)


def test_load_state_dict_rejects_mismatches_without_changing_anything():
    p = np.zeros(3, np.float32)
    opt = lrcore.Adam([p], lr=0.1)
    opt.step([np.ones(3, np.float32)])
    good = opt.state_dict()
    other = lrcore.Adam([np.zeros(4, np.float32)], lr=0.2)
    with pytest.raises(ValueError, match=r"state\[0\]\['exp_avg'\] must be a float32 array of shape \(4,\)"):
        other.load_state_dict(good)
    assert other.param_groups[0]["lr"] == 0.2 and other.step_count == 0
    two = lrcore.Adam([np.zeros(3, np.float32), np.zeros(3, np.float32)])
    with pytest.raises(ValueError, match="has 1 parameters"):
        two.load_state_dict(good)
    with pytest.raises(ValueError, match="must be a dict"):
        opt.load_state_dict([1, 2])


def test_repr_names_groups_and_hyperparameters():
    opt = lrcore.AdamW([np.zeros(2)], lr=0.5)
    text = repr(opt)
    assert text.startswith("AdamW (") and "lr: 0.5" in text and "weight_decay: 0.01" in text


def test_defaults_match_torch():
    torch = pytest.importorskip("torch")
    import inspect

    for name in ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]:
        ours = inspect.signature(getattr(lrcore, name)).parameters
        theirs = inspect.signature(getattr(torch.optim, name)).parameters
        for key, parameter in ours.items():
            if key in ("params", "skip_nonfinite", "max_grad_norm", "norm_type", "state_dtype", "master_weights",
                       "stochastic_rounding", "seed"):  # lrcore's own
                continue
            assert key in theirs, (name, key)
            assert parameter.default == theirs[key].default, (name, key)
