"""Bad input raises a clear exception naming the argument, and modifies nothing."""

from __future__ import annotations

import numpy as np
import pytest

import lrcore
from lrcore import functional

N = 8


def fresh():
    """Two float32 tensors with Adam state, plus the arguments of functional.adam."""
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(N).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float32)]
    grads = [np.ones_like(p) for p in params]
    exp_avgs = [np.full_like(p, 0.5) for p in params]
    exp_avg_sqs = [np.full_like(p, 0.25) for p in params]
    steps = np.array([3, 3], dtype=np.int64)
    return dict(params=params, grads=grads, exp_avgs=exp_avgs, exp_avg_sqs=exp_avg_sqs, steps=steps)


def snapshot(args):
    out = []
    for value in args.values():
        items = value if isinstance(value, list) else [value]
        out.extend(np.array(x, copy=True) if isinstance(x, np.ndarray) else x for x in items)
    return out


def unchanged(before, args):
    after = snapshot(args)
    return all(
        (a is b) or (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b))
        for a, b in zip(before, after)
    )


def corrupt_dtype(a):
    a["grads"][1] = a["grads"][1].astype(np.float64)


def corrupt_int_param(a):
    a["params"][1] = a["params"][1].astype(np.int32)


def corrupt_half(a):
    # A float16 parameter is valid; its gradient must then be float16 or float32.
    a["params"][0] = a["params"][0].astype(np.float16)
    a["grads"][0] = a["grads"][0].astype(np.float64)


def corrupt_shape(a):
    a["exp_avgs"][1] = np.zeros((3, 2), np.float32)


def corrupt_strided(a):
    a["params"][0] = np.zeros(2 * N, np.float32)[::2]


def corrupt_readonly(a):
    a["exp_avg_sqs"][1].flags.writeable = False


def corrupt_alias_param_grad(a):
    a["grads"][1] = a["params"][1]


def corrupt_alias_states(a):
    a["exp_avg_sqs"][0] = a["exp_avgs"][0]


def corrupt_length(a):
    a["grads"] = a["grads"][:1]


def corrupt_not_array(a):
    a["grads"][0] = [1.0] * N


def corrupt_steps_dtype(a):
    a["steps"] = a["steps"].astype(np.int32)


def corrupt_steps_length(a):
    a["steps"] = np.zeros(3, np.int64)


def corrupt_byte_order(a):
    a["params"][1] = a["params"][1].astype(">f4")


CASES = [
    (corrupt_dtype, TypeError, r"grads\[1\] has dtype float64 but params\[1\] has dtype float32"),
    (corrupt_int_param, TypeError, r"params\[1\] must have dtype float32, float64, bfloat16"),
    (corrupt_half, TypeError, r"grads\[0\] has dtype float64 but params\[0\] has dtype float16"),
    (corrupt_shape, ValueError, r"exp_avgs\[1\] has shape \(3, 2\) but params\[1\] has shape \(2, 3\)"),
    (corrupt_strided, ValueError, r"params\[0\] must be C-contiguous"),
    (corrupt_readonly, ValueError, r"exp_avg_sqs\[1\] is read-only"),
    (corrupt_alias_param_grad, ValueError, r"grads\[1\] and params\[1\] share memory"),
    (corrupt_alias_states, ValueError, r"(exp_avg_sqs\[0\] and exp_avgs\[0\]|exp_avgs\[0\] and exp_avg_sqs\[0\]) share memory"),
    (corrupt_length, ValueError, r"grads has 1 entries but params has 2"),
    (corrupt_not_array, TypeError, r"grads\[0\] must be a numpy array"),
    (corrupt_steps_dtype, TypeError, r"steps must have dtype int64"),
    (corrupt_steps_length, ValueError, r"steps must have shape \(2,\)"),
    (corrupt_byte_order, TypeError, r"params\[1\] must have dtype float32, float64, bfloat16 \(ml_dtypes\) or float16 \(native byte order\)"),
]


@pytest.mark.parametrize(("corrupt", "error", "message"), CASES, ids=[c[0].__name__ for c in CASES])
def test_functional_rejects_and_modifies_nothing(corrupt, error, message):
    args = fresh()
    corrupt(args)
    before = snapshot(args)
    with pytest.raises(error, match=message):
        functional.adam(**args, lr=0.1)
    assert unchanged(before, args)


HYPERPARAMETERS = [
    (dict(lr=-1.0), "lr must be a finite number >= 0"),
    (dict(lr=float("nan")), "lr must be a finite number >= 0"),
    (dict(lr=float("inf")), "lr must be a finite number >= 0"),
    (dict(beta1=1.0), r"beta1 must be in \[0, 1\)"),
    (dict(beta2=-0.1), r"beta2 must be in \[0, 1\)"),
    (dict(eps=-1e-8), "eps must be a finite number >= 0"),
    (dict(weight_decay=-0.1), "weight_decay must be a finite number >= 0"),
]


