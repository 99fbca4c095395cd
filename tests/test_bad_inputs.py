"""Bad inputs through every rule, functional and class: a clear error naming the argument, nothing modified.

Each case corrupts one argument of a valid call (after a first valid step, so
every state array exists and holds non-trivial values), snapshots every array
involved, makes the call, and checks the outcome: the expected exception and
message, and every array bitwise unchanged; or, for inputs that are valid by
design (zero-size arrays, read-only gradients, ``None`` gradients), the
documented behaviour.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from rules import RULES

# One configuration per rule that keeps every state array the rule has.
FULL_CONFIGS = {
    "sgd": dict(lr=0.05, momentum=0.9),
    "adagrad": dict(lr=0.05, lr_decay=0.01),
    "rmsprop": dict(lr=0.01, centered=True, momentum=0.5),
    "adam": dict(lr=0.01, amsgrad=True),
    "adamw": dict(lr=0.01, amsgrad=True),
    "adafactor": dict(lr=0.01, weight_decay=0.1),
    "nadam": dict(lr=0.01, weight_decay=0.1),
    "radam": dict(lr=0.01, weight_decay=0.1),
    "adamax": dict(lr=0.01, weight_decay=0.1),
    "lion": dict(lr=0.01, weight_decay=0.1),
    "adadelta": dict(lr=1.0, weight_decay=0.01),
    "rprop": dict(lr=0.01),
    "asgd": dict(lr=0.01, t0=0.0, weight_decay=0.01),
    "schedule_free_adamw": dict(lr=0.01, weight_decay=0.01, warmup_steps=2),
    "schedule_free_sgd": dict(lr=0.05, weight_decay=0.01),
}
STATE_LISTS = {
    "sgd": ["momentum_buffers"],
    "adagrad": ["state_sums"],
    "rmsprop": ["square_avgs", "grad_avgs", "momentum_buffers"],
    "adam": ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
    "adamw": ["exp_avgs", "exp_avg_sqs", "max_exp_avg_sqs"],
    # Only matrices have these (the parameters below are); row_var and col_var never have one
    # shape, so the two-state alias case cannot reach the overlap check (test_adafactor.py has it).
    "adafactor": ["row_vars"],
    "nadam": ["exp_avgs", "exp_avg_sqs"],
    "radam": ["exp_avgs", "exp_avg_sqs"],
    "adamax": ["exp_avgs", "exp_infs"],
    "lion": ["exp_avgs"],
    "adadelta": ["square_avgs", "acc_deltas"],
    "rprop": ["prevs", "step_sizes"],
    "asgd": ["axs"],
    "schedule_free_adamw": ["exp_avg_sqs", "zs"],  # zs second: its None entries are valid (created from params)
    "schedule_free_sgd": ["zs"],
}
# Per-tensor scalar state lists (0-d float64 arrays), by the functional name.
SCALAR_LISTS = {
    "nadam": ["mu_products"],
    "asgd": ["mus", "etas"],
}
# A rule's hyperparameters that must be finite, by the functional name.
HYPERPARAMETERS = {
    "sgd": ["lr", "momentum", "dampening", "weight_decay"],
    "adagrad": ["lr", "lr_decay", "weight_decay", "eps"],
    "rmsprop": ["lr", "alpha", "eps", "weight_decay", "momentum"],
    "adam": ["lr", "beta1", "beta2", "eps", "weight_decay"],
    "adamw": ["lr", "beta1", "beta2", "eps", "weight_decay"],
    "adafactor": ["lr", "beta2_decay", "eps1", "eps2", "d", "weight_decay"],
    "nadam": ["lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay"],
    "radam": ["lr", "beta1", "beta2", "eps", "weight_decay"],
    "adamax": ["lr", "beta1", "beta2", "eps", "weight_decay"],
    "lion": ["lr", "beta1", "beta2", "weight_decay"],
    "adadelta": ["lr", "rho", "eps", "weight_decay"],
    "rprop": ["lr", "etaminus", "etaplus", "step_size_min", "step_size_max"],
    "asgd": ["lr", "lambd", "alpha", "t0", "weight_decay"],
    "schedule_free_adamw": ["lr", "beta1", "beta2", "eps", "weight_decay", "warmup_steps", "r", "weight_lr_power"],
    "schedule_free_sgd": ["lr", "momentum", "weight_decay", "warmup_steps", "r", "weight_lr_power"],
}
# The parameters of the functional cases: params[1] is (2, 3) in every rule's messages;
# params[0] is a vector, or a matrix for a rule whose states above only matrices have.
PARAM_SHAPES = {"adafactor": [(4, 2), (2, 3)]}
# Hyperparameters with a range narrower than "finite", with a value just outside it.
OUT_OF_RANGE = {
    "nadam": {"momentum_decay": -1e-3, "beta1": 1.0, "beta2": -0.1, "eps": -1e-8},
    "radam": {"beta1": 1.0, "beta2": 1.5, "eps": -1e-8, "weight_decay": -0.1},
    "adamax": {"beta1": -0.5, "beta2": 1.0, "eps": -1e-8, "weight_decay": -0.1},
    "lion": {"beta1": 1.0, "beta2": -0.1, "weight_decay": -0.1},
    "adadelta": {"rho": 1.5, "eps": -1e-6, "weight_decay": -0.1},
    "rprop": {"etaminus": 1.0, "etaplus": 1.0, "step_size_min": 60.0, "step_size_max": -1.0},
    "asgd": {"lambd": -1e-4, "weight_decay": -0.1},
}
# Keys of a functional call's arguments that are not per-tensor lists.
NOT_LISTS = ("params", "grads", "steps", "group_state")
RULE_BY_NAME = {rule.name: rule for rule in RULES}


# ------------------------------------------------------------ call set-up --
def functional_args(rule_name):
    """A valid call's arguments after one step: {"params", "grads", <state lists>, "steps"?}."""
    rule = RULE_BY_NAME[rule_name]
    config = FULL_CONFIGS[rule_name]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(s).astype(np.float32) for s in PARAM_SHAPES.get(rule_name, [(8,), (2, 3)])]
    state = rule.new_state(params, config)
    grads = [rng.standard_normal(p.shape).astype(p.dtype) for p in params]
    rule.functional_call(lrcore.functional, params, grads, state, config)
    args = {"params": params, "grads": [rng.standard_normal(p.shape).astype(p.dtype) for p in params]}
    args.update(state)
    return args


