"""Lion (Chen et al. 2023), which torch.optim does not have: against a float64 formula written here.

    c = beta1 * m + (1 - beta1) * g
    p = p * (1 - lr * weight_decay) - lr * sign(c)
    m = beta2 * m + (1 - beta2) * g

The kernels are checked bitwise against lrcore.reference with every other
rule (tests/test_kernels.py); this file checks that the rule is Lion: the
float64 formula element by element over 100 steps, and float32 against the
same formula one step at a time (where the direction's sign is the same in
both precisions), sign(0) = 0 and NaN propagation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import functional


def lion_formula(p, g, m, lr, beta1, beta2, weight_decay, maximize):
    """One step for one element, in Python floats (float64)."""
    g = -g if maximize else g
    c = beta1 * m + (1 - beta1) * g
    sign = 0.0 if c == 0 else math.copysign(1.0, c)
    p = p * (1 - lr * weight_decay) - lr * sign
    m = beta2 * m + (1 - beta2) * g
    return p, m


CONFIGS = [
    dict(lr=0.01),
    dict(lr=0.003, weight_decay=0.1),
    dict(lr=0.01, betas=(0.5, 0.9), maximize=True),
    dict(lr=1e-4, betas=(0.0, 0.0), weight_decay=1.0),
]


def formula_arguments(config):
    beta1, beta2 = config.get("betas", (0.9, 0.99))
    return dict(lr=config["lr"], beta1=beta1, beta2=beta2, weight_decay=config.get("weight_decay", 0.0),
                maximize=config.get("maximize", False))


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_float64_matches_the_formula_over_100_steps(each_isa, config):
    rng = np.random.default_rng(0)
    shapes = [(37,), (5, 7)]
    params = [rng.standard_normal(s) for s in shapes]
    expected = [[float(x) for x in p.ravel()] for p in params]
    momentum = [[0.0] * p.size for p in params]
    opt = lrcore.Lion(params, **config)
    arguments = formula_arguments(config)
    for _ in range(100):
        grads = [rng.standard_normal(s) for s in shapes]
        opt.step(grads)
        for k, g in enumerate(grads):
            for i, gi in enumerate(g.ravel()):
                expected[k][i], momentum[k][i] = lion_formula(expected[k][i], float(gi), momentum[k][i], **arguments)
    state = opt.state_dict()["state"]
    for k, p in enumerate(params):
        # The same operations in the same order, each rounded once: equal, not merely close.
        np.testing.assert_array_equal(p.ravel(), expected[k])
        np.testing.assert_array_equal(state[k]["exp_avg"].ravel(), momentum[k])


@pytest.mark.parametrize("config", CONFIGS, ids=str)
def test_float32_matches_the_formula_step_by_step(each_isa, config):
    rng = np.random.default_rng(1)
    size = 1001
    p = rng.standard_normal(size).astype(np.float32)
    m = np.zeros(size, np.float32)
    arguments = formula_arguments(config)
    beta1 = arguments["beta1"]
    for _ in range(100):
        g = rng.standard_normal(size).astype(np.float32)
        before_p, before_m = p.astype(np.float64), m.astype(np.float64)
        functional.lion([p], [g], [m], **{k: v for k, v in arguments.items()})
        expected = [lion_formula(a, float(b), c, **arguments) for a, b, c in zip(before_p, g, before_m)]
        direction = beta1 * before_m + (1 - beta1) * np.where(arguments["maximize"], -g, g)
        clear = np.abs(direction) > 1e-5  # elsewhere float32 rounding may decide the sign
        np.testing.assert_allclose(p[clear], np.array([e[0] for e in expected])[clear], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(m, [e[1] for e in expected], rtol=1e-6, atol=1e-7)


def test_bytes_moved_per_float32_element_is_20():
    from lrcore.bench._rules import RULES

    assert RULES["lion"].bytes_per_element(4) == 20  # read p, g, m; write p, m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_zero_direction_leaves_the_parameter_alone(each_isa, dtype):
    # sign(0) = 0: with no momentum and a zero gradient there is no step (signed zeros kept).
    p = np.array([1.5, -2.0, 0.0, -0.0] * 9, dtype)
    before = p.copy()
    functional.lion([p], [np.zeros_like(p)], [np.zeros_like(p)], lr=0.1)
    assert p.tobytes() == before.tobytes()
    g = np.array([0.0, -0.0, 1.0, -1.0] * 9, dtype)
    m = np.zeros_like(p)
    functional.lion([p], [g], [m], lr=0.25)
    assert np.array_equal(p, before - dtype(0.25) * np.sign(g))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_propagates(each_isa, dtype):
    size = 35
    g = np.ones(size, dtype)
    g[::4] = np.nan
    p = np.ones(size, dtype)
    m = np.zeros(size, dtype)
    m[1::4] = np.nan
    functional.lion([p], [g], [m], lr=0.1)
    nan = np.zeros(size, bool)
    nan[::4] = nan[1::4] = True
    assert np.array_equal(np.isnan(p), nan) and np.array_equal(np.isnan(m), nan)
    assert np.all(p[~nan] == dtype(1) - dtype(0.1))
