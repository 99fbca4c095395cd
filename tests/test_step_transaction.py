"""A step is a transaction: all of it happens, or none of it does.

"All of it" is every parameter, every state array (including state that a
configuration change makes necessary and that the step has to create), the
per-tensor step counts, ``step_count``, ``skipped_steps`` and
``last_hyperparameters``. Each test below makes one step fail (or be
interrupted) and then compares the whole optimizer bitwise with how it was.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

import numpy as np
import pytest

import lrcore
from lrcore import functional
from rules import RULE_CASES, RULE_IDS, RULES, make_gradients

RULE_BY_NAME = {rule.name: rule for rule in RULES}

# Hyperparameters that, switched on between steps, make a rule need state it
# did not need before (the step must create it, but only if the step happens).
LAZY_SWITCH = {
    "sgd": {"momentum": 0.9},
    "adagrad": {},
    "rmsprop": {"momentum": 0.9, "centered": True},
    "adam": {"amsgrad": True},
    "adamw": {"amsgrad": True},
    "adafactor": {},  # no configuration-dependent state
    "nadam": {},
    "radam": {},
    "adamax": {},
    "lion": {},
    "adadelta": {},
    "rprop": {},
    "asgd": {},
    "schedule_free_adamw": {},  # z is created lazily, but by the tensor's first step, not by a configuration
    "schedule_free_sgd": {},
}

SHAPES = [(5,), (2, 3)]


# ----------------------------------------------------------------- helpers --
def freeze(opt):
    """Everything a step could change, copied: state_dict, parameters, counters, last values."""
    return {
        "state_dict": copy.deepcopy(opt.state_dict()),
        "params": [p.copy() for g in opt.param_groups for p in g["params"]],
        "step_count": opt.step_count,
        "skipped_steps": opt.skipped_steps,
        "last_hyperparameters": copy.deepcopy(opt.last_hyperparameters),
        "state_lists": [{name: [a is None for a in arrays] for name, arrays in s.items()} for s in opt._states],
    }


def assert_bitwise_equal(a, b, where="root"):
    """Recursive equality where arrays must match in dtype, shape and every bit."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        assert isinstance(a, np.ndarray) and isinstance(b, np.ndarray), where
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert a.tobytes() == b.tobytes(), f"{where}: array contents differ"
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(map(str, a))} != {sorted(map(str, b))}"
        for key in a:
            assert_bitwise_equal(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_bitwise_equal(x, y, f"{where}[{k}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def assert_unchanged(opt, before):
    assert_bitwise_equal(freeze(opt), before)


def two_group_optimizer(rule, config, dtype=np.float64, seed=0, **extra):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    params1 = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    opt = rule.optimizer([{"params": params}, {"params": params1, "lr": 0.003}], **config, **extra)
    return opt, params + params1


def good_grads(params, seed=1):
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal(p.shape) + 0.1).astype(p.dtype) for p in params]


def stepped_two_groups(rule, config, **extra):
    """A two-group optimizer after two good steps, with group 0 switched to need lazily created state."""
    opt, params = two_group_optimizer(rule, config, **extra)
    for seed in (1, 2):
        assert opt.step(good_grads(params, seed)) is True
    opt.param_groups[0].update(LAZY_SWITCH[rule.name])
    return opt, params


def lazily_missing(opt):
    """(group, state name) pairs whose state arrays do not exist yet."""
    states = {s.name: s for s in opt.rule.states}  # None where a parameter has no such state is not missing
    return {(g, name) for g, state in enumerate(opt._states) for name, arrays in state.items()
            if any(a is None and states[name].exists_for(p.shape)
                   for a, p in zip(arrays, opt.param_groups[g]["params"]))}


# ---------------------------------------------- failing checks in group 1 --
def bad_grad_shape(opt, grads):
    grads[3] = np.zeros((3, 2), grads[3].dtype)
    return ValueError, r"grads\[3\] has shape \(3, 2\)"


