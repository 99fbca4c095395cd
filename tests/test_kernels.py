"""The compiled kernels against the plain numpy reference, across ISAs and thread counts.

lrcore rounds every operation exactly as the numpy reference does (one
operation at a time, no fused multiply-add), so agreement is bitwise, on every
kernel variant and for any number of threads.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import lrcore
from lrcore import functional, reference
from rules import DTYPES, RULE_CASES, RULE_IDS, make_gradients

SIZES = [1, 7, 17, 31, 1023, 4097, 100003]


def run_functional(module, rule, config, shapes, dtype, steps, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    state = rule.new_state(params, config)
    for grads in make_gradients(rng, shapes, dtype, steps):
        rule.functional_call(module, params, grads, state, config)
    return params, state


def assert_same_bits(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8)), f"max |diff| = {np.max(np.abs(a - b))}"


def assert_same_state(state_a, state_b):
    for name, value in state_a.items():
        other = state_b[name]
        if isinstance(value, np.ndarray) and name == "steps":
            assert np.array_equal(value, other)
        elif isinstance(value, list):
            for x, y in zip(value, other):
                if x is None or y is None:
                    assert x is None and y is None
                else:
                    assert_same_bits(x, y)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_bitwise_equal_to_numpy_reference(each_isa, rule, config, dtype):
    shapes = [(size,) for size in SIZES] + [(3, 5, 7)]
    ours, our_state = run_functional(functional, rule, config, shapes, dtype, steps=12)
    theirs, their_state = run_functional(reference, rule, config, shapes, dtype, steps=12)
    for a, b in zip(ours, theirs):
        assert_same_bits(a, b)
    assert_same_state(our_state, their_state)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_every_isa_gives_the_same_bits(rule, config):
    previous = lrcore.isa()
    results = {}
    try:
        for isa in lrcore.available_isas():
            lrcore.set_isa(isa)
            results[isa] = run_functional(functional, rule, config, [(4097,), (33,)], np.float32, steps=5)[0]
    finally:
        lrcore.set_isa(previous)
    baseline = results["baseline"]
    for isa, params in results.items():
        for a, b in zip(params, baseline):
            assert_same_bits(a, b)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_thread_count_does_not_change_results(rule, config):
    shapes = [(300001,), (70000,), (5,)]
    previous = lrcore.get_num_threads()
    try:
        lrcore.set_num_threads(1)
        single, _ = run_functional(functional, rule, config, shapes, np.float32, steps=3)
        lrcore.set_num_threads(2)
        double, _ = run_functional(functional, rule, config, shapes, np.float32, steps=3)
        lrcore.set_num_threads(3)  # more threads than cores still works
        triple, _ = run_functional(functional, rule, config, shapes, np.float32, steps=3)
    finally:
        lrcore.set_num_threads(previous)
    for a, b, c in zip(single, double, triple):
        assert_same_bits(a, b)
        assert_same_bits(a, c)


def test_many_small_arrays_in_one_call():
    rng = np.random.default_rng(3)
    shapes = [(int(n),) for n in rng.integers(1, 300, size=500)]
    rule, config = next((r, c) for r, c in RULE_CASES if r.name == "adam" and c.get("amsgrad"))
    ours, _ = run_functional(functional, rule, config, shapes, np.float64, steps=3)
    theirs, _ = run_functional(reference, rule, config, shapes, np.float64, steps=3)
    for a, b in zip(ours, theirs):
        assert_same_bits(a, b)


def test_mixed_dtypes_in_one_call():
    rng = np.random.default_rng(4)
    params = [rng.standard_normal(10).astype(np.float32), rng.standard_normal(10)]
    expected = [p.copy() for p in params]
    grads = [np.ones(10, np.float32), np.ones(10)]
    steps = np.zeros(2, np.int64)
    functional.adam(params, grads, [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params], steps)
    reference.adam(expected, grads, [np.zeros_like(p) for p in params], [np.zeros_like(p) for p in params],
                   np.zeros(2, np.int64))
    for a, b in zip(params, expected):
        assert_same_bits(a, b)
    assert steps.tolist() == [1, 1]


def test_isa_controls():
    available = lrcore.available_isas()
    assert available[-1] == "baseline"
    assert lrcore.isa() in available
    assert set(available) <= set(lrcore.compiled_isas())
    with pytest.raises(ValueError, match="unknown kernel variant 'sse9'"):
        lrcore.set_isa("sse9")
    assert lrcore.isa() in available


def test_thread_controls():
    previous = lrcore.get_num_threads()
    assert previous >= 1
    with pytest.raises(ValueError, match="count must be >= 1"):
        lrcore.set_num_threads(0)
    with pytest.raises(TypeError):
        lrcore.set_num_threads(1.5)
    assert lrcore.get_num_threads() == previous


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                          timeout=120)


@pytest.mark.parametrize("isa", lrcore.available_isas())
def test_forced_isa_is_the_one_that_runs(isa):
    # The forced variant is the one that runs: its table's name is reported
    # by the dispatcher, and the step results are those of that variant.
    code = (
        "import numpy as np, lrcore\n"
        "p = np.ones(37, np.float32)\n"
        "lrcore.functional.sgd([p], [np.ones(37, np.float32)], lr=0.5)\n"
        "assert np.all(p == 0.5)\n"
        "print(lrcore.isa())\n"
    )
    result = _python(code, LRCORE_ISA=isa)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == isa


def test_unknown_forced_isa_fails_at_import():
    result = _python("import lrcore", LRCORE_ISA="avx9000")
    assert result.returncode != 0
    assert "LRCORE_ISA" in result.stderr and "avx9000" in result.stderr


def test_thread_count_from_environment():
    result = _python("import lrcore; print(lrcore.get_num_threads())", LRCORE_NUM_THREADS="3")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"
    bad = _python("import lrcore; lrcore.get_num_threads()", LRCORE_NUM_THREADS="many")
    assert bad.returncode != 0 and "LRCORE_NUM_THREADS" in bad.stderr


def test_flush_denormals_toggle_and_effect():
    assert lrcore.get_flush_denormals() is False
    tiny = np.float32(1e-39)  # a float32 denormal
    try:
        lrcore.set_flush_denormals(True)
        assert lrcore.get_flush_denormals() is True
        p = np.full(16, tiny, np.float32)
        lrcore.functional.sgd([p], [np.zeros(16, np.float32)], lr=0.1)
        assert np.all(p == 0)  # denormal input read as zero
    finally:
        lrcore.set_flush_denormals(False)
    p = np.full(16, tiny, np.float32)
    lrcore.functional.sgd([p], [np.zeros(16, np.float32)], lr=0.1)
    assert np.all(p == tiny)
    # The caller's floating-point mode is restored: numpy still sees denormals.
    assert np.float32(1e-38) / np.float32(100) != 0
