"""The learning-rate range test: suggestion on a problem with a known stable range, early stop, exact restore."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore.lr_finder import LRFinderResult, find_lr, smooth_losses, steepest_descent_index
from lrcore.schedules import CosineAnnealing, OneCycle, OneCycleMomentum, Warmup

# ------------------------------------------------------------------------------------------------
# A quadratic 0.5 x'Ax with eigenvalues in [0.1, 10]: gradient descent converges iff lr < 2/L.
# ------------------------------------------------------------------------------------------------
LARGEST_EIGENVALUE = 10.0
STABLE_LIMIT = 2.0 / LARGEST_EIGENVALUE


def quadratic(seed, n=20, dtype=np.float64):
    rng = np.random.default_rng(seed)
    eigenvalues = np.logspace(-1, np.log10(LARGEST_EIGENVALUE), n)
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    a = ((q * eigenvalues) @ q.T).astype(dtype)
    x = rng.standard_normal(n).astype(dtype)

    def loss_and_grads():
        g = a @ x
        return 0.5 * float(x @ g), [g]

    return x, loss_and_grads


@pytest.mark.parametrize("seed", range(5))
def test_suggestion_is_inside_the_stable_range(seed):
    x, loss_and_grads = quadratic(seed)
    result = find_lr(lrcore.SGD([x], lr=0.01), loss_and_grads)
    assert result.suggested_lr is not None
    # Above 1e-3 the steps make real progress on every eigendirection but the smallest few.
    assert 1e-3 < result.suggested_lr < STABLE_LIMIT
    assert result.suggested_lr == result.lrs[result.suggested_index]


def test_stops_at_divergence():
    x, loss_and_grads = quadratic(0)
    result = find_lr(lrcore.SGD([x], lr=0.01), loss_and_grads, num_steps=100, end_lr=100.0)
    assert result.diverged
    assert len(result) < 100
    assert result.lrs[-1] > STABLE_LIMIT
    # Stopped by the documented rule at the last point, not before.
    smoothed = result.smoothed_losses
    best_before_last = smoothed[:-1].min()
    assert smoothed[-1] > 4.0 * best_before_last
    assert np.all(smoothed[1:-1] <= 4.0 * np.minimum.accumulate(smoothed[:-2]))


def test_runs_to_end_lr_without_threshold():
    x, loss_and_grads = quadratic(0)
    result = find_lr(lrcore.SGD([x], lr=0.01), loss_and_grads, start_lr=1e-4, end_lr=0.1, num_steps=31,
                     diverge_threshold=None)
    assert not result.diverged and len(result) == 31 == result.num_steps
    np.testing.assert_allclose(result.lrs, np.logspace(-4, -1, 31), rtol=1e-12)
    linear = find_lr(lrcore.SGD([x], lr=0.01), loss_and_grads, start_lr=0.01, end_lr=0.1, num_steps=10,
                     mode="linear")
    np.testing.assert_allclose(linear.lrs, np.linspace(0.01, 0.1, 10), rtol=1e-12)


def test_losses_are_recorded_after_each_step():
    # With smoothing 0 on a 1-d quadratic the record is exact: loss_i = 0.5 * x_i^2, x_i = (1 - lr_i) x_{i-1}.
    x = np.array([1.0])
    result = find_lr(lrcore.SGD([x], lr=0.0), lambda: (0.5 * float(x[0]) ** 2, [x.copy()]), start_lr=0.1,
                     end_lr=0.5, num_steps=5, mode="linear", smoothing=0.0)
    value, expected = 1.0, []
    for lr in (0.1, 0.2, 0.3, 0.4, 0.5):
        value *= 1.0 - lr
        expected.append(0.5 * value**2)
    assert result.initial_loss == 0.5
    np.testing.assert_allclose(result.losses, expected, rtol=1e-12)
    np.testing.assert_array_equal(result.smoothed_losses, result.losses)


def test_non_finite_loss_stops_the_test():
    x = np.array([1.0])
    calls = []

    def loss_and_grads():
        calls.append(1)
        return (float("nan") if len(calls) > 4 else 1.0), [np.zeros(1)]

    result = find_lr(lrcore.SGD([x], lr=0.1), loss_and_grads, num_steps=50)
    assert result.diverged and len(result) == 4 and math.isnan(result.losses[-1])
    with pytest.raises(ValueError, match="non-finite"):
        find_lr(lrcore.SGD([x], lr=0.1), lambda: (float("inf"), [np.zeros(1)]))


# ------------------------------------------------------------------------------------------------
# Smoothing and suggestion rules
# ------------------------------------------------------------------------------------------------
def test_smoothing_has_bias_correction():
    losses = [4.0, 2.0, 3.0, 1.0]
    beta = 0.9
    average, expected = 0.0, []
    for i, loss in enumerate(losses):
        average = beta * average + (1 - beta) * loss
        expected.append(average / (1 - beta ** (i + 1)))
    np.testing.assert_allclose(smooth_losses(losses, beta), expected, rtol=1e-14)
    assert smooth_losses(losses, beta)[0] == 4.0  # the first value is the first loss, not 0.1 of it
    np.testing.assert_array_equal(smooth_losses(losses, 0.0), losses)


def test_steepest_descent_of_a_known_curve():
    lrs = np.logspace(-6, 0, 121)
    centre = 1e-3
    losses = 2.0 - np.tanh(np.log(lrs / centre))
    index = steepest_descent_index(lrs, losses, skip_start=0, skip_end=0)
    assert lrs[index] == pytest.approx(centre, rel=0.07)


def test_suggestion_ignores_descent_after_a_blow_up():
    lrs = np.logspace(-6, 0, 100)
    losses = np.concatenate([np.linspace(2.0, 1.0, 50), np.full(10, 50.0), np.linspace(50.0, 3.0, 40)])
    index = steepest_descent_index(lrs, losses, skip_start=0, skip_end=0)
    assert index < 50
    assert steepest_descent_index(lrs[:5], np.arange(5.0), skip_start=0, skip_end=0) is None  # never decreases
    assert steepest_descent_index(lrs[:1], [1.0]) is None


# ------------------------------------------------------------------------------------------------
# Every optimizer, restored bitwise
# ------------------------------------------------------------------------------------------------
def _make(name, params):
    groups = [{"params": params[:2]}, {"params": params[2:], "weight_decay": 0.01}]
    if name == "SGD":
        return lrcore.SGD(groups, lr=CosineAnnealing(0.05, T_max=50), momentum=0.9, nesterov=True)
    if name == "SGD-onecycle":
        return lrcore.SGD(groups, lr=OneCycle(0.05, total_steps=50), momentum=OneCycleMomentum(total_steps=50))
    if name == "Adagrad":
        return lrcore.Adagrad(groups, lr=0.05)
    if name == "RMSprop":
        return lrcore.RMSprop(groups, lr=0.01, momentum=0.5, centered=True)
    if name == "Adam":
        return lrcore.Adam(groups, lr=Warmup(CosineAnnealing(0.01, T_max=40), warmup_steps=5),
                           betas=(0.9, 0.999), amsgrad=True)
    if name == "AdamW":
        return lrcore.AdamW(groups, lr=0.01, betas=[0.8, 0.99])
    if name == "NAdam":  # mu_product, a per-tensor scalar, must come back too
        return lrcore.NAdam(groups, lr=Warmup(CosineAnnealing(0.01, T_max=40), warmup_steps=5),
                            decoupled_weight_decay=True)
    if name == "RAdam":
        return lrcore.RAdam(groups, lr=0.01)
    if name == "Adamax":
        return lrcore.Adamax(groups, lr=0.01)
    if name == "Lion":
        return lrcore.Lion(groups, lr=1e-3, betas=(0.8, 0.99))
    raise AssertionError(name)


def _problem(seed):
    rng = np.random.default_rng(seed)
    shapes = [((7, 5), np.float32), ((5,), np.float32), ((33,), np.float64), ((3, 4), np.float64)]
    params = [rng.standard_normal(shape).astype(dtype) for shape, dtype in shapes]
    targets = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    state = {"calls": 0}

    def loss_and_grads():
        # A mildly stochastic loss, so the search's mini-batch stream matters (and is not restored).
        state["calls"] += 1
        scale = 1.0 + 0.1 * np.sin(state["calls"])
        grads = [(scale * (p - t) * (1.0 + np.abs(p))).astype(p.dtype) for p, t in zip(params, targets)]
        loss = sum(float(np.sum((p - t) ** 2)) for p, t in zip(params, targets))
        return loss, grads

    return params, loss_and_grads


def _snapshot(optimizer):
    state = optimizer.state_dict()
    groups = [dict(group) for group in optimizer.param_groups]
    return state, groups


def _assert_same_state(a, b):
    assert a.keys() == b.keys()
    assert a["step_count"] == b["step_count"]
    assert a["state"].keys() == b["state"].keys()
    for key in a["state"]:
        assert a["state"][key].keys() == b["state"][key].keys()
        for name, value in a["state"][key].items():
            if isinstance(value, np.ndarray):
                assert value.dtype == b["state"][key][name].dtype
                assert value.tobytes() == b["state"][key][name].tobytes(), (key, name)
            else:
                assert value == b["state"][key][name]
    assert a["param_groups"] == b["param_groups"]


OPTIMIZERS = ["SGD", "SGD-onecycle", "Adagrad", "RMSprop", "Adam", "AdamW", "NAdam", "RAdam", "Adamax", "Lion"]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_everything_is_restored_bitwise(name):
    params, loss_and_grads = _problem(1)
    twin_params, twin_loss_and_grads = _problem(1)
    optimizer = _make(name, params)
    twin = _make(name, twin_params)
    for _ in range(3):  # some state to restore
        optimizer.step(loss_and_grads()[1])
        twin.step(twin_loss_and_grads()[1])
    before_params = [p.copy() for p in params]
    before_state, before_groups = _snapshot(optimizer)
    last = optimizer.get_last_lr()

    result = find_lr(optimizer, loss_and_grads, num_steps=40)
    assert len(result) >= 2

    for param, saved in zip(params, before_params):
        assert param.tobytes() == saved.tobytes()
    _assert_same_state(optimizer.state_dict(), before_state)
    for group, saved in zip(optimizer.param_groups, before_groups):
        assert group.keys() == saved.keys()
        for key, value in saved.items():
            assert group[key] is value, key  # the same numbers, schedules, tuples and lists
    assert optimizer.get_last_lr() == last

    # Continuing gives bitwise what an optimizer that never searched gives (same gradients fed to both).
    for _ in range(5):
        grads = twin_loss_and_grads()[1]
        optimizer.step([g.copy() for g in grads])
        twin.step(grads)
    for a, b in zip(params, twin_params):
        assert a.tobytes() == b.tobytes()
    _assert_same_state(optimizer.state_dict(), twin.state_dict())


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_restored_when_the_callable_raises(name):
    params, loss_and_grads = _problem(2)
    optimizer = _make(name, params)
    optimizer.step(loss_and_grads()[1])
    before_params = [p.copy() for p in params]
    before_state, _ = _snapshot(optimizer)
    calls = []

    def failing():
        calls.append(1)
        if len(calls) == 6:
            raise RuntimeError("data loader broke")
        return loss_and_grads()

    with pytest.raises(RuntimeError, match="data loader broke"):
        find_lr(optimizer, failing)
    assert all(p.tobytes() == s.tobytes() for p, s in zip(params, before_params))
    _assert_same_state(optimizer.state_dict(), before_state)


def test_fresh_optimizer_and_extra_arrays_are_restored():
    x, loss_and_grads = quadratic(3, dtype=np.float32)
    running_mean = np.zeros(3)

    def with_side_effect():
        running_mean[:] += 1.0
        return loss_and_grads()

    optimizer = lrcore.SGD([x], lr=0.01, momentum=0.9)
    before = x.copy()
    find_lr(optimizer, with_side_effect, num_steps=20, also_restore=[running_mean])
    assert x.tobytes() == before.tobytes()
    assert np.all(running_mean == 0.0)
    assert optimizer.step_count == 0 and optimizer.state_dict()["state"] == {}


def test_other_scheduled_hyperparameters_are_held():
    x, loss_and_grads = quadratic(0)
    seen = []

    def momentum(t):
        seen.append(t)
        return 0.9 - 0.001 * t

    optimizer = lrcore.SGD([x], lr=0.01, momentum=momentum)
    for _ in range(7):
        optimizer.step(loss_and_grads()[1])
    seen.clear()
    find_lr(optimizer, loss_and_grads, num_steps=30)
    assert set(seen) == {7}
    assert optimizer.param_groups[0]["momentum"] is momentum


# ------------------------------------------------------------------------------------------------
# Arguments
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    (dict(start_lr=0.0), "start_lr"),
    (dict(start_lr=-1e-3), "start_lr"),
    (dict(start_lr=float("nan")), "start_lr"),
    (dict(end_lr=float("inf")), "end_lr"),
    (dict(start_lr=1.0, end_lr=0.5), "end_lr"),
    (dict(num_steps=1), "num_steps"),
    (dict(mode="log"), "mode"),
    (dict(smoothing=1.0), "smoothing"),
    (dict(smoothing=-0.1), "smoothing"),
    (dict(diverge_threshold=1.0), "diverge_threshold"),
    (dict(diverge_threshold=0.0), "diverge_threshold"),
    (dict(skip_start=-1), "skip_start"),
    (dict(skip_end=-2), "skip_end"),
])
def test_bad_arguments_raise_value_error_naming_them(kwargs, name):
    x, loss_and_grads = quadratic(0)
    calls = []

    def counting():
        calls.append(1)
        return loss_and_grads()

    before = x.copy()
    with pytest.raises(ValueError, match=name):
        find_lr(lrcore.SGD([x], lr=0.01), counting, **kwargs)
    assert not calls and x.tobytes() == before.tobytes()


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_steps=10.5), "num_steps"),
    (dict(start_lr="1e-3"), "start_lr"),
    (dict(smoothing=None), "smoothing"),
    (dict(also_restore=np.zeros(3)), "also_restore"),
])
def test_wrong_argument_types_raise_type_error(kwargs, name):
    x, loss_and_grads = quadratic(0)
    with pytest.raises(TypeError, match=name):
        find_lr(lrcore.SGD([x], lr=0.01), loss_and_grads, **kwargs)


def test_optimizer_and_callable_are_checked():
    x, loss_and_grads = quadratic(0)
    with pytest.raises(TypeError, match="optimizer"):
        find_lr([x], loss_and_grads)
    with pytest.raises(TypeError, match="loss_and_grads"):
        find_lr(lrcore.SGD([x]), 3.0)
    with pytest.raises(TypeError, match="pair"):
        find_lr(lrcore.SGD([x]), lambda: 1.0)
    with pytest.raises(TypeError, match="real number"):
        find_lr(lrcore.SGD([x]), lambda: ("1.0", [x.copy()]))


def test_result_accessors():
    x, loss_and_grads = quadratic(0)
    result = find_lr(lrcore.SGD([x], lr=0.01), loss_and_grads)
    assert isinstance(result, LRFinderResult)
    assert "suggested_lr=" in repr(result)
    assert result.suggestion() == result.suggested_lr
    assert result.suggestion(skip_start=0, skip_end=0) is not None
    lowest = result.min_loss_lr
    assert result.lrs[0] <= lowest <= result.lrs[-1]
    assert result.suggested_lr <= lowest


def test_skipped_non_finite_step_ends_the_test_and_is_not_counted():
    x, loss_and_grads = quadratic(4)
    optimizer = lrcore.SGD([x], lr=0.01, momentum=0.9, skip_nonfinite=True)
    before = x.copy()
    calls = []

    def nan_gradient_later():
        calls.append(1)
        loss, grads = loss_and_grads()
        if len(calls) > 20:
            grads = [np.full_like(grads[0], np.nan)]
        return loss, grads

    result = find_lr(optimizer, nan_gradient_later)
    assert result.diverged and len(result) == 21 and math.isnan(result.losses[-1])
    assert np.all(np.isfinite(result.losses[:-1]))
    assert optimizer.skipped_steps == 0 and optimizer.step_count == 0
    assert x.tobytes() == before.tobytes()
