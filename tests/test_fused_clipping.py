"""Global-norm clipping fused into the step (max_grad_norm, norm_type, last_grad_norm).

The reference is always lrcore.clip_grad_norm on copies of the gradients
followed by a plain step: the fused step must give the same bits, while
leaving the gradient arrays themselves untouched.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from rules import DTYPES, RULE_CASES, RULE_IDS, TORCH_RULE_CASES, TORCH_RULE_IDS, make_gradients

NORM_TYPES = [2.0, 1.0, 3.5, math.inf]
STEPS = 3


def two_groups(rule, config, arrays):
    """Two parameter groups of the configuration, the second with a different lr."""
    half = len(arrays) // 2
    return [{"params": arrays[:half]}, {"params": arrays[half:], "lr": config.get("lr", 0.01) * 0.5}]


def run_pair(rule, config, shapes, dtypes, max_norm, norm_type, steps=STEPS, seed=0, scale=3.0, skip=False):
    """(fused optimizer, its params, reference optimizer, its params, gradients used)."""
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s).astype(d) for s, d in zip(shapes, dtypes)]
    fused_params = [p.copy() for p in initial]
    plain_params = [p.copy() for p in initial]
    fused = rule.optimizer(two_groups(rule, config, fused_params), **config, max_grad_norm=max_norm,
                           norm_type=norm_type, skip_nonfinite=skip)
    plain = rule.optimizer(two_groups(rule, config, plain_params), **config, skip_nonfinite=skip)
    history = []
    for _ in range(steps):
        grads = [(rng.standard_normal(s) * scale + 0.1).astype(d) for s, d in zip(shapes, dtypes)]
        given = [g.copy() for g in grads]
        assert fused.step(given) is True
        for g, original in zip(given, grads):
            np.testing.assert_array_equal(g, original)  # the fused step never writes a gradient
        clipped = [g.copy() for g in grads]
        norm = lrcore.clip_grad_norm(clipped, max_norm, norm_type)
        assert plain.step(clipped) is True
        assert fused.last_grad_norm == norm
        history.append(norm)
    return fused, fused_params, plain, plain_params, history


def assert_same_bits(fused, fused_params, plain, plain_params):
    for a, b in zip(fused_params, plain_params):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))
    ours, theirs = fused.state_dict()["state"], plain.state_dict()["state"]
    assert ours.keys() == theirs.keys()
    for key in ours:
        for name, value in ours[key].items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value.reshape(-1).view(np.uint8), theirs[key][name].reshape(-1).view(np.uint8), err_msg=name)


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=lambda p: f"p={p}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_bitwise_equal_to_clip_then_step(rule, config, dtype, norm_type):
    shapes = [(7,), (1023,), (17, 3), (4097,)]
    result = run_pair(rule, config, shapes, [dtype] * 4, 1.0, norm_type)
    assert all(norm > 1.0 for norm in result[4])  # the clipping scaled every step
    assert_same_bits(*result[:4])


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_bitwise_when_not_clipping_and_with_mixed_dtypes(rule, config):
    shapes = [(5,), (100003,), (33,), (2048,)]
    dtypes = [np.float32, np.float64, np.float64, np.float32]
    # Below the limit: coefficient 1, the step is the plain one.
    result = run_pair(rule, config, shapes, dtypes, 1e9, 2.0, steps=2)
    assert_same_bits(*result[:4])
    # Mixed dtypes: the float32 and float64 sums are added before the root, as global_norm does.
    result = run_pair(rule, config, shapes, dtypes, 0.5, 2.0, steps=2)
    assert_same_bits(*result[:4])


def test_edge_limits():
    rule, config = RULE_CASES[0]
    for max_norm in (0.0, math.inf):
        assert_same_bits(*run_pair(rule, config, [(9,), (10,)], [np.float32] * 2, max_norm, 2.0)[:4])


def test_schedule_valued_max_grad_norm():
    def limit(t):
        return 0.5 * (t + 1)

    rng = np.random.default_rng(3)
    a = [rng.standard_normal(300).astype(np.float32)]
    b = [a[0].copy()]
    fused = lrcore.Adam(a, lr=0.01, max_grad_norm=limit)
    plain = lrcore.Adam(b, lr=0.01)
    for t in range(5):
        grad = rng.standard_normal(300).astype(np.float32) * 4
        fused.step([grad.copy()])
        clipped = [grad.copy()]
        assert lrcore.clip_grad_norm(clipped, limit(t)) == fused.last_grad_norm
        plain.step(clipped)
        np.testing.assert_array_equal(a[0], b[0])
    # A Schedule object of lrcore.schedules works too, and is saved by its state.
    schedule = lrcore.schedules.StepDecay(2.0, step_size=2, gamma=0.5)
    params = [np.zeros(3)]
    opt = lrcore.SGD(params, lr=0.1, max_grad_norm=schedule)
    grad = np.full(3, 10.0)
    for t in range(4):
        opt.step([grad.copy()])
        clipped = [grad.copy()]
        lrcore.clip_grad_norm(clipped, schedule(t))
        assert np.linalg.norm(clipped[0]) < schedule(t) <= 2.0
    assert "schedule_state" in opt.state_dict()["max_grad_norm"]
    again = lrcore.SGD([np.zeros(3)], lr=0.1, max_grad_norm=lrcore.schedules.StepDecay(2.0, step_size=2, gamma=0.5))
    again.load_state_dict(opt.state_dict())
    with pytest.raises(ValueError, match="schedule"):
        lrcore.SGD([np.zeros(3)], lr=0.1, max_grad_norm=1.0).load_state_dict(opt.state_dict())


def snapshot(opt, params):
    return [p.copy() for p in params], opt.state_dict()


def assert_unchanged(opt, params, before):
    saved_params, saved_state = before
    for p, q in zip(params, saved_params):
        np.testing.assert_array_equal(p, q)
    now = opt.state_dict()
    assert now["step_count"] == saved_state["step_count"]
    assert now["state"].keys() == saved_state["state"].keys()
    for key in now["state"]:
        for name, value in now["state"][key].items():
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(value, saved_state["state"][key][name])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf], ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=lambda p: f"p={p}")
def test_skip_nonfinite_uses_the_norm(bad, norm_type):
    params = [np.ones(10, np.float32), np.ones(4, np.float64)]
    opt = lrcore.Adam(params, lr=0.1, max_grad_norm=1.0, norm_type=norm_type, skip_nonfinite=True)
    assert opt.step([np.ones(10, np.float32), np.ones(4)]) is True
    before = snapshot(opt, params)
    grad = np.ones(4)
    grad[2] = bad
    assert opt.step([np.ones(10, np.float32), grad]) is False
    assert opt.skipped_steps == 1 and opt.step_count == 1
    assert_unchanged(opt, params, before)
    assert not math.isfinite(opt.last_grad_norm)
    if np.isnan(bad):
        assert math.isnan(opt.last_grad_norm)


def test_nonfinite_without_skip_is_unscaled():
    grads = [np.array([1.0, np.inf, 2.0], np.float32)]
    a, b = [np.ones(3, np.float32)], [np.ones(3, np.float32)]
    fused = lrcore.SGD(a, lr=0.1, max_grad_norm=1.0)
    plain = lrcore.SGD(b, lr=0.1)
    assert fused.step([grads[0].copy()]) is True
    clipped = [grads[0].copy()]
    assert lrcore.clip_grad_norm(clipped, 1.0) == math.inf
    np.testing.assert_array_equal(clipped[0], grads[0])  # clip_grad_norm leaves them as they are
    plain.step(clipped)
    np.testing.assert_array_equal(a[0], b[0])
    assert fused.last_grad_norm == math.inf


def test_overflowing_norm_of_finite_gradients():
    # Every element is finite, but the sum of squares overflows a double: the
    # norm is inf. With skip_nonfinite the step is skipped (the norm pass is the
    # non-finite check); without, the gradients are left unscaled.
    grad = np.full(8, 1e200)
    assert lrcore.all_finite([grad]) and lrcore.global_norm([grad]) == math.inf
    params = [np.ones(8)]
    opt = lrcore.SGD(params, lr=1e-202, max_grad_norm=1.0, skip_nonfinite=True)
    before = snapshot(opt, params)
    assert opt.step([grad.copy()]) is False
    assert opt.skipped_steps == 1 and opt.last_grad_norm == math.inf
    assert_unchanged(opt, params, before)
    # The inf-norm does not overflow: the same gradients are clipped.
    opt.norm_type = math.inf
    assert opt.step([grad.copy()]) is True and opt.last_grad_norm == 1e200
    a, b = [np.ones(8)], [np.ones(8)]
    fused = lrcore.SGD(a, lr=1e-202, max_grad_norm=1.0)
    plain = lrcore.SGD(b, lr=1e-202)
    assert fused.step([grad.copy()]) is True
    plain.step([grad.copy()])
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], np.ones(8))


def test_last_grad_norm():
    params = [np.zeros(3), np.zeros(2, np.float32)]
    opt = lrcore.SGD(params, lr=0.1)
    assert opt.last_grad_norm is None
    grads = [np.array([3.0, 4.0, 0.0]), np.array([0.0, 12.0], np.float32)]
    opt.step(grads)
    assert opt.last_grad_norm is None  # clipping off
    opt.max_grad_norm = 1.0
    assert opt.last_grad_norm is None
    opt.step(grads)
    assert opt.last_grad_norm == 13.0 == lrcore.global_norm(grads)
    opt.norm_type = 1
    opt.step([None, grads[1]])  # a None gradient does not count
    assert opt.last_grad_norm == 12.0
    opt.max_grad_norm = None
    opt.step(grads)
    assert opt.last_grad_norm is None
    fresh = lrcore.SGD([np.zeros(3)], lr=0.1, max_grad_norm=1.0)
    assert fresh.last_grad_norm is None


BAD_MAX = [(-1.0, ValueError), (math.nan, ValueError), ("1", TypeError), (True, TypeError), ([1.0], TypeError)]
BAD_P = [(0.0, ValueError), (-2.0, ValueError), (math.nan, ValueError), ("two", TypeError), (False, TypeError)]


@pytest.mark.parametrize(("value", "error"), BAD_MAX)
def test_bad_max_grad_norm(value, error):
    with pytest.raises(error, match="max_grad_norm"):
        lrcore.Adam([np.zeros(3)], max_grad_norm=value)
    params = [np.ones(3, np.float32)]
    opt = lrcore.Adam(params, lr=0.1, max_grad_norm=1.0)
    opt.step([np.ones(3, np.float32)])
    before = snapshot(opt, params)
    opt.max_grad_norm = value
    with pytest.raises((TypeError, ValueError), match="max_grad_norm"):
        opt.step([np.ones(3, np.float32)])
    assert_unchanged(opt, params, before)
    assert opt.skipped_steps == 0


@pytest.mark.parametrize(("value", "error"), BAD_P)
def test_bad_norm_type(value, error):
    with pytest.raises(error, match="norm_type"):
        lrcore.SGD([np.zeros(3)], lr=0.1, norm_type=value)
    params = [np.ones(3)]
    opt = lrcore.SGD(params, lr=0.1, momentum=0.9, max_grad_norm=1.0)
    before = snapshot(opt, params)
    opt.norm_type = value
    with pytest.raises((TypeError, ValueError), match="norm_type"):
        opt.step([np.ones(3)])
    assert_unchanged(opt, params, before)
    assert opt.state_dict()["state"] == {}  # no state was created either


def test_bad_schedule_value_writes_nothing():
    params = [np.ones(3)]
    opt = lrcore.Adam(params, lr=0.1, max_grad_norm=lambda t: -1.0)
    before = snapshot(opt, params)
    with pytest.raises(ValueError, match="max_grad_norm"):
        opt.step([np.ones(3)])
    assert_unchanged(opt, params, before)
    assert opt.last_grad_norm is None


def test_native_step_arguments():
    native = lrcore.Adam.rule.native
    with pytest.raises(TypeError, match="grad_norm"):
        native.step([], max_grad_norm=1.0, grad_norm=np.zeros(3))
    with pytest.raises(ValueError, match="norm_type"):
        native.step([], max_grad_norm=1.0, norm_type=-1.0)
    out = np.zeros(2)
    assert native.step([], max_grad_norm=1.0, grad_norm=out) is True
    assert list(out) == [0.0, -1.0]  # the norm of no gradients; no counters to mark it with
    counters = np.array([4, 2], np.int64)
    assert native.step([], counters, False, None, False, 1.0, 2.0, out) is True
    assert list(counters) == [5, 2] and list(out) == [0.0, 7.0]  # marked with the counters' sum after the step


def test_state_dict_and_checkpoint_round_trip(tmp_path):
    params = [np.ones(4)]
    opt = lrcore.AdamW(params, lr=0.1, max_grad_norm=2.5, norm_type="inf")
    assert opt.norm_type == math.inf
    opt.step([np.full(4, 7.0)])
    state = opt.state_dict()
    assert state["max_grad_norm"] == 2.5 and state["norm_type"] == math.inf and state["last_grad_norm"] == 7.0
    other = lrcore.AdamW([np.ones(4)], lr=0.1)
    other.load_state_dict(state)
    assert other.max_grad_norm == 2.5 and other.norm_type == math.inf and other.last_grad_norm == 7.0
    # A state_dict from before clipping existed loads and keeps the optimizer's settings.
    old = {k: v for k, v in state.items() if k not in ("max_grad_norm", "norm_type", "last_grad_norm")}
    third = lrcore.AdamW([np.ones(4)], lr=0.1, max_grad_norm=9.0)
    third.load_state_dict(old)
    assert third.max_grad_norm == 9.0 and third.norm_type == 2.0 and third.step_count == 1
    bad = dict(state, max_grad_norm=-1.0)
    with pytest.raises(ValueError, match="max_grad_norm"):
        third.load_state_dict(bad)
    assert third.max_grad_norm == 9.0
    # Checkpoints keep them too.
    from lrcore import checkpoint

    path = tmp_path / "opt.npz"
    checkpoint.save(path, opt)
    fourth = lrcore.AdamW([np.ones(4)], lr=0.1)
    checkpoint.load(path, fourth)
    assert fourth.max_grad_norm == 2.5 and fourth.norm_type == math.inf and fourth.last_grad_norm == 7.0


def test_factory_accepts_clipping():
    opt = lrcore.create_optimizer("adam", [np.zeros(2)], max_grad_norm=1.0, norm_type=1)
    assert opt.max_grad_norm == 1.0 and opt.norm_type == 1.0


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_bitwise_across_isas_and_threads(dtype):
    size = (1 << 21) // np.dtype(dtype).itemsize + 13  # > 1 MiB per array
    rng = np.random.default_rng(7)
    initial = [rng.standard_normal(size).astype(dtype), rng.standard_normal(1000).astype(dtype)]
    grads = [[rng.standard_normal(a.shape).astype(dtype) * 2 for a in initial] for _ in range(2)]
    results = []
    previous_isa, previous_threads = lrcore.isa(), lrcore.get_num_threads()
    try:
        for isa in lrcore.available_isas():
            for threads in (1, 2, 3):
                lrcore.set_isa(isa)
                lrcore.set_num_threads(threads)
                params = [a.copy() for a in initial]
                opt = lrcore.Adam(params, lr=0.01, amsgrad=True, max_grad_norm=1.0, norm_type=2.0)
                norms = []
                for g in grads:
                    opt.step([x.copy() for x in g])
                    norms.append(opt.last_grad_norm)
                results.append((isa, threads, params, norms))
    finally:
        lrcore.set_isa(previous_isa)
        lrcore.set_num_threads(previous_threads)
    _, _, reference, reference_norms = results[0]
    for isa, threads, params, norms in results[1:]:
        assert norms == reference_norms, (isa, threads)
        for p, q in zip(params, reference):
            np.testing.assert_array_equal(p, q, err_msg=f"{isa} threads={threads}")


# ------------------------------------------------------------------ torch --
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


@pytest.mark.parametrize("norm_type", NORM_TYPES, ids=lambda p: f"p={p}")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("rule", "config"), TORCH_RULE_CASES, ids=TORCH_RULE_IDS)
def test_matches_torch(rule, config, dtype, norm_type):
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(11)
        shapes = [(37,), (1000,)]
        initial = [rng.standard_normal(s).astype(dtype) for s in shapes]
        ours = [p.copy() for p in initial]
        theirs = [torch.tensor(p.copy()) for p in initial]
        optimizer = rule.optimizer(ours, **config, max_grad_norm=1.5, norm_type=norm_type)
        if dtype == np.float64 and rule.description.scalars:
            # torch keeps per-tensor scalars (NAdam's mu_product) in its default dtype; lrcore in float64.
            torch.set_default_dtype(torch.float64)
        torch_optimizer = rule.torch_optimizer(theirs, **config)
        for grads in make_gradients(rng, shapes, dtype, 20):
            grads = [g * dtype(4) for g in grads]
            optimizer.step(grads)
            for t, g in zip(theirs, grads):
                t.grad = torch.from_numpy(g.copy())
            total = torch.nn.utils.clip_grad_norm_(theirs, 1.5, norm_type=norm_type, foreach=False)
            assert optimizer.last_grad_norm == pytest.approx(float(total), rel=1e-5 if dtype == np.float32 else 1e-12)
            torch_optimizer.step()
        for a, t in zip(ours, theirs):
            np.testing.assert_allclose(a, t.numpy(), **TOLERANCE[dtype])
    finally:
        torch.set_num_threads(previous)
        torch.set_default_dtype(torch.float32)
