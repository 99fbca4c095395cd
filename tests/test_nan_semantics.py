"""NaN and infinities through every update rule: the kernels must do what numpy does.

Each case puts NaN, +Inf and -Inf into one of the arrays (the gradient, the
parameter or a state array) at positions that fall in the scalar prologue
and tail as well as in the vector body (small sizes, several offsets into a
larger buffer so the arrays start at different alignments), runs one step
through lrcore.functional and lrcore.reference on copies, and compares every
array: NaN in exactly the same elements, and every other element (infinities
and signed zeros included) bitwise equal.

NaN payloads are not compared there. When two different NaNs meet in one
addition or multiplication, x86 returns the first operand's, but which
operand is "first" is up to the compiler: it may swap the operands of a
commutative operation, both in numpy's loops and in the kernels, so neither
side's choice is stable. Where only one NaN is involved its bits do carry
through, and the AMSGrad maximum, which picks between two NaNs by rule, is
checked bitwise (payloads included) by its own test below and in C++.
"""

from __future__ import annotations

import numpy as np
import pytest

from lrcore import functional, reference
from rules import DTYPES, RULE_CASES, RULE_IDS

SIZES = [1, 7, 17, 100]
OFFSETS = [0, 1, 3]


def nan_with_payload(dtype):
    """A negative quiet NaN with a payload: a NaN numpy never makes by itself, so its bits show where it went."""
    if np.dtype(dtype) == np.float32:
        return np.array([0xFFC01234], np.uint32).view(np.float32)[0]
    return np.array([0xFFF8000000001234], np.uint64).view(np.float64)[0]


def hostile_values(dtype):
    return [dtype(np.nan), dtype(np.inf), dtype(-np.inf), nan_with_payload(dtype)]


