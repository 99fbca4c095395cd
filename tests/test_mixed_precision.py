"""Mixed precision through the native step: 16-bit parameters (bfloat16, float16) with float32 math.

What the native layer promises (see cpp/src/kernels/storage_formats.hpp and
stored_arrays.hpp), checked bit for bit for every element-wise rule of
tests/rules.py:

- a step of a 16-bit parameter (gradient in its dtype or float32; state all
  float32 or all bfloat16) is the float32 step of the widened arrays, each
  result rounded to nearest even as numpy/ml_dtypes' ``astype`` rounds it
  (a NaN stays a NaN, its payload is not compared);
- with a float32 master copy, the master is stepped exactly as a float32
  parameter and the parameter is the master rounded to nearest;
- stochastic rounding (``rounding_seed``) picks one of the two neighbours of
  the float32 result, unbiased, reproducibly for a seed, and identically on
  every ISA and thread count;
- bad input raises naming the argument and writes nothing.

The expected values come from ``lrcore.reference`` (numpy, one operation at a
time) on float32 copies, never from the native code under test. The calls go
to ``lrcore._core.rules.<rule>.step`` directly, with the group layout
(hyperparameters, params, grads, state, steps[, group_state]).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np
import pytest

import lrcore
from lrcore import reference
from rules import RULE_CASES, RULE_IDS, RULES, ROW_RULES

ml_dtypes = pytest.importorskip("ml_dtypes", reason="the bfloat16 dtype comes from ml_dtypes")

BF16 = np.dtype(ml_dtypes.bfloat16)
F16 = np.dtype(np.float16)
F32 = np.dtype(np.float32)
HALF_DTYPES = [BF16, F16]
HALF_IDS = ["bfloat16", "float16"]

#: Vectors (sizes around the vector widths, a long one with a tail) and matrices (Adafactor factors those
#: over their last two dimensions). No 0-d parameter: lrcore.reference's rprop fails on one with
#: maximize=True (-grad of a 0-d array is a numpy scalar, which its masked assignment cannot write).
SHAPES = [(1,), (7,), (33,), (1031,), (4, 9), (3, 5, 7)]


# ------------------------------------------------------------------------------------------ layouts
@dataclass(frozen=True)
class Layout:
    """How one call stores its arrays: the parameter's dtype, the gradient's, the state's, and how
    16-bit parameters are stored ("nearest", "stochastic" or "master")."""

    param: np.dtype
    grad: np.dtype
    state: np.dtype
    mode: str = "nearest"

    def __str__(self) -> str:
        return f"{self.param.name} param, {self.grad.name} grad, {self.state.name} state, {self.mode}"


def layouts(param: np.dtype, modes=("nearest", "master", "stochastic")) -> List[Layout]:
    """Every layout of a 16-bit parameter dtype: gradient in its dtype or float32, float32 or bfloat16 state."""
    return [Layout(param, grad, state, mode) for mode in modes for grad in (param, F32) for state in (F32, BF16)]


# -------------------------------------------------------------------------------------- native calls
def fresh_state(rule, config, params32: List[np.ndarray], state_dtype: np.dtype) -> Dict[str, Any]:
    """The functional layout's state (list names) for float32 parameters, its arrays in state_dtype."""
    state = rule.new_state(params32, config)
    for s in rule.description.states:
        arrays = state[s.list_name]
        if arrays is not None:
            state[s.list_name] = [None if a is None else a.astype(state_dtype) for a in arrays]
    state.setdefault("steps", np.zeros(len(params32), dtype=np.int64))
    return state


def group_of(rule, config, params, grads, state, masters=None):
    """The native group tuple for state in the functional layout (entries keyed by the state's name)."""
    description = rule.description
    entries: Dict[str, Any] = {s.name: state[s.list_name] for s in description.states}
    entries.update({s.name: state[s.list_name] for s in description.scalars})
    if masters is not None:
        entries["master_weight"] = masters
    group = (rule.native_values(config), params, grads, entries, state["steps"])
    if "group_state" in state:
        group += (state["group_state"],)
    return group


def allocator(dtype: np.dtype):
    """A `create` for the native step: new state arrays of one dtype, shaped like the parameter."""
    def create(param, shape=None):
        return np.zeros(param.shape if shape is None else shape, dtype=dtype)
    return create


def native_step(rule, config, params, grads, state, layout: Layout, masters=None, seed=None, **options):
    group = group_of(rule, config, params, grads, state, masters)
    return rule.description.native.step([group], create=allocator(layout.state), rounding_seed=seed, **options)


def widened(arrays):
    return [None if a is None else a.astype(F32) for a in arrays]


def copy_state(state: Dict[str, Any], convert=None) -> Dict[str, Any]:
    """A deep copy of a functional-layout state; `convert` maps each state array (not scalars/steps)."""
    result: Dict[str, Any] = {}
    for name, value in state.items():
        if isinstance(value, list):
            result[name] = [None if a is None else (convert(a) if convert is not None and a.dtype != np.float64
                                                    else a.copy()) for a in value]
        elif isinstance(value, np.ndarray):
            result[name] = value.copy()
        else:
            result[name] = value
    return result


def reference_step(rule, config, params32, grads32, state32) -> None:
    """One float32 step of lrcore.reference, in place, with the steps counted as the native step counts
    them (for every rule: those without a counter of their own too)."""
    rule.functional_call(reference, params32, grads32, state32, config)
    if "steps" not in rule.description.functional_arguments:
        for i, g in enumerate(grads32):
            if g is not None:
                state32["steps"][i] += 1


def expected_step(rule, config, params, grads, state, masters, layout: Layout):
    """The float32 step of the widened arrays: (float32 params, float32 state), the results before rounding."""
    params32 = [m.copy() if m is not None else p.astype(F32)
                for p, m in zip(params, masters if masters is not None else [None] * len(params))]
    grads32 = widened(grads)
    state32 = copy_state(state, convert=lambda a: a.astype(F32))
    reference_step(rule, config, params32, grads32, state32)
    return params32, state32


# --------------------------------------------------------------------------------------- comparisons
def is_nan(values: np.ndarray) -> np.ndarray:
    """NaN-ness from the bits (a cast would raise numpy's warning for a signalling NaN)."""
    if values.dtype.kind in "iub":
        return np.zeros(values.shape, bool)
    if values.dtype == np.float64:
        return np.isnan(values)
    if values.dtype.itemsize == 4:
        return (values.view(np.uint32) & 0x7FFFFFFF) > 0x7F800000
    infinity = 0x7F80 if values.dtype == BF16 else 0x7C00
    return (values.view(np.uint16) & 0x7FFF) > infinity


def same_bits(actual: np.ndarray, expected: np.ndarray) -> bool:
    """Bitwise equality, except that a NaN only has to be a NaN."""
    if actual.dtype != expected.dtype or actual.shape != expected.shape:
        return False
    a = actual.reshape(-1)
    e = expected.reshape(-1)
    width = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}[a.dtype.itemsize]
    if np.array_equal(a.view(width), e.view(width)):
        return True
    a_nan = is_nan(a)
    e_nan = is_nan(e)
    if not np.array_equal(a_nan, e_nan):
        return False
    return bool(np.array_equal(a.view(width)[~e_nan], e.view(width)[~e_nan]))


