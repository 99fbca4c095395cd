"""Adafactor: what the rule tables of the other test modules cannot reach.

Its state depends on each parameter's number of dimensions (row_var and
col_var, shaped like torch's, for 2 or more; variance for fewer), and its
kernels reduce along rows and columns, so this module checks, over parameters
of 0 to 4 dimensions with sizes that are not multiples of any vector width:
agreement with torch.optim.Adafactor (foreach=False) over 120 steps, bitwise
equality with lrcore.reference on every instruction set and thread count,
the shaped-state checks of the step and of checkpoints, and the range test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import lrcore
from lrcore import functional, reference
from rules import PARAMETER_SHAPES

STEPS = 120
# Shapes with rows and columns that are no multiple of 16 (and one long enough to be split
# over the thread pool: 300 x 1037 float32 is 1.2 MB, above the parallel threshold).
SHAPES = PARAMETER_SHAPES + [(300, 1037), (4100,)]
CONFIGS = [
    dict(),
    dict(lr=0.05, weight_decay=0.1),
    dict(lr=0.01, eps=(1e-6, 1e-3), maximize=True),
    dict(lr=0.02, beta2_decay=-0.5, d=1.5, eps=(None, 1e-2), weight_decay=0.01, maximize=True),
    dict(lr=0.3, eps=(0.0, 0.0)),  # eps1 = 0: the clamps only clamp at zero
]
CONFIG_IDS = ["defaults", "weight_decay", "eps1-maximize", "all", "eps-zero"]
# max |lrcore - torch| / max |torch| over a run (torch fuses multiply-adds, lrcore never does,
# and reduces in its own order).
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}


def gradients(rng, shapes, dtype):
    return [np.asarray(rng.standard_normal(s) + 0.1, dtype=dtype) for s in shapes]


def new_state(params):
    """The functional layer's state lists, as torch lays them out (None where a parameter has none)."""
    state = {}
    for s in lrcore.Adafactor.rule.states:
        state[s.list_name] = [np.zeros(s.shape_for(p.shape), p.dtype) if s.exists_for(p.shape) else None
                              for p in params]
    return state


def relative_error(ours, theirs):
    scale = max(float(np.max(np.abs(theirs))), 1e-300)
    return float(np.max(np.abs(ours - theirs))) / scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_matches_torch(each_isa, config, dtype):
    torch = pytest.importorskip("torch")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(7)
        params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in SHAPES]
        theirs = [torch.tensor(p.copy()) for p in params]
        opt = lrcore.Adafactor(params, **config)
        torch_opt = torch.optim.Adafactor(theirs, foreach=False, **config)
        for _ in range(STEPS):
            grads = gradients(rng, SHAPES, dtype)
            opt.step(grads)
            for t, g in zip(theirs, grads):
                t.grad = torch.from_numpy(g.copy())
            torch_opt.step()
    finally:
        torch.set_num_threads(previous)
    ours_state = opt.state_dict()["state"]
    for index, (p, t) in enumerate(zip(params, theirs)):
        assert relative_error(p, t.numpy()) <= TOLERANCE[dtype], SHAPES[index]
        their_state = torch_opt.state[t]
        names = {k for k in their_state if k != "step"}
        assert names == {k for k in ours_state[index] if k != "step"}, SHAPES[index]
        for name in names:
            value = their_state[name].numpy()
            assert ours_state[index][name].shape == value.shape, (name, SHAPES[index])
            assert relative_error(ours_state[index][name], value) <= TOLERANCE[dtype], (name, SHAPES[index])
        assert ours_state[index]["step"] == int(their_state["step"]) == STEPS


def run_functional(module, dtype, config, steps=4, shapes=SHAPES):
    rng = np.random.default_rng(11)
    params = [np.asarray(rng.standard_normal(s), dtype=dtype) for s in shapes]
    state = new_state(params)
    counters = np.zeros(len(params), np.int64)
    values = {"lr": 0.01, "beta2_decay": -0.8, "eps1": None, "eps2": 1e-3, "d": 1.0, "weight_decay": 0.0,
              "maximize": False}
    for name, value in config.items():
        if name == "eps":
            values["eps1"], values["eps2"] = value
        else:
            values[name] = value
    for step in range(steps):
        grads = gradients(rng, shapes, dtype)
        if step == 1:
            grads[0] = None  # a skipped tensor keeps its state and counter
        module.adafactor(params, grads, state["row_vars"], state["col_vars"], state["variances"], counters,
                         **values)
    arrays = params + [a for lists in state.values() for a in lists if a is not None]
    return arrays, counters


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
def test_bitwise_reference_on_every_isa_and_thread_count(each_isa, config, dtype, threads):
    previous = lrcore.get_num_threads()
    lrcore.set_num_threads(threads)
    try:
        ours, our_counters = run_functional(functional, dtype, config)
    finally:
        lrcore.set_num_threads(previous)
    theirs, their_counters = run_functional(reference, dtype, config)
    assert np.array_equal(our_counters, their_counters)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a.reshape(-1).view(np.uint8), b.reshape(-1).view(np.uint8))