def place_hostile(array, rotation):
    """Writes the hostile values at the ends and the middle of `array`, cycling which value goes where."""
    values = hostile_values(array.dtype.type)
    n = array.size
    positions = sorted({0, 1, 2, n // 2, n // 2 + 1, n - 2, n - 1} & set(range(n)))
    for k, position in enumerate(positions):
        array[position] = values[(k + rotation) % len(values)]


def view_at(buffer_size, offset, size, values):
    """`values` copied into a buffer at element `offset`: a contiguous array with a different alignment."""
    buffer = np.zeros(buffer_size, values.dtype)
    array = buffer[offset:offset + size]
    array[...] = values
    return array


def bits(a):
    return a.view(np.uint32 if a.dtype == np.float32 else np.uint64)


def assert_same_bits(ours, theirs, what):
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    if not np.array_equal(bits(ours), bits(theirs)):
        where = np.flatnonzero(bits(ours) != bits(theirs))
        pytest.fail(f"{what}: differs at {where.tolist()}: ours {ours[where]} ({[hex(b) for b in bits(ours)[where]]}), "
                    f"numpy {theirs[where]} ({[hex(b) for b in bits(theirs)[where]]})")


def state_arrays(rule, config, size, dtype, rng, initialized_buffers):
    """State for one parameter, in the functional layout, with well-behaved (positive) values."""
    state = rule.new_state([np.zeros(size, dtype)], config)
    scalars = {s.list_name for s in rule.description.scalars}
    for name, value in state.items():
        if name in scalars:  # a per-tensor number (0-d float64), as after a few steps
            value[0] = np.array(rng.uniform(0.05, 0.9))
        elif isinstance(value, list):
            if value[0] is None and initialized_buffers:
                value[0] = rng.uniform(0.1, 2.0, size).astype(dtype)
            elif value[0] is not None:
                value[0] = rng.uniform(0.1, 2.0, size).astype(dtype)
    if "steps" in state:
        state["steps"][:] = 3
    return state


def copy_state(state, buffer_size, offset):
    copied = {}
    for name, value in state.items():
        if isinstance(value, list):
            copied[name] = [None if x is None else x.copy() if x.shape == () else view_at(buffer_size, offset, x.size, x)
                            for x in value]
        elif isinstance(value, np.ndarray):
            copied[name] = value.copy()
        else:
            copied[name] = value
    return copied


def hostile_cases(rule, config, dtype):
    """(size, offset, target, rotation, initialized buffers) for every case of one rule configuration."""
    probe = state_arrays(rule, config, 1, dtype, np.random.default_rng(0), initialized_buffers=True)
    state_names = [name for name, value in probe.items()
                   if isinstance(value, list) and value[0] is not None and value[0].shape != ()]
    first_step_buffers = any(isinstance(v, list) and v[0] is None
                             for v in rule.new_state([np.zeros(1, dtype)], config).values())
    for size in SIZES:
        for offset in OFFSETS:
            for rotation in range(len(hostile_values(dtype))):
                for target in ["grad", "param"] + state_names:
                    yield size, offset, target, rotation, True
                if first_step_buffers:  # a momentum buffer created from the (hostile) gradient
                    for target in ("grad", "param"):
                        yield size, offset, target, rotation, False


def assert_same_values(ours, theirs, what):
    """NaN in the same places, everything else bitwise equal (see the module docstring for why not NaN bits)."""
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape
    nan = np.isnan(ours)
    if not np.array_equal(nan, np.isnan(theirs)):
        where = np.flatnonzero(nan != np.isnan(theirs))
        pytest.fail(f"{what}: NaN differs at {where.tolist()}: ours {ours[where]}, numpy {theirs[where]}")
    assert_same_bits(np.where(nan, 0, ours), np.where(nan, 0, theirs), what)


def run_case(rule, config, dtype, size, offset, target, rotation, initialized_buffers):
    rng = np.random.default_rng(size * 100 + offset * 10 + rotation)
    param = rng.standard_normal(size).astype(dtype)
    grad = rng.standard_normal(size).astype(dtype)
    state = state_arrays(rule, config, size, dtype, rng, initialized_buffers)
    if target == "param":
        place_hostile(param, rotation)
    elif target == "grad":
        place_hostile(grad, rotation)
    else:
        place_hostile(state[target][0], rotation)
    buffer_size = offset + size + 16
    results = []
    for module in (functional, reference):
        params = [view_at(buffer_size, offset, size, param)]
        grads = [view_at(buffer_size, offset, size, grad)]
        copied = copy_state(state, buffer_size, offset)
        with np.errstate(all="ignore"):  # the reference's numpy warns about the invalid values on purpose
            rule.functional_call(module, params, grads, copied, config)
        results.append((params, copied))
    (ours, our_state), (theirs, their_state) = results
    what = f"size {size} offset {offset} hostile {target} rotation {rotation}"
    assert_same_values(ours[0], theirs[0], what + ": param")
    for name, value in our_state.items():
        if isinstance(value, list):
            if value[0] is None or their_state[name][0] is None:
                assert value[0] is None and their_state[name][0] is None
            else:
                assert_same_values(value[0], their_state[name][0], f"{what}: {name}")
        elif isinstance(value, np.ndarray):
            assert np.array_equal(value, their_state[name])


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_hostile_values_match_numpy_bitwise(each_isa, rule, config, dtype):
    cases = list(hostile_cases(rule, config, dtype))
    assert len(cases) >= len(SIZES) * len(OFFSETS) * 4 * 2
    for case in cases:
        run_case(rule, config, dtype, *case)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_amsgrad_keeps_a_nan_already_in_the_running_maximum(each_isa, dtype):
    # The x86 max instructions return their second operand when either is NaN,
    # which would replace a NaN stored in max_exp_avg_sq by the (finite) new
    # second moment. np.maximum, the reference and torch keep the NaN; with
    # NaN in both, np.maximum returns the first operand's, bits included.
    size = 67
    first = nan_with_payload(dtype)
    second = dtype(np.nan)
    max_exp_avg_sq = np.full(size, 4.0, dtype)
    exp_avg_sq = np.ones(size, dtype)
    max_exp_avg_sq[::3] = first
    exp_avg_sq[1::4] = second
    exp_avg_sq[::5] = second
    expected_max = np.maximum(max_exp_avg_sq, dtype(0.999) * exp_avg_sq)
    param = np.ones(size, dtype)
    steps = np.zeros(1, np.int64)
    functional.adam([param], [np.zeros(size, dtype)], [np.zeros(size, dtype)], [exp_avg_sq], steps,
                    [max_exp_avg_sq], amsgrad=True)
    assert_same_bits(max_exp_avg_sq, expected_max, "max_exp_avg_sq")
    assert np.array_equal(np.isnan(param), np.isnan(expected_max))
    assert np.isnan(max_exp_avg_sq).sum() > size // 3  # the test does put NaN where it matters



@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_maximize_negates_a_nan_gradient_like_numpy(each_isa, dtype):
    # maximize uses -grad. Negation flips a NaN's sign bit (numpy's and
    # torch's unary minus); multiplying by -1 would leave it. With one NaN
    # source its bits are well defined, so they are compared exactly.
    size = 37
    grad = np.ones(size, dtype)
    grad[::4] = nan_with_payload(dtype)
    grad[1::4] = dtype(np.nan)
    ours, theirs = np.ones(size, dtype), np.ones(size, dtype)
    functional.sgd([ours], [grad], lr=0.5, maximize=True)
    with np.errstate(all="ignore"):
        reference.sgd([theirs], [grad], lr=0.5, maximize=True)
    assert_same_bits(ours, theirs, "param")
    assert np.signbit(ours[1]) and not np.signbit(ours[0])  # both NaN signs were flipped