def bad_grad_dtype(opt, grads):
    grads[2] = grads[2].astype(np.float32)
    return TypeError, r"grads\[2\] has dtype float32 but params\[2\] has dtype float64"


def bad_grad_readonly_param(opt, grads):
    opt.param_groups[1]["params"][0].flags.writeable = False
    return ValueError, r"params\[2\] is read-only"


def lr_schedule_nan(opt, grads):
    opt.param_groups[1]["lr"] = lambda t: float("nan")
    return ValueError, r"param_groups\[1\]: lr must be"


def lr_schedule_string(opt, grads):
    opt.param_groups[1]["lr"] = lambda t: "0.1"
    return TypeError, r"param_groups\[1\]: lr must be a number, got str"


def flag_string(opt, grads):
    flags = [h.name for h in opt.rule.hyperparameters if h.kind == "flag"]
    if not flags:
        pytest.skip(f"{opt.rule.class_name} has no flags")
    opt.param_groups[1][flags[-1]] = "yes"
    return TypeError, rf"param_groups\[1\]: {flags[-1]} must be a bool, got str"


def negative_hyperparameter(opt, grads):
    name = "weight_decay" if "weight_decay" in opt.param_groups[1] else "lr"  # Rprop has no weight decay
    opt.param_groups[1][name] = -1.0
    return ValueError, rf"param_groups\[1\]: {name} must be"


FAILURES = [bad_grad_shape, bad_grad_dtype, bad_grad_readonly_param, lr_schedule_nan, lr_schedule_string,
            flag_string, negative_hyperparameter]


@pytest.mark.parametrize("failure", FAILURES, ids=[f.__name__ for f in FAILURES])
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_failing_check_in_group_1_changes_nothing_anywhere(rule, config, failure):
    opt, params = stepped_two_groups(rule, config)
    missing = lazily_missing(opt)
    grads = good_grads(params, 3)
    error, message = failure(opt, grads)
    before = freeze(opt)
    with pytest.raises(error, match=message):
        opt.step(grads)
    assert_unchanged(opt, before)
    assert lazily_missing(opt) == missing
    # Repaired, the same step goes through and creates the state the switch asked for.
    opt.param_groups[1]["params"][0].flags.writeable = True
    fresh, _ = two_group_optimizer(rule, config)
    opt.param_groups[1].update({k: v for k, v in fresh.param_groups[1].items() if k != "params"})
    assert opt.step(good_grads(params, 3)) is True
    assert opt.step_count == 3
    assert all(g != 0 for g, _ in lazily_missing(opt)), "group 0 still lacks the state its new configuration needs"


@pytest.mark.parametrize("rule_name", ["adam", "adamw"])
def test_amsgrad_string_in_group_1_while_group_0_switches_amsgrad_on(rule_name):
    rule = RULE_BY_NAME[rule_name]
    opt, params = stepped_two_groups(rule, {"lr": 0.01})
    assert (0, "max_exp_avg_sq") in lazily_missing(opt)
    opt.param_groups[1]["amsgrad"] = "yes"
    before = freeze(opt)
    with pytest.raises(TypeError, match=r"param_groups\[1\]: amsgrad must be a bool, got str"):
        opt.step(good_grads(params, 3))
    assert_unchanged(opt, before)
    for entry in opt.state_dict()["state"].values():
        assert "max_exp_avg_sq" not in entry


def test_rmsprop_momentum_buffer_not_created_by_a_failed_step():
    rule = RULE_BY_NAME["rmsprop"]
    opt, params = stepped_two_groups(rule, {"lr": 0.01})
    opt.param_groups[1]["lr"] = lambda t: float("nan")
    before = freeze(opt)
    with pytest.raises(ValueError, match="lr must be"):
        opt.step(good_grads(params, 3))
    assert_unchanged(opt, before)
    assert opt._states[0]["momentum_buffer"] == [None, None]
    assert all("momentum_buffer" not in e for e in opt.state_dict()["state"].values())