def test_state_is_shaped_like_torchs_and_o_of_rows_plus_columns():
    w = np.zeros((3, 400, 500), np.float32)
    opt = lrcore.Adafactor([w, np.zeros(7, np.float32)])
    state = {s: arrays for s, arrays in opt._states[0].items()}
    assert state["row_var"][0].shape == (3, 400, 1) and state["col_var"][0].shape == (3, 1, 500)
    assert state["variance"][0] is None and state["row_var"][1] is None and state["col_var"][1] is None
    assert state["variance"][1].shape == (7,)
    assert sum(a.size for arrays in state.values() for a in arrays if a is not None) == 3 * 900 + 7


def test_functional_checks_shaped_state_and_modifies_nothing():
    params = [np.ones((4, 6), np.float32), np.ones(5, np.float32)]
    grads = [np.ones_like(p) for p in params]
    state = new_state(params)
    steps = np.zeros(2, np.int64)
    before = [p.copy() for p in params]

    def call(**changes):
        lists = {**state, **changes}
        functional.adafactor(params, grads, lists["row_vars"], lists["col_vars"], lists["variances"], steps)

    with pytest.raises(ValueError, match=r"row_vars\[0\] has shape \(4, 6\) but must have shape \(4, 1\) "
                                         r"for params\[0\] of shape \(4, 6\)"):
        call(row_vars=[np.zeros((4, 6), np.float32), None])
    with pytest.raises(ValueError, match=r"col_vars\[0\] has shape \(1, 4\) but must have shape \(1, 6\)"):
        call(col_vars=[np.zeros((1, 4), np.float32), None])
    with pytest.raises(TypeError, match=r"row_vars\[0\] must be a numpy array"):
        call(row_vars=[None, None])
    with pytest.raises(TypeError, match=r"variances must be a list, got None \(params\[1\] has fewer than 2"):
        call(variances=None)
    with pytest.raises(TypeError, match=r"col_vars\[0\] has dtype float64"):
        call(col_vars=[np.zeros((1, 6)), None])
    for p, b in zip(params, before):
        assert np.array_equal(p, b)
    assert not steps.any()
    # A list a parameter of this step does not use may be None; entries it does not read are ignored.
    functional.adafactor(params[1:], grads[1:], None, None, state["variances"][1:], steps[1:])
    functional.adafactor(params[:1], grads[:1], state["row_vars"][:1], state["col_vars"][:1], None, steps[:1])
    assert list(steps) == [1, 1]


def test_two_states_of_one_tensor_must_not_share_memory():
    params = [np.ones((1, 1), np.float32)]  # row_var and col_var both (1, 1)
    shared = np.zeros((1, 1), np.float32)
    with pytest.raises(ValueError, match=r"col_vars\[0\] and row_vars\[0\] share memory|row_vars\[0\] and "
                                         r"col_vars\[0\] share memory"):
        functional.adafactor(params, [np.ones_like(params[0])], [shared], [shared], [None], np.zeros(1, np.int64))
    assert params[0][0, 0] == 1.0 and shared[0, 0] == 0.0


@pytest.mark.parametrize(("arguments", "message"), [
    (dict(lr=-0.1), "lr must be a finite number >= 0"),
    (dict(beta2_decay=0.5), "beta2_decay must be a finite number <= 0, got 0.5"),
    (dict(beta2_decay=math.nan), "beta2_decay must be"),
    (dict(eps=(-1e-3, 1e-3)), "eps1 must be a finite number >= 0 or None, got -0.001"),
    (dict(eps=(math.nan, 1e-3)), "eps1 must be a finite number >= 0 or None, got nan"),
    (dict(eps=(math.inf, 1e-3)), "eps1 must be a finite number >= 0 or None, got inf"),
    (dict(eps=(None, -1.0)), "eps2 must be a finite number >= 0, got -1"),
    (dict(d=0.5), "d must be a finite number >= 1, got 0.5"),
    (dict(weight_decay=-0.1), "weight_decay must be a finite number >= 0"),
])
def test_torchs_ranges_name_the_argument(arguments, message):
    with pytest.raises(ValueError, match=message):
        lrcore.Adafactor([np.zeros(3, np.float32)], **arguments)
    # The same values from a schedule: refused at the step, nothing written.
    w = np.ones((2, 3), np.float32)
    opt = lrcore.Adafactor([w])
    name, value = next(iter(arguments.items()))
    if name == "eps":
        opt.param_groups[0]["eps"] = tuple((lambda t, v=v: v) for v in value)
    else:
        opt.param_groups[0][name] = lambda t: value
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.step([np.ones_like(w)])
    assert np.array_equal(w, np.ones_like(w)) and opt.step_count == 0
    assert opt.state_dict()["state"] == before["state"] == {}