@pytest.mark.parametrize(("kwargs", "message"), HYPERPARAMETERS)
def test_bad_hyperparameters_modify_nothing(kwargs, message):
    args = fresh()
    before = snapshot(args)
    with pytest.raises(ValueError, match=message):
        functional.adam(**args, **kwargs)
    assert unchanged(before, args)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: lrcore.SGD(p, lr=-0.1), "lr must be"),
        (lambda p: lrcore.SGD(p, nesterov=True), "nesterov requires momentum > 0"),
        (lambda p: lrcore.SGD(p, momentum=0.9, dampening=0.5, nesterov=True), "nesterov requires"),
        (lambda p: lrcore.Adagrad(p, lr_decay=-1), "lr_decay must be"),
        (lambda p: lrcore.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
        (lambda p: lrcore.RMSprop(p, alpha=-0.5), "alpha must be"),
        (lambda p: lrcore.RMSprop(p, momentum=-0.5), "momentum must be"),
        (lambda p: lrcore.Adam(p, betas=(0.9, 1.0)), r"beta2 must be in \[0, 1\)"),
        (lambda p: lrcore.Adam(p, betas=(0.9,)), "betas must be a pair"),
        (lambda p: lrcore.AdamW(p, eps=-1), "eps must be"),
        (lambda p: lrcore.Adam(p, lr="fast"), r"param_groups\[0\]: lr must be a number, got str"),
        (lambda p: lrcore.Adam(p, amsgrad="yes"), "amsgrad must be a bool"),
    ],
)
def test_constructors_reject_bad_hyperparameters(make, message):
    params = [np.zeros(3, np.float32)]
    with pytest.raises((ValueError, TypeError), match=message):
        make(params)


@pytest.mark.parametrize(
    ("params", "error", "message"),
    [
        ([], ValueError, "params is empty"),
        (np.zeros(3, np.float32), TypeError, "not a single array"),
        ([np.zeros(3, np.int64)], TypeError, r"params\[0\] must have dtype float32, float64, bfloat16"),
        ([np.zeros((4, 4), np.float32)[:, 1]], ValueError, r"params\[0\] must be C-contiguous"),
        ([[1.0, 2.0]], TypeError, r"params\[0\] must be a numpy array"),
        ([{"params": [np.zeros(2)], "learning_rate": 0.1}], TypeError, "unknown hyperparameter"),
    ],
)
def test_constructors_reject_bad_params(params, error, message):
    with pytest.raises(error, match=message):
        lrcore.Adam(params)


def test_the_same_parameter_twice_is_rejected():
    p = np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"params\[1\] and params\[0\] share memory"):
        lrcore.SGD([p, p])
    with pytest.raises(ValueError, match=r"params\[1\] and params\[0\] share memory"):
        lrcore.SGD([{"params": [p]}, {"params": [p[1:]]}])


def test_optimizer_step_failure_modifies_nothing_across_groups():
    a, b = np.ones(4, np.float32), np.ones(5, np.float64)
    opt = lrcore.Adam([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    opt.step([np.ones(4, np.float32), np.ones(5)])
    before = opt.state_dict()
    a_before, b_before = a.copy(), b.copy()
    # The second group's gradient is bad: the first group must not be updated either.
    with pytest.raises(TypeError, match=r"grads\[1\] has dtype float32 but params\[1\] has dtype float64"):
        opt.step([np.ones(4, np.float32), np.ones(5, np.float32)])
    # A schedule producing an invalid value in the second group: the same.
    opt.param_groups[1]["lr"] = lambda t: -1.0
    with pytest.raises(ValueError, match="lr must be"):
        opt.step([np.ones(4, np.float32), np.ones(5)])
    assert np.array_equal(a, a_before) and np.array_equal(b, b_before)
    after = opt.state_dict()
    assert after["step_count"] == before["step_count"] == 1
    for key, entry in before["state"].items():
        for name, value in entry.items():
            assert np.array_equal(value, after["state"][key][name])


def test_step_rejects_wrong_gradient_count_and_types():
    opt = lrcore.SGD([np.zeros(3, np.float32)], lr=0.1)
    with pytest.raises(ValueError, match="grads has 2 entries but the optimizer has 1 parameters"):
        opt.step([np.zeros(3, np.float32)] * 2)
    with pytest.raises(TypeError, match="grads must be a list"):
        opt.step(np.zeros(3, np.float32))


def test_zero_size_arrays_are_a_no_op():
    p = np.zeros((0, 3), np.float32)
    opt = lrcore.Adam([p, np.ones(2, np.float32)], lr=0.1)
    opt.step([np.zeros((0, 3), np.float32), np.ones(2, np.float32)])
    assert opt.state_dict()["state"][0]["step"] == 1


def test_overlap_is_checked_on_every_call_not_only_the_first():
    # The written arrays' pairwise check is remembered between calls that pass
    # the same arrays; gradients are checked against them every time.
    args = fresh()
    functional.adam(**args, lr=0.1)
    functional.adam(**args, lr=0.1)
    args["grads"][1] = args["exp_avgs"][1]
    before = snapshot(args)
    with pytest.raises(ValueError, match=r"grads\[1\] and exp_avgs\[1\] share memory"):
        functional.adam(**args, lr=0.1)
    assert unchanged(before, args)
    # And written arrays that change between calls are checked afresh.
    args = fresh()
    functional.adam(**args, lr=0.1)
    args["exp_avg_sqs"][1] = args["params"][1]
    with pytest.raises(ValueError, match="share memory"):
        functional.adam(**args, lr=0.1)