def test_sgd_momentum_buffer_not_created_by_a_failed_step():
    rule = RULE_BY_NAME["sgd"]
    opt, params = stepped_two_groups(rule, {"lr": 0.01})
    grads = good_grads(params, 3)
    grads[2] = grads[2][:, None]
    before = freeze(opt)
    with pytest.raises(ValueError, match=r"grads\[2\] has shape"):
        opt.step(grads)
    assert_unchanged(opt, before)
    assert all("momentum_buffer" not in e for e in opt.state_dict()["state"].values())


def test_rprop_step_size_not_created_by_a_failed_first_step():
    # step_size is created by a tensor's first step (at that step's lr): a failed step creates none.
    opt, params = two_group_optimizer(RULE_BY_NAME["rprop"], {"lr": 0.01})
    grads = good_grads(params)
    grads[3] = grads[3].astype(np.float32)
    before = freeze(opt)
    assert opt._states[0]["step_size"] == [None, None]
    with pytest.raises(TypeError, match=r"grads\[3\]"):
        opt.step(grads)
    assert_unchanged(opt, before)
    assert opt._states[0]["step_size"] == [None, None] and opt._states[1]["step_size"] == [None, None]
    grads[3] = grads[3].astype(np.float64)
    grads[1] = None
    assert opt.step(grads) is True
    assert [a is None for a in opt._states[0]["step_size"]] == [False, True]
    assert np.all(opt._states[1]["step_size"][0] == 0.003 * 1.0)  # group 1's lr, unchanged by a first step


def test_a_failed_first_step_leaves_a_fresh_optimizer():
    opt, params = two_group_optimizer(RULE_BY_NAME["adam"], {"lr": 0.01, "amsgrad": True})
    grads = good_grads(params)
    grads[3] = grads[3].astype(np.float32)
    before = freeze(opt)
    with pytest.raises(TypeError, match=r"grads\[3\]"):
        opt.step(grads)
    assert_unchanged(opt, before)
    assert opt.state_dict()["state"] == {}
    assert opt.get_last_lr() == [0.01, 0.003]


# ------------------------------------------------------ overlapping arrays --
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_gradient_that_is_another_groups_parameter_is_refused(rule, config):
    a = np.linspace(-1, 1, 6)
    b = np.linspace(2, 3, 6)
    opt = rule.optimizer([{"params": [a]}, {"params": [b]}], **config)
    opt.step([np.ones(6), np.ones(6)])
    before = freeze(opt)
    with pytest.raises(ValueError, match=r"grads\[1\] and params\[0\] share memory"):
        opt.step([np.ones(6), a])
    assert_unchanged(opt, before)
    with pytest.raises(ValueError, match=r"grads\[0\] and params\[1\] share memory"):
        opt.step([b, np.ones(6)])
    assert_unchanged(opt, before)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_gradient_viewing_into_another_groups_parameter_is_refused(rule, config):
    a = np.linspace(-1, 1, 12)
    b = np.linspace(2, 3, 4)
    opt = rule.optimizer([{"params": [a]}, {"params": [b]}], **config)
    opt.step([np.ones(12), np.ones(4)])
    before = freeze(opt)
    with pytest.raises(ValueError, match=r"grads\[1\] and params\[0\] share memory"):
        opt.step([np.ones(12), a[5:9]])
    assert_unchanged(opt, before)
    # The neighbouring memory of a larger buffer is fine: only real overlap is refused.
    buffer = np.zeros(16)
    c, d = buffer[:12], buffer[12:]
    d[:] = 0.5
    other = rule.optimizer([{"params": [c]}, {"params": [np.ones(4)]}], **config)
    assert other.step([np.full(12, 0.25), d]) is True