def call_functional(rule_name, args, overrides=None):
    rule = RULE_BY_NAME[rule_name]
    config = dict(FULL_CONFIGS[rule_name])
    state = {k: v for k, v in args.items() if k not in ("params", "grads")}
    hyper = dict(overrides or {})
    for h in rule.description.hyperparameters:  # a pair's element given by its native name (beta1, etaminus)
        if len(h.native) > 1 and any(native in hyper for native in h.native):
            pair = config.pop(h.name, h.default)
            config[h.name] = tuple(hyper.pop(native, value) for native, value in zip(h.native, pair))
    config.update(hyper)
    rule.functional_call(lrcore.functional, args["params"], args["grads"], state, config)


def arrays_in(value, out):
    if isinstance(value, np.ndarray):
        out.append(value)
    elif isinstance(value, (list, tuple)):
        for item in value:
            arrays_in(item, out)
    elif isinstance(value, dict):
        for item in value.values():
            arrays_in(item, out)
    return out


def snapshot(value):
    # Object arrays hold no numbers to corrupt; absurdly large (broadcast) views are read-only.
    return [(a, a.copy()) for a in arrays_in(value, []) if a.dtype != object and a.nbytes < 1 << 30]


def assert_unchanged(snap):
    for array, copy in snap:
        assert array.dtype == copy.dtype and array.shape == copy.shape
        same = np.ascontiguousarray(array).view(np.uint8), np.ascontiguousarray(copy).view(np.uint8)
        assert np.array_equal(*same), "an array was modified by a failed call"


# ------------------------------------------------------------ corruptions --
def other_dtype_like(array, dtype):
    return np.ones(array.shape, dtype=dtype) if dtype != object else np.ones(array.shape).astype(object)


def strided_like(array):
    return np.zeros(array.size * 2, array.dtype)[::2].reshape(array.shape)


def readonly(array):
    array.flags.writeable = False
    return array


def set_item(key, index, make):
    def corrupt(args):
        args[key][index] = make(args, args[key][index])
    return corrupt


def set_list(key, make):
    def corrupt(args):
        args[key] = make(args, args[key])
    return corrupt