def test_every_numeric_hyperparameter_takes_a_schedule():
    shapes = [(5, 7), (9,)]
    rng = np.random.default_rng(3)
    params = [np.asarray(rng.standard_normal(s), np.float64) for s in shapes]
    expected = [p.copy() for p in params]
    state = new_state(expected)
    counters = np.zeros(2, np.int64)
    lr, beta2_decay = (lambda t: 0.01 * (1 + t)), (lambda t: -0.5 - 0.1 * t)
    eps1, eps2 = (lambda t: None if t % 2 else 1e-5), (lambda t: 1e-3 * (t + 1))
    d, weight_decay = (lambda t: 1.0 + t), (lambda t: 0.01 * t)
    opt = lrcore.Adafactor(params, lr=lr, beta2_decay=beta2_decay, eps=(eps1, eps2), d=d, weight_decay=weight_decay)
    for t in range(4):
        grads = gradients(rng, shapes, np.float64)
        opt.step(grads)
        reference.adafactor(expected, grads, state["row_vars"], state["col_vars"], state["variances"], counters,
                            lr=lr(t), beta2_decay=beta2_decay(t), eps1=eps1(t), eps2=eps2(t), d=d(t),
                            weight_decay=weight_decay(t))
        for a, b in zip(params, expected):
            assert np.array_equal(a, b)
        assert opt.last_hyperparameters[0]["eps1"] == eps1(t)


def test_checkpoint_round_trip_and_shape_validation(tmp_path):
    shapes = [(6, 5), (2, 3, 4), (7,), ()]
    rng = np.random.default_rng(5)
    params = [np.asarray(rng.standard_normal(s), np.float32) for s in shapes]
    opt = lrcore.Adafactor(params, eps=(None, 1e-3), weight_decay=0.01)
    for _ in range(3):
        opt.step(gradients(rng, shapes, np.float32))
    path = tmp_path / "adafactor.npz"
    lrcore.save(path, opt)
    copies = [np.zeros_like(p) for p in params]
    twin = lrcore.Adafactor(copies, eps=(None, 1e-3), weight_decay=0.01)
    lrcore.load(path, twin)
    grads = gradients(rng, shapes, np.float32)
    opt.step(grads)
    twin.step(grads)
    for a, b in zip(params, copies):
        assert np.array_equal(a, b)
    # A state array of the wrong shape, or one a parameter of that shape does not have, is refused.
    saved = opt.state_dict()
    wrong = {**saved, "state": {**saved["state"], 0: {**saved["state"][0], "row_var": np.zeros((6, 5), np.float32)}}}
    with pytest.raises(ValueError, match=r"state\[0\]\['row_var'\] must be a float32 array of shape \(6, 1\)"):
        twin.load_state_dict(wrong)
    extra = {**saved, "state": {**saved["state"], 2: {**saved["state"][2], "row_var": np.zeros((7, 1), np.float32)}}}
    with pytest.raises(ValueError, match=r"state\[2\]\['row_var'\] must be None: it is kept only for parameters of "
                                         r"2 or more dimensions"):
        twin.load_state_dict(extra)
    after = twin.state_dict()
    assert all(np.array_equal(after["state"][k][n], v) for k, e in opt.state_dict()["state"].items()
               for n, v in e.items() if n != "step")


def test_range_test_restores_shaped_state():
    rng = np.random.default_rng(2)
    target = rng.standard_normal((8, 6))
    w = np.zeros((8, 6))
    b = np.zeros(6)
    opt = lrcore.Adafactor([w, b])

    def loss_and_grads():
        residual = w + b - target
        return 0.5 * float(np.sum(residual ** 2)), [residual, residual.sum(axis=0)]

    opt.step(loss_and_grads()[1])
    before = opt.state_dict()
    w_before, b_before = w.copy(), b.copy()
    result = lrcore.find_lr(opt, loss_and_grads, num_steps=20, start_lr=1e-4, end_lr=1.0)
    assert len(result.lrs) >= 2
    assert np.array_equal(w, w_before) and np.array_equal(b, b_before)
    after = opt.state_dict()
    for k, entry in before["state"].items():
        for name, value in entry.items():
            assert np.array_equal(after["state"][k][name], value) if name != "step" else after["state"][k][name] == value


def test_eps1_none_is_each_parameters_own_machine_epsilon():
    """In a group of float32 and float64 parameters each uses its own dtype's epsilon (torch's loop takes
    the first parameter's for all of them), so a float64 parameter steps as it would alone."""
    rng = np.random.default_rng(9)
    w32 = rng.standard_normal((3, 4)).astype(np.float32)
    w64 = np.ones((3, 4))
    alone = w64.copy()
    # Gradients of 1e-9: v = 1e-18 lies below float32's eps**2 (1.4e-14), above float64's (4.9e-32),
    # so the update is g / eps1 with the one and g / |g| (then clipped to rms 1) with the other.
    grads = [np.full((3, 4), 1e-9, np.float32), np.full((3, 4), 1e-9)]
    lrcore.Adafactor([w32, w64]).step(grads)
    lrcore.Adafactor([alone]).step([grads[1]])
    assert np.array_equal(w64, alone)
    explicit = np.ones((3, 4))
    lrcore.Adafactor([explicit], eps=(float(np.finfo(np.float32).eps), 1e-3)).step([grads[1]])
    assert not np.array_equal(explicit, alone)
