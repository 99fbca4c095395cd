"""What Adadelta and Rprop do beyond the shared tables: torch's ranges and Rprop's own semantics.

The shared tests (tests/rules.py rows) already hold both rules to the numpy
reference bitwise, to torch over 100 steps, and through the bad-input,
transaction and checkpoint tables. Here: the argument ranges torch enforces
(and the names the errors use), Rprop's sign-flip rule element by element,
its step sizes starting at the lr of a tensor's first step, and NaN and
infinities through Rprop compared with torch bitwise (Rprop has no rounding
that could differ: its only arithmetic is exact or the same single product).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import functional, reference

torch = pytest.importorskip("torch")

DTYPES = [np.float32, np.float64]


def bits(a):
    return np.ascontiguousarray(a).view(np.uint32 if a.dtype == np.float32 else np.uint64)


# ------------------------------------------------------------------ ranges --
@pytest.mark.parametrize("make, message", [
    (lambda p: lrcore.Adadelta(p, rho=1.5), r"rho must be in \[0, 1\], got 1.5"),
    (lambda p: lrcore.Adadelta(p, rho=-0.1), r"rho must be in \[0, 1\]"),
    (lambda p: lrcore.Adadelta(p, eps=-1e-6), r"eps must be a finite number >= 0"),
    (lambda p: lrcore.Adadelta(p, lr=-1.0), r"lr must be a finite number >= 0"),
    (lambda p: lrcore.Adadelta(p, weight_decay=-0.1), r"weight_decay must be a finite number >= 0"),
    (lambda p: lrcore.Rprop(p, etas=(1.0, 1.2)), r"etaminus must be in \(0, 1\), got 1 \(etas\[0\]\)"),
    (lambda p: lrcore.Rprop(p, etas=(0.0, 1.2)), r"etaminus must be in \(0, 1\), got 0 \(etas\[0\]\)"),
    (lambda p: lrcore.Rprop(p, etas=(0.5, 1.0)), r"etaplus must be a finite number > 1, got 1 \(etas\[1\]\)"),
    (lambda p: lrcore.Rprop(p, etas=(0.5, math.inf)), r"etaplus must be a finite number > 1, got inf \(etas\[1\]\)"),
    (lambda p: lrcore.Rprop(p, step_sizes=(-1e-6, 50)), r"step_size_min must be a finite number >= 0, got -1e-06 "
                                                         r"\(step_sizes\[0\]\)"),
    (lambda p: lrcore.Rprop(p, step_sizes=(60, 50)), r"step_size_min must be <= step_size_max \(step_sizes\), "
                                                     r"got 60 > 50"),
    (lambda p: lrcore.Rprop(p, lr=-0.01), r"lr must be a finite number >= 0"),
])
def test_torchs_ranges_are_refused_naming_the_argument(make, message):
    w = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=message):
        make([w])


def test_a_pair_that_is_not_a_pair_is_a_type_error():
    with pytest.raises(TypeError, match=r"etas must be a pair \(etaminus, etaplus\), got \(0.5,\)"):
        lrcore.Rprop([np.zeros(3)], etas=(0.5,))
    with pytest.raises(TypeError, match=r"step_sizes must be a pair \(step_size_min, step_size_max\)"):
        lrcore.Rprop([np.zeros(3)], step_sizes=1e-6)


def test_torch_refuses_what_lrcore_refuses():
    # The ranges are torch's (Rprop's step_sizes check is lrcore's own: torch has none).
    w = torch.zeros(3, requires_grad=True)
    for make in (lambda: torch.optim.Adadelta([w], rho=1.5), lambda: torch.optim.Rprop([w], etas=(1.0, 1.2)),
                 lambda: torch.optim.Rprop([w], etas=(0.5, 1.0)), lambda: torch.optim.Rprop([w], etas=(0.0, 1.2))):
        with pytest.raises(ValueError):
            make()
    torch.optim.Adadelta([w], rho=1.0)
    lrcore.Adadelta([np.zeros(3)], rho=1.0)
    lrcore.Adadelta([np.zeros(3)], rho=0.0)


@pytest.mark.parametrize("name, value, message", [
    ("etas", (0.5, 0.9), r"etaplus must be a finite number > 1, got 0.9 \(etas\[1\]\)"),
    ("step_sizes", (1.0, 0.5), r"step_size_min must be <= step_size_max"),
])
def test_a_bad_value_set_between_steps_changes_nothing(name, value, message):
    w = np.linspace(-1, 1, 11)
    opt = lrcore.Rprop([w], lr=0.05)
    rng = np.random.default_rng(0)
    for _ in range(3):
        opt.step([rng.standard_normal(11)])
    before = opt.state_dict()
    params = w.copy()
    opt.param_groups[0][name] = value
    with pytest.raises(ValueError, match=message):
        opt.step([rng.standard_normal(11)])
    after = opt.state_dict()
    assert after["step_count"] == before["step_count"] == 3
    assert bits(w).tobytes() == bits(params).tobytes()
    for key in ("prev", "step_size"):
        assert bits(after["state"][0][key]).tobytes() == bits(before["state"][0][key]).tobytes()


# --------------------------------------------------------- Rprop's rules --
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_rprop_sign_flip_shrinks_the_step_zeroes_the_gradient_and_stores_zero(each_isa, dtype):
    size = 41  # vector body, single vectors and a scalar tail on every ISA
    rng = np.random.default_rng(3)
    first = rng.standard_normal(size).astype(dtype)
    second = rng.standard_normal(size).astype(dtype)
    second[::5] = 0.0  # no sign: step size kept, parameter not moved
    param = rng.standard_normal(size).astype(dtype)
    start = param.copy()
    opt = lrcore.Rprop([param], lr=0.1, etas=(0.25, 1.5), step_sizes=(1e-3, 0.12))
    opt.step([first])
    after_first = param.copy()
    opt.step([second])
    state = opt.state_dict()["state"][0]
    dt = dtype
    flipped = first * second < 0
    kept = first * second > 0
    neither = ~flipped & ~kept
    # The first step: step sizes start at lr; prev is 0, so every element moves by lr against its sign.
    np.testing.assert_array_equal(after_first, start - np.sign(first) * dt(0.1))
    np.testing.assert_array_equal(state["step_size"][flipped], np.full(flipped.sum(), dt(0.1) * dt(0.25)))
    np.testing.assert_array_equal(state["step_size"][kept], np.full(kept.sum(), dt(0.12)))  # 0.15 clamped
    np.testing.assert_array_equal(state["step_size"][neither], np.full(neither.sum(), dt(0.1)))
    assert np.all(state["prev"][flipped] == 0) and not np.signbit(state["prev"][flipped]).any()
    np.testing.assert_array_equal(state["prev"][~flipped], second[~flipped])
    np.testing.assert_array_equal(param[flipped | neither], after_first[flipped | neither])
    np.testing.assert_array_equal(param[kept], after_first[kept] - np.sign(second[kept]) * dt(0.12))
    assert flipped.sum() > 5 and kept.sum() > 5 and neither.sum() > 5

    # The same two steps in torch: bitwise equal.
    theirs = torch.tensor(start.copy(), requires_grad=True)
    torch_opt = torch.optim.Rprop([theirs], lr=0.1, etas=(0.25, 1.5), step_sizes=(1e-3, 0.12), foreach=False)
    for grad in (first, second):
        theirs.grad = torch.from_numpy(grad.copy())
        torch_opt.step()
    their_state = torch_opt.state_dict()["state"][0]
    assert bits(param).tobytes() == bits(theirs.detach().numpy()).tobytes()
    assert bits(state["prev"]).tobytes() == bits(their_state["prev"].numpy()).tobytes()
    assert bits(state["step_size"]).tobytes() == bits(their_state["step_size"].numpy()).tobytes()


def test_rprop_step_sizes_start_at_the_lr_of_each_tensors_first_step():
    # torch creates step_size from group["lr"] when a parameter is first stepped; so does lrcore, so an lr set
    # after construction, or reached by a schedule before a parameter's first gradient, is the one used.
    rng = np.random.default_rng(4)
    start = [rng.standard_normal(9), rng.standard_normal((2, 5))]
    ours = [p.copy() for p in start]
    theirs = [torch.tensor(p.copy(), requires_grad=True) for p in start]
    opt = lrcore.Rprop(ours, lr=0.01)
    torch_opt = torch.optim.Rprop(theirs, lr=0.01, foreach=False)
    plan = [(0.3, True, False), (0.05, True, True), (0.7, True, True)]  # (lr, grads for [0], [1])
    for lr, *present in plan:
        opt.param_groups[0]["lr"] = lr
        torch_opt.param_groups[0]["lr"] = lr
        grads = [rng.standard_normal(p.shape) if here else None for p, here in zip(start, present)]
        opt.step(grads)
        for tensor, grad in zip(theirs, grads):
            tensor.grad = None if grad is None else torch.from_numpy(grad.copy())
        torch_opt.step()
    for k in range(2):
        assert bits(ours[k]).tobytes() == bits(theirs[k].detach().numpy()).tobytes()
        ours_state, their_state = opt.state_dict()["state"][k], torch_opt.state_dict()["state"][k]
        for name in ("prev", "step_size"):
            assert bits(ours_state[name]).tobytes() == bits(their_state[name].numpy()).tobytes(), (k, name)
    first_sizes = opt.state_dict()["state"]
    assert first_sizes[0]["step"] == 3 and first_sizes[1]["step"] == 2
    # Parameter 1 was first stepped at lr 0.05, so its step sizes are 0.05 times powers of the etas.
    ratios = np.log(first_sizes[1]["step_size"] / 0.05) / np.log(1.2)
    assert np.all(np.isclose(ratios, np.round(ratios)) | np.isclose(first_sizes[1]["step_size"], 0.05 * 0.5))


def test_rprop_schedule_lr_fills_the_step_sizes_of_a_late_parameter():
    w0, w1 = np.zeros(4), np.zeros(3)
    opt = lrcore.Rprop([w0, w1], lr=lambda t: 0.1 * (t + 1))
    opt.step([np.ones(4), None])
    opt.step([np.ones(4), np.ones(3)])
    state = opt.state_dict()["state"]
    np.testing.assert_array_equal(state[1]["step_size"], np.full(3, 0.2))  # lr(1): its first step
    np.testing.assert_array_equal(state[0]["step_size"], np.full(4, 0.1 * 1.2))  # lr(0), then grown once
    np.testing.assert_array_equal(w1, np.full(3, -0.2))


def test_rprop_functional_fills_none_step_sizes_with_lr_and_keeps_given_ones():
    params = [np.zeros(5, np.float32), np.zeros(5, np.float32)]
    prevs = [np.zeros(5, np.float32), np.zeros(5, np.float32)]
    step_sizes = [None, np.full(5, 0.5, np.float32)]
    functional.rprop(params, [np.ones(5, np.float32)] * 2, prevs, step_sizes, lr=0.25)
    np.testing.assert_array_equal(step_sizes[0], np.full(5, 0.25, np.float32))
    np.testing.assert_array_equal(params[0], np.full(5, -0.25, np.float32))
    np.testing.assert_array_equal(params[1], np.full(5, -0.5, np.float32))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("target", ["grad", "prev", "step_size", "param"])
def test_rprop_nan_and_infinities_like_torch_bitwise(each_isa, dtype, target):
    size = 37
    rng = np.random.default_rng(5)
    param = rng.standard_normal(size).astype(dtype)
    grad = rng.standard_normal(size).astype(dtype)
    prev = rng.standard_normal(size).astype(dtype)
    step_size = rng.uniform(0.01, 0.1, size).astype(dtype)
    arrays = {"grad": grad, "prev": prev, "step_size": step_size, "param": param}
    hostile = [dtype(np.nan), dtype(np.inf), dtype(-np.inf), dtype(0.0), dtype(-0.0)]
    positions = [0, 1, 2, 3, 4, 17, 18, 19, 20, 21, 32, 33, 34, 35, 36]
    for k, position in enumerate(positions):
        arrays[target][position] = hostile[k % len(hostile)]
    if target == "step_size":
        arrays[target][arrays[target] < 0] = dtype(np.inf)  # torch's step sizes are never negative
    ours = {name: a.copy() for name, a in arrays.items()}
    step_sizes = [ours["step_size"]]
    with np.errstate(all="ignore"):
        functional.rprop([ours["param"]], [ours["grad"]], [ours["prev"]], step_sizes, lr=0.05, etaminus=0.4,
                         etaplus=1.3, step_size_min=0.02, step_size_max=0.09)
        expected = {name: a.copy() for name, a in arrays.items()}
        reference.rprop([expected["param"]], [expected["grad"]], [expected["prev"]], [expected["step_size"]],
                        lr=0.05, etaminus=0.4, etaplus=1.3, step_size_min=0.02, step_size_max=0.09)
    theirs = torch.tensor(arrays["param"].copy(), requires_grad=True)
    torch_opt = torch.optim.Rprop([theirs], lr=0.05, etas=(0.4, 1.3), step_sizes=(0.02, 0.09), foreach=False)
    theirs.grad = torch.from_numpy(arrays["grad"].copy())
    torch_opt.step()  # creates its state from lr ...
    state = torch_opt.state[theirs]
    with torch.no_grad():  # ... which is reset to this test's values, and the step repeated
        theirs.copy_(torch.from_numpy(arrays["param"].copy()))
        state["prev"].copy_(torch.from_numpy(arrays["prev"].copy()))
        state["step_size"].copy_(torch.from_numpy(arrays["step_size"].copy()))
    torch_opt.step()
    torch_values = {"param": theirs.detach().numpy(), "prev": state["prev"].numpy(),
                    "step_size": state["step_size"].numpy()}
    for name in ("param", "prev", "step_size"):
        mine, want, torch_value = ours[name], expected[name], torch_values[name]
        assert np.array_equal(np.isnan(mine), np.isnan(torch_value)), name
        assert np.array_equal(np.isnan(mine), np.isnan(want)), name
        finite_mine = np.where(np.isnan(mine), 0, mine)
        assert bits(finite_mine).tobytes() == bits(np.where(np.isnan(torch_value), 0, torch_value)).tobytes(), name
        assert bits(finite_mine).tobytes() == bits(np.where(np.isnan(want), 0, want)).tobytes(), name


# --------------------------------------------------------------- Adadelta --
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_adadelta_first_step_matches_the_formula(dtype):
    # After one step from zero state: v = (1 - rho) g^2, d = sqrt(eps) / sqrt(v + eps) * g.
    g = np.array([1.0, -2.0, 0.5, 0.0, 3.0], dtype)
    w = np.zeros(5, dtype)
    opt = lrcore.Adadelta([w], lr=0.5, rho=0.9, eps=1e-6)
    opt.step([g])
    dt = dtype
    v = dt(1 - 0.9) * g * g
    d = np.sqrt(dt(0) + dt(1e-6)) / np.sqrt(v + dt(1e-6)) * g
    np.testing.assert_array_equal(w, dt(-0.5) * d)
    state = opt.state_dict()["state"][0]
    np.testing.assert_array_equal(state["square_avg"], v)
    np.testing.assert_array_equal(state["acc_delta"], dt(1 - 0.9) * d * d)