def functional_cases(rule_name):
    """(id, corrupt, error, message) for one rule; error None means the call is valid."""
    first_state = STATE_LISTS[rule_name][0]
    cases = []
    # (float16 is a parameter dtype: tests/test_mixed_precision.py covers its bad combinations.)
    for dtype, name in [(np.int64, "int64"), (np.complex64, "complex64"), (object, "object")]:
        cases.append((f"grad-{name}", set_item("grads", 1, lambda a, x, d=dtype: other_dtype_like(x, d)),
                      TypeError, rf"grads\[1\] has dtype {name}"))
        cases.append((f"param-{name}", set_item("params", 1, lambda a, x, d=dtype: other_dtype_like(x, d)),
                      TypeError, rf"params\[1\] must have dtype float32, float64, bfloat16"))
        cases.append((f"state-{name}", set_item(first_state, 0, lambda a, x, d=dtype: other_dtype_like(x, d)),
                      TypeError, rf"{first_state}\[0\] has dtype {name}"))
    cases += [
        ("grad-float64-for-float32", set_item("grads", 0, lambda a, x: x.astype(np.float64)),
         TypeError, r"grads\[0\] has dtype float64 but params\[0\] has dtype float32"),
        ("param-big-endian", set_item("params", 0, lambda a, x: x.astype(">f4")),
         TypeError, r"params\[0\] must have dtype float32, float64, bfloat16 \(ml_dtypes\) or float16 \(native byte order\)"),
        ("grad-shape", set_item("grads", 1, lambda a, x: np.zeros((3, 2), x.dtype)),
         ValueError, r"grads\[1\] has shape \(3, 2\) but params\[1\] has shape \(2, 3\)"),
        ("grad-flattened", set_item("grads", 1, lambda a, x: x.reshape(-1).copy()),
         ValueError, r"grads\[1\] has shape \(6,\)"),
        ("state-shape", set_item(first_state, 1, lambda a, x: np.zeros(7, np.float32)),
         ValueError, rf"{first_state}\[1\] has shape \(7,\)"),
        ("grads-too-short", set_list("grads", lambda a, x: x[:1]), ValueError, r"grads has 1 entries but params has 2"),
        ("grads-too-long", set_list("grads", lambda a, x: x + [x[0].copy()]),
         ValueError, r"grads has 3 entries but params has 2"),
        ("state-too-long", set_list(first_state, lambda a, x: list(x) + [np.zeros(3, np.float32)]),
         ValueError, rf"{first_state} has 3 entries but params has 2"),
        ("param-strided", set_item("params", 0, lambda a, x: strided_like(x)), ValueError,
         r"params\[0\] must be C-contiguous"),
        ("param-fortran", set_item("params", 1, lambda a, x: np.asfortranarray(x)), ValueError,
         r"params\[1\] must be C-contiguous"),
        ("grad-strided", set_item("grads", 0, lambda a, x: strided_like(x)), ValueError,
         r"grads\[0\] must be C-contiguous"),
        ("state-strided", set_item(first_state, 0, lambda a, x: strided_like(x)), ValueError,
         rf"{first_state}\[0\] must be C-contiguous"),
        ("grad-broadcast-absurd-size", set_item("grads", 0, lambda a, x: np.broadcast_to(np.float32(1), (2**40,))),
         ValueError, r"grads\[0\] has shape \(1099511627776,\)"),
        ("param-readonly", set_item("params", 1, lambda a, x: readonly(x)), ValueError, r"params\[1\] is read-only"),
        ("state-readonly", set_item(first_state, 1, lambda a, x: readonly(x)), ValueError,
         rf"{first_state}\[1\] is read-only"),
        ("alias-param-grad", set_item("grads", 1, lambda a, x: a["params"][1]), ValueError,
         r"grads\[1\] and params\[1\] share memory"),
        # The state a view of the parameter's memory, in the state's own shape.
        ("alias-state-param", set_item(first_state, 0, lambda a, x: a["params"][0].reshape(-1)[:x.size].reshape(x.shape)),
         ValueError,
         rf"{first_state}\[0\] and params\[0\] share memory"),
        ("alias-grad-other-tensor-param", "cross-grad", ValueError, r"grads\[0\] and params\[1\] share memory"),
        ("alias-state-across-tensors", "cross-state", ValueError, "share memory"),
        ("overlapping-param-views", "overlap-params", ValueError, r"params\[\d\] and params\[\d\] share memory"),
        ("param-none", set_item("params", 0, lambda a, x: None), TypeError, r"params\[0\] must be a numpy array"),
        ("grad-list-not-array", set_item("grads", 0, lambda a, x: x.tolist()), TypeError,
         r"grads\[0\] must be a numpy array"),
        ("grad-string", set_item("grads", 0, lambda a, x: "gradient"), TypeError, r"grads\[0\] must be a numpy array"),
        ("grads-string", set_list("grads", lambda a, x: "grads"), TypeError, "grads must be a list"),
        ("grads-dict", set_list("grads", lambda a, x: dict(enumerate(x))), TypeError, "grads must be a list"),
        ("grads-array", set_list("grads", lambda a, x: x[0]), TypeError, "grads must be a list"),
        ("params-dict", set_list("params", lambda a, x: dict(enumerate(x))), TypeError, "params must be a list"),
        ("params-none", set_list("params", lambda a, x: None), TypeError, "params must be a list"),
        # Valid by design:
        ("grad-none-skips", set_item("grads", 1, lambda a, x: None), None, "skip"),
        ("grad-readonly-ok", set_item("grads", 1, lambda a, x: readonly(x)), None, "ok"),
        ("zero-size-no-op", "zero-size", None, "no-op"),
    ]
    for name in SCALAR_LISTS.get(rule_name, []):
        cases += [
            (f"{name}-float32", set_item(name, 0, lambda a, x: np.array(1.0, np.float32)), TypeError,
             rf"{name}\[0\] must be a 0-d float64 numpy array, got float32"),
            (f"{name}-shape", set_item(name, 1, lambda a, x: np.ones(1)), TypeError,
             rf"{name}\[1\] must be a 0-d float64 numpy array, got float64 of shape \(1,\)"),
            (f"{name}-python-float", set_item(name, 0, lambda a, x: 0.5), TypeError,
             rf"{name}\[0\] must be a 0-d float64 numpy array"),
            (f"{name}-readonly", set_item(name, 1, lambda a, x: readonly(x)), ValueError, rf"{name}\[1\] is read-only"),
            (f"{name}-shared", set_item(name, 1, lambda a, x, n=name: a[n][0]), ValueError, "share memory"),
            (f"{name}-too-short", set_list(name, lambda a, x: x[:1]), ValueError, rf"{name} has 1 entries"),
            (f"{name}-missing", set_list(name, lambda a, x: None), TypeError, rf"{name} must be a list"),
            (f"{name}-tuple-with-none", set_list(name, lambda a, x: (None, x[1])), TypeError,
             rf"{name} must be a list when it has None entries"),
        ]
    for name, value in OUT_OF_RANGE.get(rule_name, {}).items():
        cases.append((f"{name}={value}", ("hyper", {name: value}), ValueError, rf"{name} must be"))
    description = RULE_BY_NAME[rule_name].description
    if not next(s for s in description.states if s.list_name == first_state).kernel_initialized:
        cases += [
            ("state-none", set_item(first_state, 0, lambda a, x: None), TypeError,
             rf"{first_state}\[0\] must be a numpy array"),
            ("state-list-none", set_list(first_state, lambda a, x: None), TypeError, f"{first_state} must be a list"),
        ]
    if "steps" in description.functional_arguments:
        cases += [
            ("steps-int32", set_list("steps", lambda a, x: x.astype(np.int32)), TypeError,
             "steps must have dtype int64"),
            ("steps-negative", set_list("steps", lambda a, x: np.array([-1, 0], np.int64)), ValueError,
             r"steps\[0\] must be >= 0"),
            ("steps-wrong-length", set_list("steps", lambda a, x: np.zeros(5, np.int64)), ValueError,
             r"steps must have shape \(2,\)"),
            ("steps-list", set_list("steps", lambda a, x: [1, 1]), TypeError, "steps must be a numpy array"),
        ]
    if len(STATE_LISTS[rule_name]) > 1:
        second = STATE_LISTS[rule_name][1]
        cases.append(("alias-two-states", set_item(second, 1, lambda a, x: a[first_state][1]), ValueError,
                      rf"({second}\[1\] and {first_state}\[1\]|{first_state}\[1\] and {second}\[1\]) share memory"))
    if description.group_scalars:
        cases += group_state_cases()
    for name in HYPERPARAMETERS[rule_name]:
        for value in (math.nan, math.inf, -math.inf):
            cases.append((f"{name}={value}", ("hyper", {name: value}), ValueError, rf"{name} must be"))
    cases.append(("lr-string", ("hyper", {"lr": "fast"}), TypeError, "lr must be a number, got str"))
    cases.append(("lr-none", ("hyper", {"lr": None}), TypeError, "lr must be a number, got NoneType"))
    cases.append(("lr-huge-int", ("hyper", {"lr": 10**400}), ValueError, "lr must be a finite number, got an int too large"))
    cases.append(("lr-tiny-negative", ("hyper", {"lr": -1e-300}), ValueError, r"lr must be a finite number >= 0, got -1e-300"))
    return cases