@pytest.mark.parametrize("rule_name", ["adam", "rmsprop", "sgd"])
def test_a_gradient_that_is_another_groups_state_is_refused(rule_name):
    rule = RULE_BY_NAME[rule_name]
    config = {"sgd": {"momentum": 0.9}, "adam": {}, "rmsprop": {}}[rule_name]
    opt = rule.optimizer([{"params": [np.ones(4)]}, {"params": [np.ones(4)]}], lr=0.01, **config)
    opt.step([np.ones(4), np.ones(4)])
    state0 = next(arrays[0] for arrays in opt._states[0].values() if arrays[0] is not None)
    before = freeze(opt)
    with pytest.raises(ValueError, match=r"grads\[1\] and \w+\[0\] share memory"):
        opt.step([np.ones(4), state0])
    assert_unchanged(opt, before)


# ------------------------------------------- gradient access that raises --
class RaisingList(list):
    """A list whose item access raises for one index."""

    def __init__(self, items, bad):
        super().__init__(items)
        self.bad = bad

    def __getitem__(self, index):
        if index == self.bad:
            raise RuntimeError(f"cannot read gradient {index}")
        return super().__getitem__(index)


class RaisingSequence(Sequence):
    def __init__(self, items, bad):
        self.items = list(items)
        self.bad = bad

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        if index == self.bad:
            raise RuntimeError(f"cannot read gradient {index}")
        return self.items[index]


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_gradient_list_whose_item_access_raises_changes_nothing(rule, config):
    rng = np.random.default_rng(4)
    params = [rng.standard_normal(s) for s in [(7,), (3, 3), (4,)]]
    opt = rule.optimizer(params, **config)
    opt.step(good_grads(params))
    opt.param_groups[0].update(LAZY_SWITCH[rule.name])
    before = freeze(opt)
    with pytest.raises(RuntimeError, match="cannot read gradient 1"):
        opt.step(RaisingList(good_grads(params, 2), 1))
    assert_unchanged(opt, before)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_functional_gradient_sequence_whose_item_access_raises_changes_nothing(rule, config):
    rng = np.random.default_rng(5)
    params = [rng.standard_normal(s).astype(np.float32) for s in [(9,), (2, 5)]]
    state = rule.new_state(params, config)
    rule.functional_call(functional, params, good_grads(params), state, config)
    before = copy.deepcopy((params, state))
    with pytest.raises(RuntimeError, match="cannot read gradient 1"):
        rule.functional_call(functional, params, RaisingSequence(good_grads(params, 2), 1), state, config)
    assert_bitwise_equal((params, state), before)


# ------------------------------------------------------------ re-entrancy --
class StepOnAccess(list):
    """A gradient list that runs `action` whenever one of its items is read."""

    def __init__(self, items, action):
        super().__init__(items)
        self.action = action

    def __getitem__(self, index):
        self.action()
        return super().__getitem__(index)


