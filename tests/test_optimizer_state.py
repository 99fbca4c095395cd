"""The optimizer's state, defined once: state_dict/load_state_dict, snapshots, counters.

Everything a step changes (parameters, state arrays, per-tensor step counts,
``step_count``, ``skipped_steps``, ``last_hyperparameters``, schedule state)
must survive a save/load and a snapshot/restore bitwise, and a refused load
must change nothing.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from lrcore import schedules
from lrcore.optim import Optimizer, OptimizerSnapshot
from rules import RULE_CASES, RULE_IDS, RULES

RULE_BY_NAME = {rule.name: rule for rule in RULES}
SHAPES = [(6,), (2, 5), (3,)]


def build(rule, config, seed=0, lr=None, skip_nonfinite=True):
    """Two groups (float64 and float32): group 1 with its own lr."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(SHAPES[0]), rng.standard_normal(SHAPES[1]),
              rng.standard_normal(SHAPES[2]).astype(np.float32)]
    group1_lr = 0.004 if lr is None else lr
    opt = rule.optimizer([{"params": params[:2]}, {"params": params[2:], "lr": group1_lr}], **config,
                         skip_nonfinite=skip_nonfinite)
    return opt, params


def grads_for(params, seed, steps):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(steps):
        out.append([(rng.standard_normal(p.shape) + 0.1).astype(p.dtype) for p in params])
    return out


def nan_grads(params):
    grads = [np.ones_like(p) for p in params]
    grads[-1][0] = np.nan
    return grads


def assert_same(a, b, where="root"):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (where, sorted(map(str, a)), sorted(map(str, b)))
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{k}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def everything(opt):
    return copy.deepcopy({
        "state_dict": opt.state_dict(),
        "params": [p.copy() for g in opt.param_groups for p in g["params"]],
        "step_count": opt.step_count,
        "skipped_steps": opt.skipped_steps,
        "last": opt.last_hyperparameters,
        "groups": [{k: v for k, v in g.items() if k != "params" and not callable(v)} for g in opt.param_groups],
    })


# ---------------------------------------------------------- skipped_steps --
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_state_dict_has_skipped_steps_and_load_restores_it(rule, config):
    opt, params = build(rule, config)
    steps = grads_for(params, 1, 3)
    opt.step(steps[0])
    assert opt.step(nan_grads(params)) is False
    opt.step(steps[1])
    assert opt.step(nan_grads(params)) is False
    saved = opt.state_dict()
    assert saved["skipped_steps"] == 2 and saved["step_count"] == 2
    fresh, fresh_params = build(rule, config)
    fresh.load_state_dict(saved, params=[p.copy() for p in params])
    assert (fresh.skipped_steps, fresh.step_count) == (2, 2)
    assert_same(fresh.state_dict(), saved)
    # The two continue identically.
    opt.step(steps[2])
    fresh.step(steps[2])
    assert_same(fresh.state_dict(), opt.state_dict())
    assert_same(fresh_params, params)
    # An old state_dict without the key loads as zero skipped steps.
    del saved["skipped_steps"]
    fresh.load_state_dict(saved)
    assert fresh.skipped_steps == 0


# ------------------------------------------------ get_last_lr after a load --
@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_get_last_lr_after_loading_is_the_savers_lr_for_a_constant(rule_name):
    rule = RULE_BY_NAME[rule_name]
    opt, params = build(rule, {"lr": 0.03})
    for grads in grads_for(params, 2, 3):
        opt.step(grads)
    assert opt.get_last_lr() == [0.03, 0.004]
    fresh, _ = build(rule, {"lr": 0.5}, lr=0.7)
    fresh.load_state_dict(opt.state_dict())
    assert fresh.get_last_lr() == opt.get_last_lr() == [0.03, 0.004]
    fresh.step(grads_for(params, 3, 1)[0])
    assert fresh.get_last_lr() == [0.03, 0.004]


@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_get_last_lr_after_loading_is_the_saved_optimizers_last_lr_with_a_schedule(rule_name):
    # As torch's schedulers restore their last lr: right after loading, get_last_lr()
    # reports the lr of the last step the saved optimizer took; the next step then
    # uses the schedule's next value.
    rule = RULE_BY_NAME[rule_name]
    opt, params = build(rule, {"lr": schedules.ExponentialDecay(0.1, 0.5)})
    for grads in grads_for(params, 4, 3):
        opt.step(grads)
    assert opt.get_last_lr()[0] == pytest.approx(0.1 * 0.5 ** 2)
    fresh, _ = build(rule, {"lr": schedules.ExponentialDecay(0.1, 0.5)})
    assert fresh.get_last_lr()[0] == pytest.approx(0.1)   # before the first step: the first step's lr
    fresh.load_state_dict(opt.state_dict())
    assert fresh.get_last_lr() == opt.get_last_lr()
    fresh.step(grads_for(params, 5, 1)[0])
    assert fresh.get_last_lr()[0] == pytest.approx(0.1 * 0.5 ** 3)