def set_group_state(index, value):
    def corrupt(args):
        args["group_state"][index] = value
    return corrupt


def alias_group_state_with_param(args):
    # A float64 view of params[0]'s memory holding a valid group state: only the overlap check can refuse it.
    view = args["params"][0].view(np.float64)
    view[:] = args["group_state"]
    args["group_state"] = view


def group_state_cases():
    """The schedule-free group state [k, lr_max, weight_sum, train_mode] corrupted."""
    return [
        ("group-state-float32", set_list("group_state", lambda a, x: x.astype(np.float32)), TypeError,
         r"group_state must be a writeable, contiguous float64 array of shape \(4,\)"),
        ("group-state-short", set_list("group_state", lambda a, x: x[:3].copy()), TypeError, "group_state must be"),
        ("group-state-list", set_list("group_state", lambda a, x: list(x)), TypeError, "group_state must be"),
        ("group-state-none", set_list("group_state", lambda a, x: None), TypeError, "group_state must be"),
        ("group-state-readonly", set_list("group_state", lambda a, x: readonly(x)), TypeError, "group_state must be"),
        ("group-state-strided", set_list("group_state", lambda a, x: np.repeat(x, 2)[::2]), TypeError,
         "group_state must be"),
        ("group-state-k-fraction", set_group_state(0, 1.5), ValueError, r"group_state k must be an integer"),
        ("group-state-k-negative", set_group_state(0, -1.0), ValueError, r"group_state k must be an integer"),
        ("group-state-k-huge", set_group_state(0, 2.0**53), ValueError, r"group_state k must be an integer"),
        ("group-state-lr-max-nan", set_group_state(1, math.nan), ValueError, "group_state lr_max must be"),
        ("group-state-lr-max-negative", set_group_state(1, -0.5), ValueError, "group_state lr_max must be"),
        ("group-state-weight-sum-negative", set_group_state(2, -1.0), ValueError, "group_state weight_sum must be"),
        ("group-state-weight-sum-inf", set_group_state(2, math.inf), ValueError, "group_state weight_sum must be"),
        ("group-state-mode-2", set_group_state(3, 2.0), ValueError, "group_state train_mode must be 0 or 1"),
        ("group-state-eval-mode", set_group_state(3, 0.0), RuntimeError, r"eval mode .*call train\(\) before step"),
        ("group-state-aliases-param", alias_group_state_with_param, ValueError, "share memory"),
        ("weight-overflows", ("hyper", {"r": 2000.0}), ValueError, r"the average's weight .* is not finite at k = 1"),
    ]
