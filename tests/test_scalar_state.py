"""Per-tensor scalar state (NAdam's mu_product): held, stepped, saved and loaded like torch keeps it.

A scalar state is one float64 per tensor, a 0-d numpy array in the state
lists and in ``state_dict()``; the native step reads it for its constants and
writes its next value only after every kernel of the step has run, so a step
that fails, or is skipped, leaves it as it was.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import checkpoint, functional, reference


def mu(t, beta1=0.9, momentum_decay=4e-3):
    return beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))


def nadam_setup(steps=2):
    params = [np.linspace(-1, 1, 7, dtype=np.float32), np.linspace(-2, 2, 6).reshape(2, 3)]
    opt = lrcore.NAdam(params, lr=0.01)
    for k in range(steps):
        opt.step([np.full_like(p, 0.5 + k) for p in params])
    return opt, params


def test_functional_creates_missing_scalars_in_the_list_and_updates_given_ones_in_place():
    params = [np.ones(5, np.float32), np.ones(3)]
    given = np.array(0.25)
    mu_products = [None, given]
    steps = np.array([0, 4], np.int64)
    exp_avgs = [np.zeros_like(p) for p in params]
    exp_avg_sqs = [np.zeros_like(p) for p in params]
    functional.nadam(params, [np.ones(5, np.float32), np.ones(3)], exp_avgs, exp_avg_sqs, mu_products, steps)
    created = mu_products[0]
    assert isinstance(created, np.ndarray) and created.shape == () and created.dtype == np.float64
    assert float(created) == 1.0 * mu(1)
    assert mu_products[1] is given and float(given) == 0.25 * mu(5)
    assert steps.tolist() == [1, 5]


def test_a_skipped_tensor_keeps_its_scalar():
    params = [np.ones(5), np.ones(5)]
    mu_products = [np.array(1.0), np.array(0.5)]
    state = ([np.zeros(5), np.zeros(5)], [np.zeros(5), np.zeros(5)])
    functional.nadam(params, [np.ones(5), None], *state, mu_products, np.zeros(2, np.int64))
    assert float(mu_products[0]) == mu(1) and float(mu_products[1]) == 0.5


def test_a_failed_or_skipped_step_leaves_every_scalar_unchanged():
    opt, params = nadam_setup()
    before = [float(a) for a in opt._states[0]["mu_product"]]
    with pytest.raises(ValueError, match=r"grads\[1\] has shape"):
        opt.step([np.ones(7, np.float32), np.ones(6)])
    opt.skip_nonfinite = True
    assert opt.step([np.ones(7, np.float32), np.full((2, 3), np.nan)]) is False
    assert [float(a) for a in opt._states[0]["mu_product"]] == before == [mu(1) * mu(2)] * 2


def test_the_reference_and_the_kernel_agree_on_the_scalar_bitwise():
    rng = np.random.default_rng(5)
    ours = [rng.standard_normal(33), rng.standard_normal(9).astype(np.float32)]
    theirs = [p.copy() for p in ours]
    state = [([np.zeros_like(p) for p in ours], [np.zeros_like(p) for p in ours], [None, None],
              np.zeros(2, np.int64)) for _ in range(2)]
    for _ in range(20):
        grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in ours]
        functional.nadam(ours, grads, *state[0], momentum_decay=0.3)
        reference.nadam(theirs, grads, *state[1], momentum_decay=0.3)
    assert [float(x) for x in state[0][2]] == [float(x) for x in state[1][2]]
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


@pytest.mark.parametrize("value", [0.375, np.float64(0.375), np.float32(0.375), np.array(0.375), np.array(0.375, np.float32)])
def test_load_state_dict_takes_the_scalar_as_a_number_or_a_0d_array(value):
    opt, _ = nadam_setup()
    saved = opt.state_dict()
    saved["state"][0]["mu_product"] = value
    opt.load_state_dict(saved)
    loaded = opt.state_dict()["state"][0]["mu_product"]
    assert loaded.shape == () and loaded.dtype == np.float64 and float(loaded) == 0.375
    # Not shared with what was loaded: the optimizer owns its scalar.
    if isinstance(value, np.ndarray):
        value[()] = 0.5
        assert float(opt.state_dict()["state"][0]["mu_product"]) == 0.375


@pytest.mark.parametrize("value", [math.nan, math.inf, "0.5", True, np.ones(1), np.ones(7, np.float32), None])
def test_load_state_dict_refuses_a_bad_scalar_and_changes_nothing(value):
    opt, params = nadam_setup()
    before = opt.state_dict()
    before_params = [p.copy() for p in params]
    bad = opt.state_dict()
    bad["state"][1]["mu_product"] = value
    if value is None:  # None means "not saved": the scalar starts again at its initial value
        opt.load_state_dict(bad)
        assert float(opt.state_dict()["state"][1]["mu_product"]) == 1.0
        return
    with pytest.raises(ValueError, match=r"state\[1\]\['mu_product'\] must be a finite number"):
        opt.load_state_dict(bad)
    after = opt.state_dict()
    for k in before["state"]:
        for name, array in before["state"][k].items():
            assert np.array_equal(after["state"][k][name], array), name
    assert all(np.array_equal(p, q) for p, q in zip(params, before_params))


def test_an_entry_without_the_scalar_starts_it_at_its_initial_value():
    opt, _ = nadam_setup()
    saved = opt.state_dict()
    del saved["state"][0]["mu_product"]
    opt.load_state_dict(saved)
    assert float(opt.state_dict()["state"][0]["mu_product"]) == 1.0
    assert float(opt.state_dict()["state"][1]["mu_product"]) == mu(1) * mu(2)


def test_a_checkpoint_keeps_the_scalar_bitwise(tmp_path):
    opt, params = nadam_setup(steps=5)
    path = tmp_path / "nadam.npz"
    checkpoint.save(path, opt)
    fresh_params = [np.zeros_like(p) for p in params]
    fresh = lrcore.NAdam(fresh_params, lr=0.01)
    checkpoint.load(path, fresh)
    for k in (0, 1):
        ours, theirs = fresh.state_dict()["state"][k]["mu_product"], opt.state_dict()["state"][k]["mu_product"]
        assert ours.dtype == np.float64 and ours.tobytes() == theirs.tobytes()


def test_a_checkpoint_with_a_damaged_scalar_is_refused(tmp_path):
    opt, params = nadam_setup()
    path = tmp_path / "nadam.npz"
    checkpoint.save(path, opt)
    with np.load(path) as archive:
        contents = {name: archive[name] for name in archive.files}
    contents["state/0/mu_product"] = np.array([1.0, 2.0])
    np.savez(path, **contents)
    fresh = lrcore.NAdam([np.zeros_like(p) for p in params], lr=0.01)
    before = fresh.state_dict()
    with pytest.raises(lrcore.CheckpointError, match="mu_product"):
        checkpoint.load(path, fresh)
    assert fresh.state_dict()["state"] == before["state"] == {}


def test_torch_state_dict_values_load_and_continue_like_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    initial = rng.standard_normal(41)
    theirs = torch.tensor(initial.copy())
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # torch's scalar state in float64, as lrcore keeps it
    try:
        torch_opt = torch.optim.NAdam([theirs], lr=0.01, foreach=False)
        grads = [rng.standard_normal(41) for _ in range(6)]
        for g in grads[:3]:
            theirs.grad = torch.from_numpy(g.copy())
            torch_opt.step()
        ours = theirs.detach().numpy().copy()
        opt = lrcore.NAdam([ours], lr=0.01)
        torch_state = torch_opt.state_dict()["state"][0]
        opt.load_state_dict({"state": {0: {"step": int(torch_state["step"]),
                                            **{k: v.numpy().copy() for k, v in torch_state.items() if k != "step"}}},
                             "param_groups": opt.state_dict()["param_groups"]})
        for g in grads[3:]:
            theirs.grad = torch.from_numpy(g.copy())
            torch_opt.step()
            opt.step([g])
    finally:
        torch.set_default_dtype(previous)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-13, atol=1e-15)
    assert float(opt.state_dict()["state"][0]["mu_product"]) == pytest.approx(
        float(torch_opt.state_dict()["state"][0]["mu_product"]), rel=1e-15)


def test_tensors_at_the_same_step_with_different_scalars_get_their_own_constants():
    # The step driver reuses the constants of consecutive tensors only when the step and the
    # scalars agree: here the step agrees and mu_product does not.
    params = [np.ones(40), np.ones(40), np.ones(40)]
    expected = [p.copy() for p in params]
    grads = [np.full(40, 0.5)] * 3

    def state():
        return ([np.zeros(40) for _ in range(3)], [np.zeros(40) for _ in range(3)],
                [np.array(0.9), np.array(0.2), np.array(0.2)], np.full(3, 6, np.int64))

    functional.nadam(params, grads, *state())
    reference.nadam(expected, grads, *state())
    assert all(a.tobytes() == b.tobytes() for a, b in zip(params, expected))
    assert params[0].tobytes() != params[1].tobytes() and params[1].tobytes() == params[2].tobytes()