# ---------------------------------------------------------------- snapshot --
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_snapshot_restore_puts_everything_back(rule, config):
    lr = schedules.ExponentialDecay(0.02, 0.9)
    plateau = schedules.ReduceOnPlateau(0.01, patience=0, factor=0.5)
    opt, params = build(rule, {**config, "lr": lr}, lr=plateau)
    steps = grads_for(params, 6, 6)
    opt.step(steps[0])
    opt.step(steps[1])
    assert opt.step(nan_grads(params)) is False
    plateau.observe(1.0)
    snap = opt.snapshot(params=True)
    assert isinstance(snap, OptimizerSnapshot)
    before = everything(opt)
    plateau_state = copy.deepcopy(plateau.state_dict())
    group0 = dict(opt.param_groups[0])

    # Change everything a step or a user can change.
    opt.step(steps[2])
    plateau.observe(2.0)
    plateau.observe(3.0)
    opt.param_groups[0]["lr"] = 0.5
    opt.param_groups[1]["weight_decay"] = 0.25
    lazy = {"sgd": {"momentum": 0.8}, "rmsprop": {"momentum": 0.5, "centered": True},
            "adam": {"amsgrad": True}, "adamw": {"amsgrad": True}}.get(rule.name, {})
    opt.param_groups[0].update(lazy)
    opt.step(steps[3])
    assert opt.step(nan_grads(params)) is False
    assert plateau.state_dict() != plateau_state

    snap.restore()
    assert_same(everything(opt), before)
    assert opt.param_groups[0]["lr"] is lr
    assert opt.param_groups[1]["lr"] is plateau
    assert plateau.state_dict() == plateau_state
    assert {k: v for k, v in opt.param_groups[0].items() if k != "params"} == \
        {k: v for k, v in group0.items() if k != "params"}
    # After the restore the optimizer continues as if nothing had happened in between.
    twin_lr = schedules.ExponentialDecay(0.02, 0.9)
    twin_plateau = schedules.ReduceOnPlateau(0.01, patience=0, factor=0.5)
    twin, twin_params = build(rule, {**config, "lr": twin_lr}, lr=twin_plateau)
    twin.step(steps[0])
    twin.step(steps[1])
    twin.step(nan_grads(twin_params))
    twin_plateau.observe(1.0)
    for grads in steps[4:]:
        opt.step(grads)
        twin.step(grads)
    assert_same(params, twin_params)
    assert_same(opt.state_dict(), twin.state_dict())
    assert_same(opt.last_hyperparameters, twin.last_hyperparameters)


@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_snapshot_without_params_leaves_the_parameters(rule_name):
    rule = RULE_BY_NAME[rule_name]
    opt, params = build(rule, {"lr": 0.01})
    steps = grads_for(params, 7, 2)
    opt.step(steps[0])
    snap = opt.snapshot()
    assert snap.params is None
    saved_state = copy.deepcopy(opt.state_dict())
    opt.step(steps[1])
    moved = [p.copy() for p in params]
    snap.restore()
    assert_same(params, moved)
    assert_same(opt.state_dict(), saved_state)
    assert opt.step_count == 1


def test_a_snapshot_is_not_changed_by_later_steps():
    rule = RULE_BY_NAME["adam"]
    opt, params = build(rule, {"lr": 0.01})
    opt.step(grads_for(params, 8, 1)[0])
    snap = opt.snapshot(params=True)
    frozen = copy.deepcopy((snap.state_dict, snap.params))
    for grads in grads_for(params, 9, 3):
        opt.step(grads)
    assert_same((snap.state_dict, snap.params), frozen)
    snap.restore()
    snap.restore()   # twice is the same as once
    assert_same(opt.state_dict(), frozen[0])
    assert_same(params, frozen[1])


# -------------------------------------------------- load_state_dict(params) --
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_load_state_dict_with_params_copies_them(rule, config):
    opt, params = build(rule, config)
    for grads in grads_for(params, 10, 2):
        opt.step(grads)
    saved = opt.state_dict()
    values = [p.copy() for p in params]
    fresh, fresh_params = build(rule, config, seed=99)
    identities = [id(p) for p in fresh_params]
    fresh.load_state_dict(saved, params=values)
    assert_same(fresh_params, params)
    assert [id(p) for g in fresh.param_groups for p in g["params"]] == identities   # copied into, not replaced
    values[0][...] = 123.0
    assert not np.array_equal(fresh_params[0], values[0])


def _wrong_params(params):
    return {
        "shape": [params[0], params[1].reshape(5, 2).copy(), params[2]],
        "dtype": [params[0], params[1], params[2].astype(np.float64)],
        "too-few": params[:2],
        "too-many": params + [params[2]],
        "list": [params[0], params[1].tolist(), params[2]],
    }