SCALARS = {name for names in SCALAR_LISTS.values() for name in names}


def apply(corrupt, args, rule_name=None):
    """Applies a corruption; returns hyperparameter overrides."""
    if callable(corrupt):
        corrupt(args)
        return {}
    if isinstance(corrupt, tuple):
        return corrupt[1]
    first_state = next(k for k in args if k not in NOT_LISTS)
    if corrupt in ("cross-grad", "cross-state"):
        # Tensor 1 made like tensor 0 (same shapes), so only the aliasing is wrong.
        args["params"][1] = np.ones_like(args["params"][0])
        args["grads"][1] = np.ones_like(args["params"][0])
        for key in args:
            if key not in (*NOT_LISTS, *SCALARS) and args[key] is not None and args[key][1] is not None:
                args[key][1] = np.zeros_like(args[key][0])
        if corrupt == "cross-grad":
            args["grads"][0] = args["params"][1]
        else:
            args[first_state][1] = args[first_state][0]
    elif corrupt == "overlap-params":
        first, second = args["params"][0].shape, args["params"][1].shape
        buffer = np.zeros(max(int(np.prod(first)), 4 + int(np.prod(second))), np.float32)
        args["params"][0] = buffer[0:int(np.prod(first))].reshape(first)
        args["params"][1] = buffer[4:4 + int(np.prod(second))].reshape(second)
    elif corrupt == "zero-size":
        states = {} if rule_name is None else {s.list_name: s for s in RULE_BY_NAME[rule_name].description.states}
        for key in args:
            if key in ("steps", "group_state", *SCALARS) or args[key] is None:
                continue
            state = states.get(key)
            shape = (0, 3) if state is None else state.shape_for((0, 3))
            args[key] = [np.zeros(shape, np.float32) if x is not None else None for x in args[key]]
    return {}


