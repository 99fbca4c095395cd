"""Non-finite gradients (all_finite, the optimizers' skip_nonfinite guard) and global-norm clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import gradients
from rules import RULE_CASES, RULE_IDS


@pytest.fixture
def threads():
    """Restores the thread count a test changes."""
    previous = lrcore.get_num_threads()
    yield lrcore.set_num_threads
    lrcore.set_num_threads(previous)


def big_gradients(dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    # Odd sizes, several chunks each, and one empty array: chunk boundaries fall everywhere.
    return [rng.standard_normal(n).astype(dtype) for n in (1, 17, 100_003, 0, 70_001, 300_007)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (2, 0), (2, 50_000), (5, 300_006)])
def test_all_finite_finds_any_non_finite_element(dtype, bad, where):
    grads = big_gradients(dtype)
    assert gradients.all_finite(grads)
    grads[where[0]][where[1]] = bad
    assert not gradients.all_finite(grads)
    assert not gradients.all_finite([None, grads[where[0]]])


def test_all_finite_edge_values():
    f32 = np.finfo(np.float32)
    finite = np.array([f32.max, -f32.max, f32.tiny, f32.smallest_subnormal, 0.0, -0.0], np.float32)
    assert gradients.all_finite([finite, finite.astype(np.float64)])
    assert gradients.all_finite([]) and gradients.all_finite([None]) and gradients.all_finite([np.zeros(0)])
    # NaN payloads and signs: every exponent-all-ones pattern is non-finite.
    for bits in (0x7F800001, 0xFFC00000, 0x7FFFFFFF, 0xFF800000):
        assert not gradients.all_finite([np.array([bits], np.uint32).view(np.float32)])


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_skip_nonfinite_skips_the_whole_step(rule, config):
    params = [np.linspace(-1, 1, 40, dtype=np.float32), np.linspace(0, 1, 6).reshape(2, 3)]
    opt = rule.optimizer(params, **config, skip_nonfinite=True)
    assert opt.skip_nonfinite and opt.skipped_steps == 0
    good = [np.full_like(p, 0.25) for p in params]
    assert opt.step(good) is True
    before = opt.state_dict()
    params_before = [p.copy() for p in params]
    last = list(opt.last_hyperparameters)
    for bad_value in (np.nan, np.inf):
        bad = [g.copy() for g in good]
        bad[1][1, 2] = bad_value
        assert opt.step(bad) is False
    assert opt.skipped_steps == 2 and opt.step_count == 1 and opt.last_hyperparameters == last
    for a, b in zip(params, params_before):
        assert np.array_equal(a, b)
    after = opt.state_dict()
    for key, entry in before["state"].items():
        for name, value in entry.items():
            other = after["state"][key][name]
            assert np.array_equal(value, other) if isinstance(value, np.ndarray) else value == other
    assert opt.step(good) is True and opt.step_count == 2
    # The skipped steps did not change the outcome: same as an optimizer that never saw them.
    reference_params = [np.linspace(-1, 1, 40, dtype=np.float32), np.linspace(0, 1, 6).reshape(2, 3)]
    reference = rule.optimizer(reference_params, **config)
    reference.step(good)
    reference.step(good)
    for a, b in zip(params, reference_params):
        assert np.array_equal(a, b)


def test_without_the_guard_non_finite_gradients_are_applied():
    w = np.zeros(3, np.float32)
    opt = lrcore.SGD([w], lr=0.1)
    assert opt.skip_nonfinite is False
    assert opt.step([np.array([np.nan, 0, 0], np.float32)]) is True
    assert np.isnan(w[0]) and opt.skipped_steps == 0


def test_guard_checks_arguments_before_finiteness():
    w = np.zeros(3, np.float32)
    opt = lrcore.Adam([w], skip_nonfinite=True)
    with pytest.raises(ValueError, match=r"grads\[0\] has shape"):
        opt.step([np.full(4, np.nan, np.float32)])
    assert opt.skipped_steps == 0


# --------------------------------------------------------------- clipping --
def torch_clip(grads, max_norm, norm_type):
    torch = pytest.importorskip("torch")
    tensors = [torch.from_numpy(g.copy()) for g in grads]
    for t in tensors:
        t.grad = t.clone()
    total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=norm_type)
    return float(total), [t.grad.numpy() for t in tensors]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, 0.5, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, math.inf])
def test_clip_grad_norm_agrees_with_torch(dtype, norm_type, max_norm):
    grads = [g for g in big_gradients(dtype, seed=3) if g.size]
    expected_total, expected = torch_clip(grads, max_norm, norm_type)
    ours = [g.copy() for g in grads]
    total = gradients.clip_grad_norm(ours, max_norm, norm_type)
    # torch accumulates float32 norms in float32; lrcore in double.
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    assert total == pytest.approx(expected_total, rel=rtol)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a, b, rtol=rtol * 4, atol=0)
    if max_norm == math.inf:
        for a, b in zip(ours, grads):
            assert np.array_equal(a, b)  # nothing to clip: untouched


def test_clip_grad_norm_result_and_semantics():
    g = [np.full(4, 3.0, np.float32), np.full(9, 2.0)]
    total = gradients.clip_grad_norm(g, 1.0)
    assert total == pytest.approx(math.sqrt(4 * 9 + 9 * 4))
    assert gradients.global_norm(g) == pytest.approx(1.0, rel=1e-5)
    assert gradients.clip_grad_norm([np.full(3, 3.0, np.float32)], 1.0, "inf") == 3.0
    assert gradients.global_norm(np.array([3.0, -4.0])) == 5.0  # a single array is accepted


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_non_finite(bad):
    g = [np.ones(5, np.float32)]
    g[0][2] = bad
    snapshot = g[0].copy()
    total = gradients.clip_grad_norm(g, 1.0)
    assert not math.isfinite(total)
    assert np.array_equal(g[0], snapshot, equal_nan=True)  # left for the non-finite check
    with pytest.raises(RuntimeError, match="non-finite"):
        gradients.clip_grad_norm(g, 1.0, error_if_nonfinite=True)
    assert np.array_equal(g[0], snapshot, equal_nan=True)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 2.5, math.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, "mixed"])
def test_norm_is_bitwise_independent_of_the_thread_count(threads, norm_type, dtype):
    if dtype == "mixed":
        grads = big_gradients(np.float32, 5) + big_gradients(np.float64, 6)
    else:
        grads = big_gradients(dtype, 5)
    results = []
    for count in (1, 2, 3):
        threads(count)
        clipped = [g.copy() for g in grads]
        total = gradients.clip_grad_norm(clipped, 0.25, norm_type)
        results.append((np.float64(total).tobytes(), [c.tobytes() for c in clipped]))
    assert results[0] == results[1] == results[2]


def test_norm_sums_in_double():
    # 2^24 + many ones is exact in double and would stall in float32 accumulation.
    g = np.ones(1 << 20, np.float32)
    assert gradients.global_norm([g], 1.0) == float(1 << 20)
    assert gradients.global_norm([np.full(1 << 20, 1e-3, np.float32)], 2.0) == pytest.approx(
        math.sqrt((1 << 20) * float(np.float32(1e-3)) ** 2), rel=1e-12)