class StepOnAccessSequence(Sequence):
    def __init__(self, items, action):
        self.items = list(items)
        self.action = action

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        self.action()
        return self.items[index]


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
@pytest.mark.parametrize("size", [37, 5003])
def test_a_step_run_from_inside_another_steps_gradient_access(rule, config, size):
    rng = np.random.default_rng(size)
    shapes_outer = [(size,), (3, 4), (size // 2 + 1,)]
    shapes_inner = [(size + 1,), (5,)]
    outer0 = [rng.standard_normal(s).astype(np.float32) for s in shapes_outer]
    inner0 = [rng.standard_normal(s) for s in shapes_inner]
    steps = 3
    outer_grads = make_gradients(rng, shapes_outer, np.float32, steps)
    inner_grads = make_gradients(rng, shapes_inner, np.float64, len(shapes_outer) * steps)
    functional_grads = make_gradients(rng, shapes_inner, np.float64, len(shapes_outer) * steps)

    outer = rule.optimizer([p.copy() for p in outer0], **config)
    inner = rule.optimizer([p.copy() for p in inner0], **config)
    functional_params = [p.copy() for p in inner0]
    functional_state = rule.new_state(functional_params, config)
    calls = []

    def nested():
        k = len(calls)
        calls.append(k)
        assert inner.step(inner_grads[k]) is True
        rule.functional_call(functional, functional_params, StepOnAccessSequence(functional_grads[k], lambda: None),
                             functional_state, config)

    for g in outer_grads:
        assert outer.step(StepOnAccess(g, nested)) is True
    assert len(calls) == len(shapes_outer) * steps

    # The same work, one call after the other.
    outer_ref = rule.optimizer([p.copy() for p in outer0], **config)
    inner_ref = rule.optimizer([p.copy() for p in inner0], **config)
    functional_ref_params = [p.copy() for p in inner0]
    functional_ref_state = rule.new_state(functional_ref_params, config)
    for g in outer_grads:
        outer_ref.step(g)
    for g, h in zip(inner_grads, functional_grads):
        inner_ref.step(g)
        rule.functional_call(lrcore.reference, functional_ref_params, h, functional_ref_state, config)

    assert_bitwise_equal(outer.state_dict(), outer_ref.state_dict())
    assert_bitwise_equal(inner.state_dict(), inner_ref.state_dict())
    assert_bitwise_equal(outer.param_groups[0]["params"], outer_ref.param_groups[0]["params"])
    assert_bitwise_equal(inner.param_groups[0]["params"], inner_ref.param_groups[0]["params"])
    np.testing.assert_allclose(functional_params[0], functional_ref_params[0], rtol=1e-12, atol=1e-12)
    # The functional steps inside the outer step equal the same functional steps alone, bitwise.
    alone_params = [p.copy() for p in inner0]
    alone_state = rule.new_state(alone_params, config)
    for h in functional_grads:
        rule.functional_call(functional, alone_params, h, alone_state, config)
    assert_bitwise_equal(functional_params, alone_params)
    assert_bitwise_equal(functional_state, alone_state)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_functional_step_run_from_inside_a_functional_steps_gradient_access(rule, config):
    rng = np.random.default_rng(11)
    shapes = [(4099,), (6,)]
    p0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    q0 = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    outer_grads = make_gradients(rng, shapes, np.float32, 2)
    inner_grads = make_gradients(rng, shapes, np.float32, 4)
    p, q = [x.copy() for x in p0], [x.copy() for x in q0]
    ps, qs = rule.new_state(p, config), rule.new_state(q, config)
    count = []

    def nested():
        rule.functional_call(functional, q, inner_grads[len(count)], qs, config)
        count.append(1)

    for g in outer_grads:
        rule.functional_call(functional, p, StepOnAccessSequence(g, nested), ps, config)
    assert len(count) == 4
    rp, rq = [x.copy() for x in p0], [x.copy() for x in q0]
    rps, rqs = rule.new_state(rp, config), rule.new_state(rq, config)
    for g in outer_grads:
        rule.functional_call(functional, rp, g, rps, config)
    for g in inner_grads:
        rule.functional_call(functional, rq, g, rqs, config)
    assert_bitwise_equal((p, ps, q, qs), (rp, rps, rq, rqs))


# --------------------------------------------------------- skip_nonfinite --
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_nonfinite_gradient_in_group_1_skips_the_whole_step(rule, config, bad):
    opt, params = two_group_optimizer(rule, config, skip_nonfinite=True)
    assert opt.step(good_grads(params, 1)) is True
    opt.param_groups[0].update(LAZY_SWITCH[rule.name])
    grads = good_grads(params, 2)
    grads[3][1, 2] = bad
    before = freeze(opt)
    assert opt.step(grads) is False
    after = freeze(opt)
    assert after["skipped_steps"] == before["skipped_steps"] + 1 == 1
    after["skipped_steps"] -= 1
    after["state_dict"]["skipped_steps"] -= 1
    assert_bitwise_equal(after, before)
    assert opt.step_count == 1
    grads[3][1, 2] = 0.5
    assert opt.step(grads) is True
    assert (opt.step_count, opt.skipped_steps) == (2, 1)


# ------------------------------------------------ invalid runtime settings --
def run_script(source, env_extra, timeout=120):
    env = dict(os.environ)
    env.update(env_extra)
    # A script that hangs dumps every thread's stack and exits before the timeout, so the failure
    # below shows where it stopped instead of only that it did.
    watchdog = f"import faulthandler\nfaulthandler.dump_traceback_later({max(timeout - 20, 10)}, exit=True)\n"
    result = subprocess.run([sys.executable, "-c", watchdog + textwrap.dedent(source)], env=env,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, result.stdout + result.stderr
    return json.loads(lines[0][len("RESULT "):])


NUM_THREADS_SCRIPT = """
import json
import numpy as np
import lrcore

param = np.linspace(-1.0, 1.0, 1 << 19, dtype=np.float32)   # 2 MiB
small = np.ones(5)
original = param.copy()
opt = lrcore.Adam([{"params": [param]}, {"params": [small]}], lr=0.1, amsgrad=True)
out = {}
try:
    opt.step([np.ones_like(param), np.ones_like(small)])
    out["error"] = None
except Exception as error:
    out["error"] = [type(error).__name__, str(error)]
out["param_unchanged"] = bool(np.array_equal(param, original))
out["small_unchanged"] = bool(np.array_equal(small, np.ones(5)))
out["state"] = {str(k): sorted(v) for k, v in opt.state_dict()["state"].items()}
out["created"] = [[name for name, arrays in s.items() if any(a is not None and a.any() for a in arrays)]
                  for s in opt._states]
out["step_count"] = opt.step_count
out["skipped_steps"] = opt.skipped_steps
out["last"] = opt.last_hyperparameters
print("RESULT " + json.dumps(out))
"""


@pytest.mark.parametrize("value", ["abc", "0", "-2", "3x"])
def test_an_invalid_LRCORE_NUM_THREADS_is_reported_before_anything_is_written(value):
    out = run_script(NUM_THREADS_SCRIPT, {"LRCORE_NUM_THREADS": value})
    assert out["error"] is not None, "the step went through with an invalid LRCORE_NUM_THREADS"
    kind, message = out["error"]
    assert kind == "ValueError"
    assert "LRCORE_NUM_THREADS" in message and value in message
    assert out["param_unchanged"] and out["small_unchanged"]
    assert out["state"] == {}
    assert out["created"] == [[], []]
    assert out["step_count"] == 0 and out["skipped_steps"] == 0
    assert out["last"] == []


# ------------------------------------------------------- KeyboardInterrupt --
INTERRUPT_SCRIPT = """
import json, os, signal, threading
import numpy as np
import lrcore
from lrcore import functional

# Ctrl-C must raise KeyboardInterrupt here whatever this process inherited: a job started in the
# background by a shell without job control (`cmd &` in a script) has SIGINT ignored, and Python
# then leaves it ignored, so the SIGINTs below would be dropped and the loop never end.
signal.signal(signal.SIGINT, signal.default_int_handler)

N = {size}
ROUNDS = {rounds}
grad = (np.arange(N, dtype=np.int32) % 13).astype(np.float32) - np.float32(5.75)
small_grad = np.linspace(-1, 1, 33)

def fresh_param():
    p = np.empty(N, np.float32)
    p.fill(0.5)
    return p

param, small = fresh_param(), np.ones(33)
opt = lrcore.Adam([{{"params": [param]}}, {{"params": [small]}}], lr=0.01)

# The reference: the same steps through the functional layer, one at a time, on separate arrays.
ref = {{"p": fresh_param(), "m": np.zeros(N, np.float32), "v": np.zeros(N, np.float32), "max": [None],
        "steps": np.zeros(1, np.int64)}}
small_ref = {{"p": np.ones(33), "m": np.zeros(33), "v": np.zeros(33), "steps": np.zeros(1, np.int64)}}
amsgrad_from = []   # the 0-based step number from which amsgrad is on

def advance_reference(to):
    while int(ref["steps"][0]) < to:
        amsgrad = bool(amsgrad_from) and int(ref["steps"][0]) >= amsgrad_from[0]
        functional.adam([ref["p"]], [grad], [ref["m"]], [ref["v"]], ref["steps"],
                        ref["max"] if amsgrad else None, lr=0.01, amsgrad=amsgrad)
        functional.adam([small_ref["p"]], [small_grad], [small_ref["m"]], [small_ref["v"]], small_ref["steps"],
                        lr=0.01)

def check(label, full):
    count = opt.step_count
    if full:
        steps = [v["step"] for k, v in sorted(opt.state_dict()["state"].items())]
    else:
        steps = [int(s) for group in opt._steps for s in group if s]
    maximum = opt._states[0]["max_exp_avg_sq"][0]
    advance_reference(count)
    return {{
        "label": label, "step_count": count, "tensor_steps": steps, "skipped": opt.skipped_steps,
        "param_matches": bool(np.array_equal(param, ref["p"])),
        "state_matches": bool(np.array_equal(opt._states[0]["exp_avg"][0], ref["m"]) and
                              np.array_equal(opt._states[0]["exp_avg_sq"][0], ref["v"])),
        "small_matches": bool(np.array_equal(small, small_ref["p"])),
        "has_max": maximum is not None,
        "max_expected": bool(amsgrad_from) and count > amsgrad_from[0],
        "max_matches": maximum is None or bool(np.array_equal(maximum, ref["max"][0])),
    }}

rows = []
for delay, switch_amsgrad in ROUNDS:
    if switch_amsgrad:
        opt.param_groups[0]["amsgrad"] = True   # the next step has to create a large state array
        amsgrad_from.append(opt.step_count)
    start_count = opt.step_count
    timer = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    interrupted = False
    try:
        timer.start()
        while True:
            opt.step([grad, small_grad])
    except KeyboardInterrupt:
        interrupted = True
    timer.join()
    row = check(f"delay={{delay}} amsgrad_switch={{switch_amsgrad}}", True)
    row["interrupted"] = interrupted
    row["steps_in_round"] = opt.step_count - start_count
    rows.append(row)
    opt.step([grad, small_grad])   # a further step works and continues the same trajectory
    rows.append(check(f"after delay={{delay}} amsgrad_switch={{switch_amsgrad}}", False))
print("RESULT " + json.dumps(rows))
"""


# 2**25 float32 elements (128 MiB per array): with the optimizer's four arrays, the
# gradient, the reference's four and state_dict's copies this stays under 2 GB.
INTERRUPT_SIZE = 1 << 25
INTERRUPT_ROUNDS = [(0.0, False), (0.003, False), (0.017, False), (0.041, False), (0.11, False), (0.001, True),
                    (0.07, False)]


def test_keyboard_interrupt_leaves_whole_steps_only():
    script = INTERRUPT_SCRIPT.format(size=INTERRUPT_SIZE, rounds=INTERRUPT_ROUNDS)
    rows = run_script(script, {}, timeout=300)
    assert len(rows) == 2 * len(INTERRUPT_ROUNDS)
    for row in rows:
        label, count = row["label"], row["step_count"]
        if not label.startswith("after"):
            assert row["interrupted"], label
        # Both tensors were stepped exactly step_count times (or never, before the first step).
        assert row["tensor_steps"] == ([count, count] if count else []), (label, row)
        assert row["skipped"] == 0, label
        assert row["param_matches"], f"{label}: the parameter is not the result of {count} whole steps"
        assert row["state_matches"], f"{label}: Adam's moments are not the result of {count} whole steps"
        assert row["small_matches"], label
        assert row["has_max"] == row["max_expected"], (label, row)
        assert row["max_matches"], label
    assert sum(row["steps_in_round"] > 0 for row in rows if "steps_in_round" in row) >= 3