FUNCTIONAL_CASES = [(rule_name, *case) for rule_name in FULL_CONFIGS for case in functional_cases(rule_name)]


@pytest.mark.parametrize(("rule_name", "case_id", "corrupt", "error", "message"), FUNCTIONAL_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in FUNCTIONAL_CASES])
def test_functional(rule_name, case_id, corrupt, error, message):
    args = functional_args(rule_name)
    overrides = apply(corrupt, args, rule_name)
    snap = snapshot(args)
    if error is None:
        steps_before = None if "steps" not in args else args["steps"].copy()
        call_functional(rule_name, args, overrides)
        if message == "skip":  # the skipped tensor is untouched; its counter stays
            assert_unchanged([(a, c) for a, c in snap if a is args["params"][1]])
            if steps_before is not None:
                assert args["steps"][1] == steps_before[1] and args["steps"][0] == steps_before[0] + 1
        elif message == "no-op":
            if steps_before is not None:
                assert np.array_equal(args["steps"], steps_before + 1)
        else:
            assert not np.array_equal(args["params"][1], dict((id(a), c) for a, c in snap)[id(args["params"][1])])
        return
    with pytest.raises(error, match=message):
        call_functional(rule_name, args, overrides)
    assert_unchanged(snap)


# ---------------------------------------------------------------- classes --
def class_setup(rule_name, **kwargs):
    rule = RULE_BY_NAME[rule_name]
    rng = np.random.default_rng(0)
    params = [rng.standard_normal(8).astype(np.float32), rng.standard_normal((2, 3)).astype(np.float64)]
    opt = rule.optimizer(params, **FULL_CONFIGS[rule_name], **kwargs)
    assert opt.step([np.ones_like(p) for p in params]) is True
    return opt, params


def good_grads(params):
    return [np.full_like(p, 0.5) for p in params]


