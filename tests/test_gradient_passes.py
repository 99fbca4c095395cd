"""The whole-gradient passes are bitwise identical on every instruction set
and thread count, agree with a float64 numpy oracle, and all_finite finds a
NaN/Inf before, inside and after every ISA's aligned vector body."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore

ISAS = lrcore.available_isas()
NORM_TYPES = [2.0, 1.0, math.inf, 3.0, 0.5, 4.0, 7.0, 2.5]
# Multiples of no vector width; one spans several 64 KiB chunks.
SIZES = [1, 3, 17, 31, 33, 127, 4099, 70001, 300007]


@pytest.fixture(autouse=True)
def _restore_runtime():
    isa, threads = lrcore.isa(), lrcore.get_num_threads()
    yield
    lrcore.set_isa(isa)
    lrcore.set_num_threads(threads)


def _grads(dtype, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for k, size in enumerate(SIZES):
        buffer = (rng.standard_normal(size + 4) * 3).astype(dtype)
        out.append(buffer[k % 4: k % 4 + size])  # every start alignment
    return out


def _oracle(grads, norm_type):
    values = np.abs(np.concatenate([g.astype(np.float64) for g in grads]))
    if math.isinf(norm_type):
        return float(values.max())
    return float(np.sum(values ** norm_type) ** (1.0 / norm_type))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", NORM_TYPES)
def test_norm_bitwise_across_isas_and_threads(dtype, norm_type):
    grads = _grads(dtype)
    results = {}
    for isa in ISAS:
        lrcore.set_isa(isa)
        for threads in (1, 2, 3):
            lrcore.set_num_threads(threads)
            results[(isa, threads)] = lrcore.global_norm(grads, norm_type)
    bits = {key: np.float64(v).tobytes() for key, v in results.items()}
    assert len(set(bits.values())) == 1, results
    expected = _oracle(grads, norm_type)
    value = next(iter(results.values()))
    assert value == pytest.approx(expected, rel=1e-12, abs=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norm_of_many_small_arrays_bitwise(dtype):
    rng = np.random.default_rng(5)
    grads = [rng.standard_normal(int(n)).astype(dtype) for n in rng.integers(1, 700, 3000)]
    for norm_type in (2.0, 1.0, math.inf):
        seen = set()
        for isa in ISAS:
            lrcore.set_isa(isa)
            for threads in (1, 2, 3):
                lrcore.set_num_threads(threads)
                seen.add(np.float64(lrcore.global_norm(grads, norm_type)).tobytes())
        assert len(seen) == 1
        assert np.frombuffer(seen.pop(), np.float64)[0] == pytest.approx(
            _oracle(grads, norm_type), rel=1e-12, abs=0)


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_all_finite_and_max_abs_find_non_finite_everywhere(isa, dtype, bad):
    lrcore.set_isa(isa)
    chunk = 65536 // np.dtype(dtype).itemsize
    size = chunk + 150
    buffer = np.full(size + 4, 0.25, dtype)
    # prologue (before the first 64-byte boundary), vector body, end of a
    # chunk, start of the next chunk, the tail
    positions = list(range(0, 40)) + [100, 1001, chunk // 2] + list(range(chunk - 40, chunk + 40)) + \
        list(range(size - 40, size))
    for offset in range(4):
        g = buffer[offset: offset + size]
        assert lrcore.all_finite([g])
        for at in positions:
            g[at] = bad
            finite = lrcore.all_finite([g])
            top = lrcore.global_norm([g], math.inf)
            g[at] = 0.25
            assert not finite, (offset, at)
            assert (math.isnan(top) if math.isnan(bad) else top == math.inf), (offset, at)


def test_max_abs_of_largest_values_is_exact():
    g = np.array([0.0, -0.0, -np.finfo(np.float32).max, 1e-45], np.float32)
    for isa in ISAS:
        lrcore.set_isa(isa)
        assert lrcore.global_norm([g], math.inf) == float(np.finfo(np.float32).max)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_scaling_identical_across_isas(dtype):
    outputs = set()
    for isa in ISAS:
        for threads in (1, 2):
            lrcore.set_isa(isa)
            lrcore.set_num_threads(threads)
            grads = [g.copy() for g in _grads(dtype, seed=3)]
            lrcore.clip_grad_norm(grads, 1.0)
            outputs.add(b"".join(g.tobytes() for g in grads))
    assert len(outputs) == 1
    grads = _grads(dtype, seed=3)
    factor = dtype(1.0 / (_oracle(grads, 2.0) + 1e-6))
    clipped = np.frombuffer(outputs.pop(), dtype)
    np.testing.assert_allclose(clipped, np.concatenate(grads) * factor, rtol=2e-7 if dtype == np.float32 else 1e-15)


def test_gradient_pass_roofs_touch_every_element():
    from lrcore import _core

    a = np.zeros(100003, np.float32)
    b = np.ones(70001, np.float64)
    _core.bench.roof_read([a, b])
    _core.bench.roof_update([a[1:], b], 2.0)
    assert a[0] == 0 and np.all(a[1:] == 2) and np.all(b == 3)
    read_only = np.zeros(10)
    read_only.flags.writeable = False
    _core.bench.roof_read([read_only])
    with pytest.raises(ValueError):
        _core.bench.roof_update([read_only])
    with pytest.raises(ValueError):
        _core.bench.roof_update([b, b[5:]])
    with pytest.raises(TypeError):
        _core.bench.roof_read([np.zeros(3, np.int32)])


@pytest.mark.parametrize("norm_type", [0.5, 2.5, 3.0, 7.0])
def test_norm_of_special_and_extreme_values(norm_type):
    """Zeros, float64 subnormals, huge and tiny values (powers that overflow or underflow a double)
    against numpy's float64 pow, the same bits on every ISA."""
    values = np.array([0.0, -0.0, 5e-324, -2.5e-310, 1e-300, 1e-160, 3e-8, 0.7, 1.0, 1.5, 123.0, 1e100, 1e200,
                       -7.5e300], np.float64)
    grads = [values, values[::-1].copy(), np.full(100, 0.3)]
    results = set()
    for isa in ISAS:
        lrcore.set_isa(isa)
        results.add(np.float64(lrcore.global_norm(grads, norm_type)).tobytes())
    assert len(results) == 1
    with np.errstate(over="ignore"):
        expected = _oracle(grads, norm_type)
    value = lrcore.global_norm(grads, norm_type)
    if math.isinf(expected):
        assert math.isinf(value)
    else:
        assert value == pytest.approx(expected, rel=1e-12, abs=0)
    for special, result in ((np.inf, math.inf), (np.nan, None)):
        with_special = [np.array([1.0, special, 2.0])]
        norm = lrcore.global_norm(with_special, norm_type)
        assert (math.isinf(norm) and norm > 0) if result else math.isnan(norm)