def assert_same_bits(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    if not same_bits(actual, expected):
        with np.errstate(invalid="ignore"):
            a = actual.reshape(-1).astype(np.float64)
            e = expected.reshape(-1).astype(np.float64)
        differ = np.flatnonzero(~((a == e) | (np.isnan(a) & np.isnan(e))) | (np.signbit(a) != np.signbit(e)))
        k = differ[0]
        raise AssertionError(f"{what}: {differ.size} of {a.size} elements differ, first at {k}: "
                             f"{actual.reshape(-1)[k]!r} != expected {expected.reshape(-1)[k]!r}")


def neighbours(values32: np.ndarray, dtype: np.dtype):
    """The two values of `dtype` around each float32 value, as (toward zero, away from zero) bit patterns
    (equal where the value is representable); ignores NaNs."""
    with np.errstate(over="ignore"):  # an overflow to infinity is one of the neighbours
        nearest = values32.astype(dtype)
    bits = nearest.view(np.uint16).astype(np.int64)
    back = nearest.astype(np.float64)
    exact = back == values32.astype(np.float64)
    # Sign and magnitude: the pattern one below in magnitude is one less (the magnitude is > 0 there).
    too_big = np.abs(back) > np.abs(values32.astype(np.float64))
    below = np.where(too_big, bits - 1, bits)
    above = np.where(exact, below, below + 1)
    return below.astype(np.uint16), above.astype(np.uint16)


def assert_rounded_either_way(actual: np.ndarray, expected32: np.ndarray, what: str) -> None:
    """Each element of the 16-bit `actual` is one of the two neighbours of the float32 result (NaN: a NaN)."""
    assert actual.shape == expected32.shape, what
    a = actual.reshape(-1)
    e = expected32.reshape(-1)
    nan = is_nan(e)
    assert np.array_equal(is_nan(a), nan), f"{what}: NaNs differ"
    below, above = neighbours(e[~nan], actual.dtype)
    bits = a.view(np.uint16)[~nan]
    ok = (bits == below) | (bits == above)
    if not np.all(ok):
        k = np.flatnonzero(~ok)[0]
        raise AssertionError(f"{what}: {np.count_nonzero(~ok)} elements are not a neighbour of the float32 "
                             f"result, first {a[~nan][k]!r} for {e[~nan][k]!r}")


def check_against_expected(rule, params, state, masters, expected_params, expected_state, layout: Layout,
                           what: str) -> None:
    """The native results against the float32 step's, rounded as the layout stores them."""
    stochastic = layout.mode == "stochastic"
    for i, (p, e) in enumerate(zip(params, expected_params)):
        if masters is not None and masters[i] is not None:
            assert_same_bits(masters[i], e, f"{what}: master_weights[{i}]")
        if stochastic:
            assert_rounded_either_way(p, e, f"{what}: params[{i}]")
        else:
            assert_same_bits(p, e.astype(p.dtype), f"{what}: params[{i}]")
    description = rule.description
    for s in description.states:
        ours, theirs = state[s.list_name], expected_state[s.list_name]
        if ours is None:
            assert theirs is None or all(t is None for t in theirs), f"{what}: {s.list_name}"
            continue
        for i, (a, e) in enumerate(zip(ours, theirs)):
            if a is None or e is None:
                assert a is None and e is None, f"{what}: {s.list_name}[{i}]"
                continue
            assert a.dtype == layout.state, f"{what}: {s.list_name}[{i}] has dtype {a.dtype}"
            if stochastic and a.dtype != F32:
                assert_rounded_either_way(a, e, f"{what}: {s.list_name}[{i}]")
            else:
                assert_same_bits(a, e.astype(a.dtype), f"{what}: {s.list_name}[{i}]")
    for s in description.scalars:
        for i, (a, e) in enumerate(zip(state[s.list_name], expected_state[s.list_name])):
            assert np.array_equal(a, e, equal_nan=True), f"{what}: {s.list_name}[{i}]"
    assert np.array_equal(state["steps"], expected_state["steps"]), f"{what}: steps"
    if "group_state" in state:
        assert np.array_equal(state["group_state"], expected_state["group_state"]), f"{what}: group_state"


def start(rule, config, layout: Layout, shapes=SHAPES, seed=0):
    """Fresh 16-bit parameters (and master copies for a master layout) and state."""
    rng = np.random.default_rng(seed)
    params = [np.asarray(rng.standard_normal(shape), dtype=F32).astype(layout.param) for shape in shapes]
    masters = [p.astype(F32) for p in params] if layout.mode == "master" else None
    state = fresh_state(rule, config, widened(params), layout.state)
    return rng, params, masters, state


def gradients(rng, shapes, dtype):
    return [np.asarray(rng.standard_normal(shape) + 0.1, dtype=F32).astype(dtype) for shape in shapes]


def schedule_free_switch(rule, config, params, state, masters, train: bool) -> None:
    """The native train/eval switch of a schedule-free group (16-bit parameters, their masters)."""
    description = rule.description
    entries: Dict[str, Any] = {description.states[0].name: state[description.states[0].list_name]}
    if masters is not None:
        entries["master_weight"] = masters
    description.native.switch_mode([(rule.native_values(config), params, entries, state["group_state"])], train)


def reference_switch(rule, config, params32, state32, train: bool) -> None:
    name = f"{rule.name}_{'train' if train else 'eval'}"
    values = {k: v for k, v in rule.native_values(config).items() if k not in rule.description.fixed}
    getattr(reference, name)(params32, state32[rule.description.states[0].list_name], state32["group_state"],
                             **values)


# ------------------------------------------------------------------ 1. bitwise against the reference
STEPS = 8  # RAdam's rectified branch starts at step 6


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_each_step_is_the_rounded_float32_step(rule, config, param_dtype):
    """Every layout, step by step: the native step of 16-bit arrays equals lrcore.reference's float32 step
    of their widened values, rounded to nearest even by numpy/ml_dtypes (stochastic: to one of the two
    neighbours; master: the master bitwise, the parameter the master rounded)."""
    for layout in layouts(param_dtype):
        rng, params, masters, state = start(rule, config, layout)
        for step in range(1, STEPS + 1):
            grads = gradients(rng, SHAPES, layout.grad)
            expected_params, expected_state = expected_step(rule, config, params, grads, state, masters, layout)
            seed = 1234 if layout.mode == "stochastic" else None
            assert native_step(rule, config, params, grads, state, layout, masters, seed=seed) is True
            check_against_expected(rule, params, state, masters, expected_params, expected_state, layout,
                                   f"{layout}, step {step}")
        if rule.description.has_modes:
            # Train -> eval -> train: the switches are lerps of the parameter (or its master) toward z,
            # stored to nearest even.
            for train in (False, True):
                params32 = [m.copy() if m is not None else p.astype(F32)
                            for p, m in zip(params, masters or [None] * len(params))]
                state32 = copy_state(state, convert=lambda a: a.astype(F32))
                reference_switch(rule, config, params32, state32, train)
                schedule_free_switch(rule, config, params, state, masters, train)
                # (A switch rounds to nearest even, also after stochastically rounded steps.)
                switched = layout if layout.mode != "stochastic" else Layout(layout.param, layout.grad, layout.state)
                check_against_expected(rule, params, state, masters, params32, state32, switched,
                                       f"{layout}, switch to {'train' if train else 'eval'}")


MASTER_STEPS = 24  # ASGD's averaging with t0 = 20 starts at step 22


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_master_weights_follow_the_float32_run(rule, config, param_dtype):
    """With float32 state and a master copy, many steps: the master is the float32 run of the same
    (widened) gradients bit for bit, and the parameter is the master rounded to nearest even."""
    for grad_dtype in (param_dtype, F32):
        layout = Layout(param_dtype, grad_dtype, F32, "master")
        rng, params, masters, state = start(rule, config, layout)
        params32 = [m.copy() for m in masters]
        state32 = copy_state(state)
        for _ in range(MASTER_STEPS):
            grads = gradients(rng, SHAPES, grad_dtype)
            native_step(rule, config, params, grads, state, layout, masters)
            reference_step(rule, config, params32, widened(grads), state32)
        if rule.description.has_modes:
            schedule_free_switch(rule, config, params, state, masters, False)
            reference_switch(rule, config, params32, state32, False)
        check_against_expected(rule, params, state, masters, params32, state32, layout,
                               f"{layout}, after {MASTER_STEPS} steps")


# ------------------------------------------------------------------------------------ 2. conversions
SGD = next(rule for rule in RULES if rule.name == "sgd")
PLAIN_SGD = dict(lr=1.0)


def float32_patterns(rng, count: int = 1 << 15) -> np.ndarray:
    """Float32 values of every class, shuffled: random bits (normals of every exponent, some NaNs and
    subnormals), subnormals, NaNs with random payloads and either sign, infinities, zeros, values around
    float16's largest (65504, the tie 65520) and bfloat16's, values at and below float16's smallest
    subnormal 2**-24 (the tie 2**-25), and exact ties of both formats."""
    def bits_of(values) -> np.ndarray:
        return np.asarray(values, dtype=np.float32).view(np.uint32)

    def signed(magnitudes: np.ndarray) -> np.ndarray:
        return magnitudes | (rng.integers(0, 2, magnitudes.size, dtype=np.uint32) << 31)

    part = count // 8
    random = rng.integers(0, 1 << 32, count, dtype=np.uint64).astype(np.uint32)
    fraction = rng.integers(0, 1 << 23, count, dtype=np.uint32)
    subnormal = signed(fraction)
    nan = signed(0x7F800000 | np.maximum(fraction, 1))
    specials = np.array([0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001,
                         0x7F7FFFFF, 0xFF7FFFFF, 0x00000001, 0x80000001, 0x00800000, 0x007FFFFF,
                         # around bfloat16's largest: below, at and above the tie that rounds to infinity
                         0x7F7F7FFF, 0x7F7F8000, 0x7F7F8001, 0x7F7E8000], dtype=np.uint32)
    half_max = bits_of([65504, 65505, 65519, 65519.996, 65520, 65520.004, 65535, 65536, 1e5, 70000.5,
                        -65504, -65520, -65519.996, 131008, 2.0 ** 16 - 16])
    around_half_max = signed(bits_of(rng.uniform(65000, 66100, part)))
    tiny = np.float32(2.0 ** -24)  # float16's smallest subnormal
    tiny_values = bits_of([tiny, tiny / 2, np.nextafter(tiny / 2, 1, dtype=np.float32),
                           np.nextafter(tiny / 2, 0, dtype=np.float32), tiny * 1.5, tiny * 2.5, tiny / 4, -tiny / 2,
                           -tiny * 1.5, 2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 6.1e-5])
    below_tiny = signed(bits_of(rng.uniform(2.0 ** -27, 2.0 ** -23, part)))
    # float16 subnormals and normals of every exponent, with random fractions.
    half_range = signed(bits_of(np.exp2(rng.uniform(-30, 16.5, 2 * part))))
    # Exact ties: bfloat16 drops the low 16 bits (tie 0x8000), float16's normals the low 13 (tie 0x1000).
    bfloat16_ties = (random[:part] & 0xFFFF0000) | 0x8000
    bfloat16_near_ties = (random[:part] & 0xFFFF0000) | rng.choice(np.array([0x7FFF, 0x8001, 0xFFFF, 1], np.uint32),
                                                                    part)
    half_ties = signed((bits_of(np.exp2(rng.uniform(-14, 15.9, part))) & ~np.uint32(0x1FFF)) | 0x1000)
    every = np.concatenate([random, subnormal, nan, specials, half_max, around_half_max, tiny_values, below_tiny,
                            half_range, bfloat16_ties, bfloat16_near_ties, half_ties])
    return rng.permutation(every).view(np.float32)


def sgd_group(params, grads, momentum=0.0, masters=None, steps=None):
    """An SGD group with lr = 1 (state in the functional layout, for reading the created buffers)."""
    state = {"momentum_buffers": [None] * len(params), "steps": steps}
    entries: Dict[str, Any] = {"momentum_buffer": state["momentum_buffers"]}
    if masters is not None:
        entries["master_weight"] = masters
    return (SGD.native_values(dict(lr=1.0, momentum=momentum)), params, grads, entries, steps), state


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
def test_rounding_float32_values_as_numpy_does(each_isa, param_dtype):
    """SGD with lr = 1 from zeros stores -grad: every float32 class rounds as numpy/ml_dtypes' astype (to
    nearest even; overflow to infinity; float16 subnormals), in the parameter, in a bfloat16 momentum
    buffer, and, with a master copy, in the parameter while the master keeps the float32 value."""
    rng = np.random.default_rng(11)
    grad = float32_patterns(rng)
    # The float32 results lrcore.reference computes (0 - 1 * g, and the buffer b = g), and numpy's rounding
    # of them (NaNs, infinities and overflows are the point here: numpy's warnings about them are not).
    with np.errstate(all="ignore"):
        expected = [np.zeros(grad.size, F32)]
        reference.sgd(expected, [grad], [None], lr=1.0, momentum=0.5)
        expected_param = expected[0].astype(param_dtype)
        buffer_expected = grad.astype(BF16)

    param = np.zeros(grad.size, param_dtype)
    group, state = sgd_group([param], [grad], momentum=0.5)
    SGD.description.native.step([group], create=allocator(BF16))
    assert_same_bits(param, expected_param, f"{param_dtype.name} params")
    assert_same_bits(state["momentum_buffers"][0], buffer_expected, "bfloat16 momentum_buffers")

    param = np.zeros(grad.size, param_dtype)
    master = np.zeros(grad.size, F32)
    group, _ = sgd_group([param], [grad], masters=[master])
    SGD.description.native.step([group])
    assert_same_bits(master, expected[0], "master_weights")
    assert_same_bits(param, expected_param, f"{param_dtype.name} params from the master")

    # Stochastic rounding: one of the two neighbours, a NaN stays a NaN (the overflow past the largest
    # float16 may go to infinity or stay at 65504).
    param = np.zeros(grad.size, param_dtype)
    group, _ = sgd_group([param], [grad], steps=np.zeros(1, np.int64))
    SGD.description.native.step([group], rounding_seed=99)
    assert_rounded_either_way(param, expected[0], f"{param_dtype.name} params, stochastic")


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
def test_every_16_bit_pattern_widens_exactly(each_isa, param_dtype):
    """All 65536 patterns, as gradients (widened; p = 0 - g stored back) and as parameters (p - 1 * 0):
    both give back the pattern (a NaN: a NaN), and the float32 master of p = 0 - g is numpy's widening."""
    patterns = np.random.default_rng(5).permutation(np.arange(1 << 16, dtype=np.uint32).astype(np.uint16))
    values = patterns.view(param_dtype)
    expected = [np.zeros(values.size, F32)]
    with np.errstate(all="ignore"):
        reference.sgd(expected, [values.astype(F32)], [None], lr=1.0)

    param = np.zeros(values.size, param_dtype)
    master = np.zeros(values.size, F32)
    group, _ = sgd_group([param], [values.copy()], masters=[master])
    SGD.description.native.step([group])
    assert_same_bits(master, expected[0], "master_weights (widened gradients)")
    assert_same_bits(param, expected[0].astype(param_dtype), "params (widened gradients)")

    param = values.copy()
    group, _ = sgd_group([param], [np.zeros(values.size, param_dtype)])
    SGD.description.native.step([group])
    assert_same_bits(param, values, "params stepped by zero")


# ------------------------------------------------------------------------------ 3. stochastic rounding
#: Each rule with its last configuration (the one with the most options on, mostly).
ONE_CONFIG_EACH = [(rule, rule.configs[-1]) for rule in RULES]

#: Values between two neighbours of each format: normals of small and large exponents, both signs, for
#: float16 its subnormals (spacing 2**-24) and a value below the smallest one, and for both values past
#: the largest finite one (which round up to infinity with the probability of their fraction).
UNBIASED_VALUES = {
    "bfloat16": [1.00234375, -2.7182817, 3.0e-30, -7.7e20, 0.1, 3.3935e38],
    "float16": [1.0003, -3.14159, 40000.7, 6.2e-5, 3.3e-7, -1.0e-7, 2.0e-8, 65519.0, -65530.0],
}
COPIES = 1 << 15  # elements per value: a standard error of at most 0.0028 on the fraction


def fraction_up(values32: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """How far each value lies from its neighbour toward zero to the one away from zero (0..1); past the
    largest finite value, infinity counts as one spacing further (the format's next exponent)."""
    below, above = neighbours(values32, dtype)
    low = np.abs(below.view(dtype).astype(np.float64))
    high = np.abs(above.view(dtype).astype(np.float64))
    largest = np.isinf(high)
    spacing = np.where(largest, low - np.abs((below - 1).view(dtype).astype(np.float64)), high - low)
    return (np.abs(values32.astype(np.float64)) - low) / spacing


def assert_unbiased(stored: np.ndarray, values32: np.ndarray, what: str) -> np.ndarray:
    """Per distinct value: the share rounded away from zero is the exact fraction, within 5 standard
    errors; returns which elements were rounded away from zero."""
    assert_rounded_either_way(stored, values32, what)
    below, above = neighbours(values32, stored.dtype)
    up = stored.view(np.uint16) == above
    for value in np.unique(values32):
        members = values32 == value
        exact = fraction_up(np.array([value], F32), stored.dtype)[0]
        assert 0.01 < exact < 0.99, f"{what}: {value} is too close to a representable value for this test"
        share = np.count_nonzero(up[members]) / np.count_nonzero(members)
        error = np.sqrt(exact * (1 - exact) / np.count_nonzero(members))
        assert abs(share - exact) < 5 * error, f"{what}: {value!r} rounded up {share:.4f} of the time, not {exact:.4f}"
    return up


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
def test_stochastic_rounding_is_unbiased(param_dtype):
    """SGD with lr = 1 from zeros stores -grad stochastically; with momentum its bfloat16 buffer (b = g)
    too: each rounds away from zero with the probability of its fraction, and the parameter's and the
    buffer's decisions are independent (different random bits per array)."""
    target = np.repeat(np.array(UNBIASED_VALUES[param_dtype.name], F32), COPIES)
    grad = -target
    param = np.zeros(target.size, param_dtype)
    group, state = sgd_group([param], [grad], momentum=0.5, steps=np.zeros(1, np.int64))
    SGD.description.native.step([group], create=allocator(BF16), rounding_seed=2026)
    param_up = assert_unbiased(param, target, f"{param_dtype.name} params")
    buffer_up = assert_unbiased(state["momentum_buffers"][0], grad, "bfloat16 momentum_buffers")
    for value in UNBIASED_VALUES[param_dtype.name]:
        members = target == np.float32(value)
        p_share, b_share = param_up[members].mean(), buffer_up[members].mean()
        both = np.mean(param_up[members] & buffer_up[members])
        error = np.sqrt(p_share * b_share * (1 - p_share * b_share) / np.count_nonzero(members))
        assert abs(both - p_share * b_share) < 5 * error, f"{value}: parameter and buffer rounding correlate"


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
def test_stochastic_rounding_does_not_stall(param_dtype):
    """1000 SGD steps of -1e-4 on ones: each is below half a spacing of both formats, so rounding to
    nearest never moves; stochastic rounding ends near 0.9 on average, as float32 does."""
    size = 4096
    results = {}
    for seed in (None, 7):
        param = np.ones(size, param_dtype)
        grad = np.ones(size, param_dtype)
        steps = np.zeros(1, np.int64)
        group = (SGD.native_values(dict(lr=1e-4)), [param], [grad], {"momentum_buffer": [None]}, steps)
        for _ in range(1000):
            SGD.description.native.step([group], rounding_seed=seed)
        assert steps[0] == 1000
        results[seed] = param.astype(np.float64)
    assert np.all(results[None] == 1.0), "rounding to nearest moved a parameter"
    mean = results[7].mean()
    assert abs(mean - 0.9) < 0.005, f"stochastic rounding ended at a mean of {mean}"
    assert results[7].std() > 0  # the elements took different paths


def adam_call(params, grads, state_dtype, seed, steps=None):
    """One Adam step (bfloat16 state stochastic as well) over `params`; returns the state lists."""
    adam = next(rule for rule in RULES if rule.name == "adam")
    state = {"exp_avgs": [np.zeros(p.shape, state_dtype) for p in params],
             "exp_avg_sqs": [np.zeros(p.shape, state_dtype) for p in params],
             "max_exp_avg_sqs": None,
             "steps": np.zeros(len(params), np.int64) if steps is None else steps}
    adam.description.native.step([group_of(adam, dict(lr=0.01), params, grads, state)], rounding_seed=seed)
    return state


def test_stochastic_rounding_is_keyed_by_seed_tensor_and_step():
    """The same seed gives the same bits; another seed, another tensor of the call, another step number
    or another array of the tensor gives others. A seed is taken modulo 2**64."""
    rng = np.random.default_rng(8)
    value = rng.standard_normal(50000).astype(F32)
    grad = rng.standard_normal(50000).astype(BF16)

    def run(seed, copies=1, steps=None):
        params = [value.astype(BF16) for _ in range(copies)]
        state = adam_call(params, [grad] * copies, BF16, seed, steps)
        return params, state

    first, first_state = run(5)
    again, again_state = run(5)
    assert_same_bits(again[0], first[0], "params, same seed")
    assert_same_bits(again_state["exp_avgs"][0], first_state["exp_avgs"][0], "exp_avgs, same seed")
    assert_same_bits(again_state["exp_avg_sqs"][0], first_state["exp_avg_sqs"][0], "exp_avg_sqs, same seed")

    def differing(a, b):
        return np.count_nonzero(a.view(np.uint16) != b.view(np.uint16)) / a.size

    # Adam's first step moves every element by about lr: a fresh draw changes the rounding of many.
    assert differing(run(6)[0][0], first[0]) > 0.1
    pair, _ = run(5, copies=2)
    assert differing(pair[0], pair[1]) > 0.1, "two tensors of one call got the same random bits"
    assert_same_bits(pair[0], first[0], "the first tensor of the call")
    later, _ = run(5, steps=np.array([3], np.int64))
    assert differing(later[0], first[0]) > 0.1, "step 4 used step 1's random bits"
    # exp_avg = 0.1 g and exp_avg_sq = 0.001 g**2 are two arrays of one tensor: their rounding decisions
    # agree as often as independent draws do (with shared bits they would agree 1 - |f_m - f_v| of the time).
    g32 = np.asarray(grad, F32)
    decisions = []
    for name, exact in (("exp_avgs", g32 * np.float32(0.1)), ("exp_avg_sqs", (g32 * g32) * np.float32(0.001))):
        below, above = neighbours(exact, BF16)
        stored = first_state[name][0].view(np.uint16)
        assert np.all((stored == below) | (stored == above)), name
        with np.errstate(invalid="ignore"):
            decisions.append((stored == above, fraction_up(exact, BF16)))
    (m_up, f_m), (v_up, f_v) = decisions
    inexact = np.isfinite(f_m) & np.isfinite(f_v) & (f_m > 0) & (f_v > 0)
    f_m, f_v = f_m[inexact], f_v[inexact]
    agree = np.mean(m_up[inexact] == v_up[inexact])
    independent = f_m * f_v + (1 - f_m) * (1 - f_v)
    error = np.sqrt(np.sum(independent * (1 - independent))) / independent.size
    assert abs(agree - independent.mean()) < 5 * error, (agree, independent.mean(), np.mean(1 - abs(f_m - f_v)))

    assert_same_bits(run(-1)[0][0], run(2**64 - 1)[0][0], "seed -1 and 2**64 - 1")
    assert_same_bits(run(2**64 + 5)[0][0], first[0], "seed 2**64 + 5 and 5")



@pytest.mark.parametrize(("rule", "config"), ONE_CONFIG_EACH, ids=[rule.name for rule, _ in ONE_CONFIG_EACH])
def test_stochastic_rounding_leaves_float32_and_skipped_tensors_alone(rule, config):
    """A seed changes nothing of float32 parameters and float32 state (their stores do not round), and a
    16-bit tensor with a None gradient is neither read nor written nor counted."""
    rng = np.random.default_rng(12)
    params = [np.asarray(rng.standard_normal(1031), F32), np.asarray(rng.standard_normal(77), F32).astype(BF16),
              np.asarray(rng.standard_normal((4, 9)), F32)]
    grads = [np.asarray(rng.standard_normal(p.shape), F32).astype(p.dtype) for p in params]
    grads[1] = None
    results = []
    for seed in (None, 77):
        ours = [p.copy() for p in params]
        state = fresh_state(rule, config, widened(ours), F32)
        untouched = snapshot((ours[1], [state[s.list_name][1] for s in rule.description.states
                                        if state[s.list_name] is not None]))
        group = group_of(rule, config, ours, grads, state)
        assert rule.description.native.step([group], create=allocator(F32), rounding_seed=seed) is True
        assert state["steps"].tolist() == [1, 0, 1]
        assert snapshot((ours[1], [state[s.list_name][1] for s in rule.description.states
                                   if state[s.list_name] is not None])) == untouched
        results.append(snapshot((ours, state)))
    assert results[0] == results[1]

#: Run in a fresh interpreter (LRCORE_ISA and LRCORE_NUM_THREADS are read at import): two steps of
#: stochastically rounded Adam and SGD with momentum over tensors big enough to be cut into many chunks
#: (a misaligned one too), at the environment's thread count and then at 1, 2 and 3 threads set in the
#: process; prints the ISA, the thread count from the environment and one digest of every array per run.
CHUNKED_STOCHASTIC_RUN = textwrap.dedent("""
    import hashlib
    import numpy as np
    import ml_dtypes
    import lrcore

    bf16 = np.dtype(ml_dtypes.bfloat16)


    def run():
        rng = np.random.default_rng(21)
        sizes = [(1 << 20) + 4097, 70001]
        digest = hashlib.sha256()
        for rule, values, states in (
                ("adam", dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, amsgrad=False,
                              maximize=False, decoupled_weight_decay=False), ("exp_avg", "exp_avg_sq")),
                ("sgd", dict(lr=0.01, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=False,
                             maximize=False), ("momentum_buffer",))):
            # A bfloat16 parameter with bfloat16 state and a float16 one (starting one element into its
            # buffer) with float32 state (SGD's buffers: created, the first step copies the gradient).
            backing = rng.standard_normal(sizes[1] + 1).astype(np.float16)
            params = [rng.standard_normal(sizes[0]).astype(np.float32).astype(bf16), backing[1:]]
            state = {name: [np.zeros(sizes[0], bf16), np.zeros(sizes[1], np.float32)] for name in states}
            if rule == "sgd":
                state = {"momentum_buffer": [None, None]}
            steps = np.zeros(2, np.int64)
            for step in range(2):
                grads = [rng.standard_normal(n).astype(np.float32).astype(p.dtype) for n, p in zip(sizes, params)]
                getattr(lrcore._core.rules, rule).step(
                    [(values, params, grads, state, steps)], rounding_seed=17,
                    create=lambda p: np.zeros(p.shape, bf16 if p.dtype == bf16 else np.float32))
            for array in params + [a for arrays in state.values() for a in arrays]:
                digest.update(array.dtype.name.encode() + array.tobytes())
        return digest.hexdigest()


    environment_threads = lrcore.get_num_threads()
    digests = [run()]
    for threads in (1, 2, 3):
        lrcore.set_num_threads(threads)
        digests.append(run())
    print(lrcore.isa(), environment_threads, *digests)
""")


def test_stochastic_rounding_is_the_same_on_every_isa_and_thread_count():
    """LRCORE_ISA (each one this CPU runs) in fresh processes, LRCORE_NUM_THREADS 1, 2, 3 among them, and
    1, 2, 3 threads in each: the same bits everywhere."""
    digests = {}
    for k, isa in enumerate(lrcore.available_isas()):
        threads = str(1 + k % 3)
        environment = {**os.environ, "LRCORE_ISA": isa, "LRCORE_NUM_THREADS": threads}
        result = subprocess.run([sys.executable, "-c", CHUNKED_STOCHASTIC_RUN], capture_output=True, text=True,
                                env=environment, timeout=300)
        assert result.returncode == 0, result.stderr
        ran_isa, ran_threads, *runs = result.stdout.split()
        assert (ran_isa, ran_threads) == (isa, threads)
        for count, digest in zip((f"LRCORE_NUM_THREADS={threads}", 1, 2, 3), runs):
            digests[(isa, count)] = digest
    assert len(digests) == 4 * len(lrcore.available_isas())
    assert len(set(digests.values())) == 1, digests


# ------------------------------------------------------------------- 4. every ISA and thread count
#: Every storage the kernels tell apart: the fast layouts (bfloat16 with float32 state, nearest or
#: master; all-bfloat16 stochastic; float16 with a master) and the general one for the rest.
ISA_LAYOUTS = [
    Layout(BF16, BF16, F32), Layout(BF16, F32, BF16), Layout(F16, F16, F32), Layout(F16, F32, BF16),
    Layout(BF16, BF16, BF16, "stochastic"), Layout(BF16, F32, F32, "stochastic"),
    Layout(F16, F16, BF16, "stochastic"), Layout(F16, F32, F32, "stochastic"),
    Layout(BF16, BF16, F32, "master"), Layout(F16, F16, F32, "master"),
    Layout(BF16, F32, BF16, "master"), Layout(F16, F32, BF16, "master"),
]
#: Over the pool's threshold in total (so cut into chunks and run on the pool), one tensor starting one
#: element into its buffer (the vector loop's prologue), a matrix, a short vector.
ISA_SIZES = [270001, 4099, (37, 53), 5]


def _isa_values():
    """Float32 parameters (the 4099 one inside a buffer one element longer) and two steps' gradients."""
    rng = np.random.default_rng(3)
    params = [np.asarray(rng.standard_normal(size + 1 if size == 4099 else size), F32) for size in ISA_SIZES]
    grads = [[np.asarray(rng.standard_normal(p.shape) + 0.1, F32) for p in params] for _ in range(2)]
    return params, grads


ISA_VALUES = _isa_values()


def isa_inputs(rule, config, layout: Layout):
    values, grad_values = ISA_VALUES
    params = [p.astype(layout.param)[1:] if p.size == 4100 else p.astype(layout.param) for p in values]
    masters = [p.astype(F32) for p in params] if layout.mode == "master" else None
    state = fresh_state(rule, config, widened(params), layout.state)
    grads = [[g.astype(layout.grad)[1:] if g.size == 4100 else g.astype(layout.grad) for g in step]
             for step in grad_values]
    return params, masters, state, grads


def misaligned_copy(array: np.ndarray) -> np.ndarray:
    """A copy starting one element into its buffer."""
    buffer = np.empty(array.size + 1, array.dtype)
    copy = buffer[1:].reshape(array.shape)
    copy[...] = array
    return copy


def run_layout(rule, config, layout: Layout, inputs, switch: bool = True):
    params, masters, state, grads = inputs
    params = [misaligned_copy(p) if p.size == 4099 else p.copy() for p in params]
    masters = None if masters is None else [m.copy() for m in masters]
    state = copy_state(state)
    for step_grads in grads:
        native_step(rule, config, params, step_grads, state, layout, masters,
                    seed=31 if layout.mode == "stochastic" else None)
    if rule.description.has_modes and switch:
        schedule_free_switch(rule, config, params, state, masters, False)
    arrays = params + (masters or [])
    for name, value in state.items():
        if isinstance(value, list):
            arrays.extend(a for a in value if a is not None)
        elif isinstance(value, np.ndarray):
            arrays.append(value)
    return arrays


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_every_isa_and_thread_count_gives_the_same_bits(rule, config):
    """Each layout on every ISA at 1 thread, and on the best one at 2 and 3 threads: bitwise the same
    (schedule-free groups switch to eval after their steps; big switches on the pool:
    test_mode_switch_on_the_pool)."""
    isas = lrcore.available_isas()
    runs = [(isa, 1) for isa in isas] + [(isas[0], 2), (isas[0], 3)]
    previous = lrcore.isa(), lrcore.get_num_threads()
    try:
        for layout in ISA_LAYOUTS:
            inputs = isa_inputs(rule, config, layout)
            results = {}
            for isa, threads in runs:
                lrcore.set_isa(isa)
                lrcore.set_num_threads(threads)
                results[(isa, threads)] = run_layout(rule, config, layout, inputs, switch=True)
            for run, arrays in results.items():
                first = results[runs[0]]
                assert len(arrays) == len(first)
                for k, (a, b) in enumerate(zip(arrays, first)):
                    assert_same_bits(a, b, f"{layout}: array {k} on {run} against {runs[0]}")
    finally:
        lrcore.set_isa(previous[0])
        lrcore.set_num_threads(previous[1])


#: A fresh interpreter: schedule-free switches to eval of 16-bit parameters (bfloat16 and float16 with
#: float32 and bfloat16 z, nearest and with masters) over 2**21 elements, several times at 1, 2 and 3
#: threads; prints one digest per thread count (a crash is a failure too).
POOLED_SWITCH_RUN = textwrap.dedent("""
    import hashlib
    import numpy as np
    import ml_dtypes
    import lrcore

    bf16 = np.dtype(ml_dtypes.bfloat16)
    values = dict(lr=1.0, momentum=0.9, weight_decay=0.0, warmup_steps=0.0, r=0.0, weight_lr_power=2.0)
    base = np.random.default_rng(4).standard_normal(1 << 21).astype(np.float32)


    def run():
        digest = hashlib.sha256()
        for param_dtype, z_dtype, master in ((bf16, np.float32, False), (np.float16, bf16, False),
                                             (bf16, np.float32, True), (np.float16, np.float32, True)):
            for _ in range(3):
                params = [base.astype(param_dtype)]
                state = {"z": [(base[::-1] * np.float32(0.5)).astype(z_dtype)]}
                if master:
                    state["master_weight"] = [params[0].astype(np.float32)]
                group_state = np.array([1.0, -1.0, 0.0, 1.0])  # k = 1, in train mode
                lrcore._core.rules.schedule_free_sgd.switch_mode([(values, params, state, group_state)], False)
                for array in params + state["z"] + state.get("master_weight", []):
                    digest.update(array.tobytes())
        return digest.hexdigest()


    digests = []
    for threads in (1, 2, 3):
        lrcore.set_num_threads(threads)
        digests.append(run())
    print(*digests)
""")


def test_mode_switch_on_the_pool():
    """The schedule-free switch of 16-bit parameters big enough for the pool: the same bits at 1, 2 and 3
    threads (in a subprocess: the bug this caught crashes the interpreter)."""
    result = subprocess.run([sys.executable, "-c", POOLED_SWITCH_RUN], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"exit status {result.returncode}: {result.stderr[-2000:]}"
    digests = result.stdout.split()
    assert len(digests) == 3 and len(set(digests)) == 1, digests


# --------------------------------------------------------------------------------------- 5. bad input
def snapshot(value):
    """Everything a call could modify, by value: array bytes (and dtypes, shapes), list entries."""
    if isinstance(value, np.ndarray):
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [snapshot(v) for v in value])
    if isinstance(value, dict):
        return ("dict", sorted((k, snapshot(v)) for k, v in value.items()))
    return ("value", repr(value))


def bad_adam(n=9, **changes):
    """Two bfloat16 Adam tensors with float32 state (the first one valid), then `changes` applied to the
    second's entries: param, grad, exp_avg, exp_avg_sq, master (None: no master list)."""
    adam = next(rule for rule in RULES if rule.name == "adam")
    rng = np.random.default_rng(1)
    second = dict(param=rng.standard_normal(n).astype(BF16), grad=rng.standard_normal(n).astype(BF16),
                  exp_avg=np.full(n, 0.5, F32), exp_avg_sq=np.full(n, 0.25, F32), master=None)
    second.update(changes)
    params = [rng.standard_normal(n).astype(BF16), second["param"]]
    masters = [None, second["master"]]
    state = {"exp_avg": [np.full(n, 0.5, F32), second["exp_avg"]],
             "exp_avg_sq": [np.full(n, 0.25, F32), second["exp_avg_sq"]], "max_exp_avg_sq": None}
    if "master" in changes:
        state["master_weight"] = masters
    group = (adam.native_values(dict(lr=0.01)), params, [rng.standard_normal(n).astype(BF16), second["grad"]],
             state, np.array([4, 7], np.int64))
    return adam, [group]


def bad_sgd(params, grads, steps=None):
    return SGD, [(SGD.native_values(dict(lr=0.1, momentum=0.9)), params, grads,
                  {"momentum_buffer": [None] * len(params)}, steps)]


def _overlapping_master():
    memory = np.zeros(9 * 4, np.uint8)
    return bad_adam(param=memory[: 9 * 2].view(BF16), master=memory.view(F32))


def _bad_cases():
    n = 9
    rng = np.random.default_rng(2)
    table = rng.standard_normal((6, 3)).astype(BF16)
    rowwise = next(rule for rule in ROW_RULES if rule.name == "rowwise_adagrad")
    rprop = next(rule for rule in RULES if rule.name == "rprop")
    return {
        "float16 grad for a bfloat16 param": (bad_adam(grad=np.ones(n, F16)), {}, TypeError,
                                              r"grads\[1\] has dtype float16 but params\[1\] has dtype bfloat16"),
        "float64 grad for a bfloat16 param": (bad_adam(grad=np.ones(n)), {}, TypeError,
                                              r"grads\[1\] has dtype float64"),
        "bfloat16 grad for a float32 param": (bad_adam(param=np.ones(n, F32), grad=np.ones(n, BF16)), {},
                                              TypeError, r"grads\[1\] has dtype bfloat16 but params\[1\] has "
                                                         r"dtype float32"),
        "state dtypes mixed within a param": (bad_adam(exp_avg_sq=np.zeros(n, BF16)), {}, TypeError,
                                              r"exp_avg_sqs\[1\] has dtype bfloat16 but exp_avgs\[1\] has dtype "
                                              r"float32"),
        "float16 state": (bad_adam(exp_avg=np.zeros(n, F16), exp_avg_sq=np.zeros(n, F16)), {}, TypeError,
                          r"exp_avgs\[1\] has dtype float16"),
        "master for a float32 param": (bad_adam(param=np.ones(n, F32), grad=np.ones(n, F32),
                                                master=np.ones(n, F32)), {}, TypeError,
                                       r"master_weights\[1\] is given but params\[1\] has dtype float32"),
        "master for a float64 param": (bad_adam(param=np.ones(n), grad=np.ones(n), exp_avg=np.zeros(n),
                                                exp_avg_sq=np.zeros(n), master=np.ones(n, F32)), {}, TypeError,
                                       r"master_weights\[1\] is given but params\[1\] has dtype float64"),
        "float64 master": (bad_adam(master=np.ones(n)), {}, TypeError, r"master_weights\[1\] must have dtype float32, got float64"),
        "bfloat16 master": (bad_adam(master=np.ones(n, BF16)), {}, TypeError,
                            r"master_weights\[1\] must have dtype float32"),
        "master of the wrong shape": (bad_adam(master=np.ones(n + 1, F32)), {}, ValueError,
                                      r"master_weights\[1\] has shape \(10,\) but params\[1\] has shape \(9,\)"),
        "read-only master": (bad_adam(master=np.ones(n, F32)[...].view()), {"read_only_master": True}, ValueError,
                             r"master_weights\[1\] is read-only"),
        "strided master": (bad_adam(master=np.ones(2 * n, F32)[::2]), {}, ValueError,
                           r"master_weights\[1\] must be C-contiguous"),
        "stochastic rounding with a master": (bad_adam(master=np.ones(n, F32)), {"rounding_seed": 3}, ValueError,
                                              r"stochastic rounding and master weights exclude each other: "
                                              r"params\[1\]"),
        "stochastic rounding without steps": (bad_sgd([np.ones(n, F32), np.ones(n, BF16)],
                                                      [np.ones(n, F32), np.ones(n, BF16)]),
                                              {"rounding_seed": 3}, TypeError,
                                              r"steps must be the int64 step counters"),
        "a bool seed": (bad_adam(), {"rounding_seed": True}, TypeError, r"seed must be an int, got bool"),
        "a float seed": (bad_adam(), {"rounding_seed": 1.0}, TypeError, r"seed must be an int, got float"),
        "SparseRows gradient for a bfloat16 param": (
            bad_sgd([np.ones((6, 3), F32), table],
                    [np.ones((6, 3), F32), lrcore.SparseRows(np.array([1, 4]), np.ones((2, 3), F32))]),
            {}, TypeError, r"params\[1\] is bfloat16: row-sparse gradients \(SparseRows\) update float32 or float64"),
        "rowwise_adagrad with a bfloat16 param": (
            (rowwise, [(rowwise.native_values(dict(lr=0.1)), [np.ones((6, 3), F32), table],
                        [np.ones((6, 3), F32), np.ones((6, 3), BF16)], {"sum": [np.zeros(6, F32), np.zeros(6, F32)]},
                        None)]),
            {}, TypeError, r"params\[1\] is bfloat16: rowwise_adagrad updates float32 or float64 parameters only"),
        "master overlapping its param": (_overlapping_master(), {}, ValueError,
                                         r"master_weights\[1\] and params\[1\] share memory"),
        "master overlapping a state array": (
            (lambda s: bad_adam(exp_avg=s, master=s))(np.zeros(n, F32)), {}, ValueError,
            r"exp_avgs\[1\] and master_weights\[1\] share memory"),
        "allocator of another state dtype": (
            (rprop, [(rprop.native_values(dict(lr=0.01)), [np.ones(n, BF16), np.ones(n, BF16)],
                      [np.ones(n, BF16), np.ones(n, BF16)], {"prev": [np.zeros(n, F32), np.zeros(n, F32)],
                                                             "step_size": [None, None]}, np.zeros(2, np.int64))]),
            {"create": allocator(BF16)}, TypeError,
            r"the allocator made step_sizes\[0\] of dtype bfloat16 for a parameter whose state is float32"),
    }


BAD_CASES = _bad_cases()


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_names_the_argument_and_changes_nothing(case):
    (rule, groups), options, error, message = BAD_CASES[case]
    options = dict(options)
    if options.pop("read_only_master", False):
        groups[0][3]["master_weight"][1].flags.writeable = False
    counters = np.array([11, 2], np.int64)
    grad_norm = np.array([0.5, 3.0])
    before = snapshot((groups, counters, grad_norm))
    for extra in ({}, {"skip_nonfinite": True, "max_grad_norm": 1.0}):
        with pytest.raises(error, match=message):
            rule.description.native.step(groups, counters=counters, grad_norm=grad_norm, **options, **extra)
        assert snapshot((groups, counters, grad_norm)) == before, f"{case}: a failed step modified its arguments"


def switch_group(params, masters):
    rule = next(rule for rule in RULES if rule.name == "schedule_free_sgd")
    group = (rule.native_values(dict(lr=0.05)), params,
             {"z": [np.zeros(p.shape, F32) for p in params], "master_weight": masters},
             np.array([3.0, 0.05, 1.0, 1.0]))  # in train mode
    return rule, group


def test_bad_mode_switch_changes_nothing():
    """A schedule-free switch with a bad master writes nothing."""
    for masters, error, message in (([None, np.ones(9)], TypeError, r"master_weights\[1\] must have dtype float32, got float64"),
                                    ([None, np.ones(10, F32)], ValueError, r"master_weights\[1\] has shape"),
                                    ([None, np.ones(9, BF16)], TypeError, r"master_weights\[1\] must have dtype "
                                                                          r"float32")):
        rule, group = switch_group([np.ones(9, BF16), np.ones(9, BF16)], masters)
        before = snapshot(group)
        with pytest.raises(error, match=message):
            rule.description.native.switch_mode([group], False)
        assert snapshot(group) == before


def test_mode_switch_refuses_a_master_for_a_float32_param():
    rule, group = switch_group([np.ones(9, F32), np.ones(9, BF16)], [np.ones(9, F32), None])
    before = snapshot(group)
    with pytest.raises(TypeError, match=r"master_weights\[0\] is given but params\[0\] has dtype float32"):
        rule.description.native.switch_mode([group], False)
    assert snapshot(group) == before


# ------------------------------------------------------------- 6. whole-gradient passes on 16-bit grads

def mixed_call(rule, config, param_dtype, grad_as, masters_too: bool, grads_from=None):
    """A float32 param and two 16-bit ones (one with a master when asked) in one call; the 16-bit params'
    gradients as `grad_as` (their dtype or float32), from the same values."""
    rng = np.random.default_rng(6)
    shapes = [(33,), (1031,), (4, 9)]
    params = [np.asarray(rng.standard_normal(shapes[0]), F32)] + [
        np.asarray(rng.standard_normal(s), F32).astype(param_dtype) for s in shapes[1:]]
    masters = [None, params[1].astype(F32) if masters_too else None, None]
    state = fresh_state(rule, config, widened(params), F32)
    grads = grads_from if grads_from is not None else [
        np.asarray(rng.standard_normal(s) * 3, F32).astype(param_dtype if k else F32) for k, s in enumerate(shapes)]
    grads = [grads[0]] + [g.astype(grad_as) for g in grads[1:]]
    return params, grads, state, masters


@pytest.mark.parametrize("param_dtype", HALF_DTYPES, ids=HALF_IDS)
@pytest.mark.parametrize(("rule", "config"), ONE_CONFIG_EACH, ids=[rule.name for rule, _ in ONE_CONFIG_EACH])
def test_clipping_and_skipping_see_the_widened_gradients(rule, config, param_dtype):
    """max_grad_norm (2-norm, 1-norm, max-norm) and skip_nonfinite over 16-bit gradients: the same step,
    norm and counters as with their float32 values."""
    base = mixed_call(rule, config, param_dtype, param_dtype, True)[1]
    for options in (dict(max_grad_norm=0.5), dict(max_grad_norm=2.0, norm_type=1.0),
                    dict(max_grad_norm=0.25, norm_type=float("inf"), skip_nonfinite=True)):
        results = []
        for grad_as in (param_dtype, F32):
            params, grads, state, masters = mixed_call(rule, config, param_dtype, grad_as, True, base)
            counters = np.array([3, 1], np.int64)
            grad_norm = np.zeros(2)
            group = group_of(rule, config, params, grads, state, masters)
            assert rule.description.native.step([group], counters=counters, grad_norm=grad_norm,
                                                 create=allocator(F32), **options) is True
            norm = lrcore.gradients.global_norm(widened(grads), options.get("norm_type", 2.0))
            assert grad_norm[0] == norm
            results.append(snapshot((params, state, masters, counters, grad_norm)))
        assert results[0] == results[1], options

    # A non-finite 16-bit gradient: the step is skipped (nothing written, the skip counted), with or
    # without clipping.
    for bad in (np.inf, -np.inf, np.nan):
        for options in (dict(skip_nonfinite=True), dict(skip_nonfinite=True, max_grad_norm=1.0)):
            params, grads, state, masters = mixed_call(rule, config, param_dtype, param_dtype, True, base)
            grads[2] = grads[2].copy()
            grads[2].reshape(-1)[17] = bad
            counters = np.array([3, 1], np.int64)
            before = snapshot((params, state, masters))
            group = group_of(rule, config, params, grads, state, masters)
            assert rule.description.native.step([group], counters=counters, create=allocator(F32),
                                                **options) is False
            assert snapshot((params, state, masters)) == before
            assert counters.tolist() == [3, 2]