STEP_CASES = [
    ("grads-too-short", lambda p, g: g[:1], ValueError, "grads has 1 entries but the optimizer has 2 parameters"),
    ("grads-too-long", lambda p, g: g + g[:1], ValueError, "grads has 3 entries"),
    ("grads-string", lambda p, g: "grads", TypeError, "grads must be a list"),
    ("grads-dict", lambda p, g: dict(enumerate(g)), TypeError, "grads must be a list"),
    ("grads-array", lambda p, g: g[0], TypeError, "grads must be a list"),
    ("grads-none", lambda p, g: None, TypeError, "grads must be a list"),
    ("grad-int", lambda p, g: [g[0].astype(np.int32), g[1]], TypeError, r"grads\[0\] has dtype int32"),
    ("grad-float16", lambda p, g: [g[0].astype(np.float16), g[1]], TypeError, r"grads\[0\] has dtype float16"),
    ("grad-object", lambda p, g: [g[0].astype(object), g[1]], TypeError, r"grads\[0\] has dtype object"),
    ("grad-wrong-float", lambda p, g: [g[0], g[1].astype(np.float32)], TypeError,
     r"grads\[1\] has dtype float32 but params\[1\] has dtype float64"),
    ("grad-shape", lambda p, g: [g[0], g[1].T.copy()], ValueError, r"grads\[1\] has shape \(3, 2\)"),
    ("grad-strided", lambda p, g: [strided_like(g[0]), g[1]], ValueError, r"grads\[0\] must be C-contiguous"),
    ("grad-string-entry", lambda p, g: ["g", g[1]], TypeError, r"grads\[0\] must be a numpy array"),
    ("grad-is-param", lambda p, g: [p[0], g[1]], ValueError, r"grads\[0\] and params\[0\] share memory"),
]


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
@pytest.mark.parametrize(("case_id", "make", "error", "message"), STEP_CASES, ids=[c[0] for c in STEP_CASES])
def test_class_step(rule_name, case_id, make, error, message):
    opt, params = class_setup(rule_name)
    grads = make(params, good_grads(params))
    before = opt.state_dict()
    snap = snapshot([params, before])
    with pytest.raises(error, match=message):
        opt.step(grads)
    assert_unchanged(snap)
    after = opt.state_dict()
    assert after["step_count"] == before["step_count"] == 1
    assert_unchanged([(a, b) for a, b in zip(arrays_in(after, []), arrays_in(before, []))])


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
def test_class_step_gradient_is_another_parameter_in_the_same_group(rule_name):
    rule = RULE_BY_NAME[rule_name]
    params = [np.ones(5, np.float32), np.full(5, 2.0, np.float32)]
    opt = rule.optimizer(params, **FULL_CONFIGS[rule_name])
    snap = snapshot(params)
    with pytest.raises(ValueError, match=r"grads\[0\] and params\[1\] share memory"):
        opt.step([params[1], np.ones(5, np.float32)])
    assert_unchanged(snap)


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
@pytest.mark.parametrize("bad", [math.nan, math.inf, -1.0])
def test_class_schedule_yielding_a_bad_lr(rule_name, bad):
    opt, params = class_setup(rule_name)
    opt.param_groups[0]["lr"] = lambda t: bad
    before = opt.state_dict()
    snap = snapshot([params, before])
    with pytest.raises(ValueError, match="lr must be"):
        opt.step(good_grads(params))
    assert_unchanged(snap)
    assert opt.step_count == 1


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
def test_class_valid_edge_inputs(rule_name):
    opt, params = class_setup(rule_name)
    snap = snapshot(params)
    assert opt.step([None, None]) is True  # every gradient None: nothing written, counted as a step
    assert_unchanged(snap)
    ro = [readonly(g) for g in good_grads(params)]
    assert opt.step(ro) is True
    rule = RULE_BY_NAME[rule_name]
    empty = [np.zeros((0,), np.float32), np.zeros((3, 0)), np.ones(2, np.float32)]
    opt2 = rule.optimizer(empty, **FULL_CONFIGS[rule_name])
    assert opt2.step([np.zeros((0,), np.float32), np.zeros((3, 0)), np.ones(2, np.float32)]) is True


CONSTRUCTOR_CASES = [
    ("param-int", lambda: [np.zeros(3, np.int64)], TypeError, r"params\[0\] must have dtype float32, float64, bfloat16"),
    ("param-complex64", lambda: [np.zeros(3, np.complex64)], TypeError, r"params\[0\] must have dtype"),
    ("param-object", lambda: [np.zeros(3).astype(object)], TypeError, r"params\[0\] must have dtype"),
    ("param-strided", lambda: [np.zeros(6, np.float32)[::2]], ValueError, r"params\[0\] must be C-contiguous"),
    ("param-readonly", lambda: [readonly(np.zeros(3, np.float32))], ValueError, r"params\[0\] is read-only"),
    ("param-none", lambda: [None], TypeError, r"params\[0\] must be a numpy array"),
    ("param-string", lambda: ["w"], TypeError, r"params\[0\] must be a numpy array"),
    ("params-empty", lambda: [], ValueError, "params is empty"),
    ("params-single-array", lambda: np.zeros(3, np.float32), TypeError, "not a single array"),
    ("params-none", lambda: None, TypeError, "params must be a list of arrays or of parameter groups, got NoneType"),
    ("params-int", lambda: 5, TypeError, "params must be a list of arrays or of parameter groups, got int"),
    ("params-dict", lambda: {"params": [np.zeros(3, np.float32)]}, TypeError, "got dict"),
    ("group-params-none", lambda: [{"params": None}], TypeError, r'param_groups\[0\]\["params"\] must be a list'),
    ("group-without-params", lambda: [{"lr": 0.1}], TypeError, "parameter group must be a dict"),
    ("params-twice", "twice", ValueError, r"params\[1\] and params\[0\] share memory"),
    ("params-overlapping-views", "overlap", ValueError, r"params\[1\] and params\[0\] share memory"),
]


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
@pytest.mark.parametrize(("case_id", "make", "error", "message"), CONSTRUCTOR_CASES,
                         ids=[c[0] for c in CONSTRUCTOR_CASES])