@pytest.mark.parametrize("case", ["shape", "dtype", "too-few", "too-many", "list"])
@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_load_state_dict_refuses_bad_params_and_changes_nothing(rule_name, case):
    rule = RULE_BY_NAME[rule_name]
    source, source_params = build(rule, {"lr": 0.02})
    for grads in grads_for(source_params, 11, 3):
        source.step(grads)
    target, target_params = build(rule, {"lr": 0.5}, seed=3)
    target.step(grads_for(target_params, 12, 1)[0])
    before = everything(target)
    with pytest.raises(ValueError, match=r"params"):
        target.load_state_dict(source.state_dict(), params=_wrong_params([p.copy() for p in source_params])[case])
    assert_same(everything(target), before)


@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_load_state_dict_refuses_a_bad_state_array_and_changes_nothing(rule_name):
    rule = RULE_BY_NAME[rule_name]
    config = {"lr": 0.02, "momentum": 0.9} if rule_name == "sgd" else {"lr": 0.02}   # SGD needs state to save
    source, source_params = build(rule, config)
    for grads in grads_for(source_params, 13, 2):
        source.step(grads)
    saved = source.state_dict()
    name = next(k for k in saved["state"][2] if k != "step")
    saved["state"][2][name] = saved["state"][2][name].astype(np.float64)
    target, target_params = build(rule, {**config, "lr": 0.5}, seed=3)
    target.step(grads_for(target_params, 14, 1)[0])
    before = everything(target)
    with pytest.raises(ValueError, match=rf"state\[2\]\['{name}'\] must be a float32 array"):
        target.load_state_dict(saved, params=[p.copy() for p in source_params])
    assert_same(everything(target), before)


@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_load_state_dict_refused_in_group_1_changes_nothing_in_group_0(rule_name):
    # The saving optimizer has a schedule in group 1 where the loading one has a number.
    rule = RULE_BY_NAME[rule_name]
    source, source_params = build(rule, {"lr": 0.02}, lr=schedules.ExponentialDecay(0.1, 0.5))
    for grads in grads_for(source_params, 15, 2):
        source.step(grads)
    target, target_params = build(rule, {"lr": 0.5}, seed=3)
    target.step(grads_for(target_params, 16, 1)[0])
    before = everything(target)
    with pytest.raises(ValueError, match="schedule"):
        target.load_state_dict(source.state_dict(), params=[p.copy() for p in source_params])
    assert_same(everything(target), before)
    assert target.param_groups[0]["lr"] == 0.5


# ------------------------------------------------------- counter setters --
@pytest.mark.parametrize("value", [-1, -(2 ** 40), 1.5, 2.0, True, False, "3", None, 2 ** 63, np.float64(1.0)])
@pytest.mark.parametrize("counter", ["step_count", "skipped_steps"])
def test_counter_setters_refuse_bad_values(counter, value):
    opt, params = build(RULE_BY_NAME["adam"], {"lr": 0.01})
    opt.step(grads_for(params, 17, 1)[0])
    opt.step(nan_grads(params))
    before = everything(opt)
    with pytest.raises(ValueError, match=rf"{counter} must be an integer in \[0, 2\*\*63 - 1\]"):
        setattr(opt, counter, value)
    assert_same(everything(opt), before)


@pytest.mark.parametrize("counter", ["step_count", "skipped_steps"])
def test_counter_setters_accept_integers(counter):
    opt, params = build(RULE_BY_NAME["sgd"], {"lr": 0.01})
    for value in (0, 7, np.int64(3), np.uint8(5), 2 ** 62):
        setattr(opt, counter, value)
        assert getattr(opt, counter) == int(value)
        assert type(getattr(opt, counter)) is int
        assert opt.state_dict()[counter] == int(value)


def test_step_count_setter_moves_schedules():
    lr = schedules.ExponentialDecay(0.1, 0.5)
    opt, params = build(RULE_BY_NAME["sgd"], {"lr": lr})
    opt.step_count = 3
    opt.step(grads_for(params, 18, 1)[0])
    assert opt.last_hyperparameters[0]["lr"] == pytest.approx(lr(3))
    assert opt.step_count == 4


@pytest.mark.parametrize("value", [-1, 1.5, "2", True])
@pytest.mark.parametrize("key", ["step_count", "skipped_steps"])
def test_load_state_dict_refuses_bad_counters_and_changes_nothing(key, value):
    opt, params = build(RULE_BY_NAME["rmsprop"], {"lr": 0.01})
    opt.step(grads_for(params, 19, 1)[0])
    saved = opt.state_dict()
    opt.step(grads_for(params, 20, 1)[0])
    saved[key] = value
    before = everything(opt)
    with pytest.raises(ValueError, match=rf"{key} must be an integer in \[0, 2\*\*63 - 1\]"):
        opt.load_state_dict(saved, params=[p.copy() for p in params])
    assert_same(everything(opt), before)


def test_optimizer_snapshot_is_public():
    import lrcore.optim as optim

    assert "OptimizerSnapshot" in optim.__all__
    assert optim.OptimizerSnapshot is OptimizerSnapshot
    assert issubclass(RULE_BY_NAME["sgd"].optimizer, Optimizer)
    opt, _ = build(RULE_BY_NAME["sgd"], {"lr": 0.01})
    assert type(opt.snapshot()) is OptimizerSnapshot