def test_class_constructor(rule_name, case_id, make, error, message):
    if make == "twice":
        p = np.zeros(3, np.float32)
        params = [p, p]
    elif make == "overlap":
        buffer = np.zeros(10, np.float32)
        params = [buffer[:6], buffer[4:]]
    else:
        params = make()
    with pytest.raises(error, match=message):
        RULE_BY_NAME[rule_name].optimizer(params, **FULL_CONFIGS[rule_name])


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
@pytest.mark.parametrize("value", [math.nan, math.inf, "0.1", None])
def test_class_constructor_rejects_bad_lr(rule_name, value):
    config = dict(FULL_CONFIGS[rule_name], lr=value)
    with pytest.raises((TypeError, ValueError), match="lr must be"):
        RULE_BY_NAME[rule_name].optimizer([np.zeros(3, np.float32)], **config)


@pytest.mark.parametrize("rule_name", list(FULL_CONFIGS))
@pytest.mark.parametrize("value", [1, "yes", None])
def test_class_constructor_rejects_bad_skip_nonfinite(rule_name, value):
    with pytest.raises(TypeError, match="skip_nonfinite must be a bool"):
        RULE_BY_NAME[rule_name].optimizer([np.zeros(3, np.float32)], skip_nonfinite=value)


# -------------------------------------------------- gradient-wide helpers --
GRADIENT_CASES = [
    ("string", "grads", TypeError, "grads must be a list"),
    ("dict", {0: np.zeros(3, np.float32)}, TypeError, "grads must be a list"),
    ("int-dtype", [np.zeros(3, np.int32)], TypeError, r"grads\[0\] must have dtype float32 or float64"),
    ("float16", [np.zeros(3, np.float16)], TypeError, r"grads\[0\] must have dtype float32 or float64"),
    ("object", [np.zeros(3).astype(object)], TypeError, r"grads\[0\] must have dtype"),
    ("strided", [np.zeros(6, np.float32)[::2]], ValueError, r"grads\[0\] must be C-contiguous"),
    ("string-entry", ["g"], TypeError, r"grads\[0\] must be a numpy array"),
]


@pytest.mark.parametrize(("case_id", "grads", "error", "message"), GRADIENT_CASES, ids=[c[0] for c in GRADIENT_CASES])
@pytest.mark.parametrize("function", ["all_finite", "global_norm", "clip_grad_norm"])
def test_gradient_functions(function, case_id, grads, error, message):
    from lrcore import gradients

    snap = snapshot(grads)
    call = getattr(gradients, function)
    with pytest.raises(error, match=message):
        call(grads, 1.0) if function == "clip_grad_norm" else call(grads)
    assert_unchanged(snap)


def test_clip_grad_norm_rejects_aliasing_readonly_and_bad_arguments():
    from lrcore import gradients

    g = np.full(4, 3.0, np.float32)
    snap = snapshot([g])
    with pytest.raises(ValueError, match=r"grads\[1\] and grads\[0\] share memory|grads\[0\] and grads\[1\] share"):
        gradients.clip_grad_norm([g, g], 1.0)
    with pytest.raises(ValueError, match="share memory"):
        gradients.clip_grad_norm([g[:3], g[2:]], 1.0)
    with pytest.raises(ValueError, match=r"grads\[0\] is read-only"):
        gradients.clip_grad_norm([readonly(g.copy())], 1.0)
    for max_norm, error in [(math.nan, ValueError), (-1.0, ValueError), ("1", TypeError), (None, TypeError)]:
        with pytest.raises(error, match="max_norm"):
            gradients.clip_grad_norm([g], max_norm)
    for norm_type, error in [(0, ValueError), (-2, ValueError), (math.nan, ValueError), ("two", TypeError),
                             (None, TypeError), (-math.inf, ValueError)]:
        with pytest.raises(error, match="norm_type"):
            gradients.clip_grad_norm([g], 1.0, norm_type)
    assert_unchanged(snap)
    # Read-only and aliased gradients are fine where nothing is written.
    assert gradients.all_finite([g, g, readonly(g.copy())])
    assert gradients.global_norm([g, g]) == pytest.approx(math.sqrt(2 * 4 * 9))
