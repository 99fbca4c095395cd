"""Schedule-free AdamW and SGD: the schedulefree package's semantics, the modes, the group state.

Against the reference implementation (the ``schedulefree`` package 1.4, on
CPU torch tensors, single-tensor path) over more than 100 steps with fresh
gradients, switching between train and eval mid-run, float32 and float64,
1-D and 2-D tensors whose sizes are no multiple of any vector width, with
weight decay, warmup, r and weight_lr_power varied; skipped when the package
is not installed. The rest needs only lrcore: the mode switch is a
transaction, a step in eval mode is refused with nothing changed, the group
state (k, lr_max, weight_sum, train_mode) is saved and restored, and the
kernels are bitwise equal to lrcore.reference on every ISA and thread count.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import lrcore
from lrcore import functional, reference

SHAPES = [(1,), (37,), (1029,), (13, 7), (3, 301)]
STEPS = 120
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

ADAMW_CONFIGS = [
    dict(),
    dict(lr=0.01, weight_decay=0.05, warmup_steps=10),
    dict(lr=0.01, betas=(0.5, 0.99), r=0.5, weight_lr_power=1.0, eps=1e-6),
    dict(lr=0.02, betas=(0.3, 0.9), warmup_steps=25, weight_lr_power=0.0, weight_decay=0.01),  # eval weight -2.3
    dict(lr=0.005, r=2.0, weight_lr_power=3.0, warmup_steps=4.5),
]
SGD_CONFIGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.5, weight_decay=0.01, warmup_steps=10),
    dict(lr=0.2, momentum=0.3, r=1.0, weight_lr_power=0.0),
    dict(lr=0.1, momentum=0.95, r=0.25, weight_lr_power=1.5, warmup_steps=30),
]
CASES = ([("ScheduleFreeAdamW", "AdamWScheduleFree", c) for c in ADAMW_CONFIGS]
         + [("ScheduleFreeSGD", "SGDScheduleFree", c) for c in SGD_CONFIGS])
CASE_IDS = [f"{ours}-" + "-".join(f"{k}={v}" for k, v in config.items()) for ours, _, config in CASES]
# Steps after which both optimizers go to eval mode, are compared there, and come back.
SWITCH_AFTER = {7, 40, 41, 99}


@pytest.fixture(scope="module")
def torch_and_schedulefree():
    torch = pytest.importorskip("torch", reason="torch is not installed")
    schedulefree = pytest.importorskip("schedulefree", reason="schedulefree is not installed")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch, schedulefree
    torch.set_num_threads(previous)


def run_against_package(torch, schedulefree, ours_name, theirs_name, config, dtype, lr_schedule=None, seed=0):
    """Both optimizers over STEPS fresh gradients; yields (ours, theirs, mode) at every comparison point."""
    rng = np.random.default_rng(seed)
    initial = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    ours = [p.copy() for p in initial]
    theirs = [torch.tensor(p.copy()) for p in initial]
    settings = dict(config)
    if lr_schedule is not None:
        settings["lr"] = lr_schedule
    optimizer = getattr(lrcore, ours_name)(ours, **settings)
    package = getattr(schedulefree, theirs_name)(theirs, foreach=False, **config)
    # Both start in eval mode; the first train() moves nothing (no z yet).
    assert optimizer.train_mode is False and package.param_groups[0]["train_mode"] is False
    optimizer.train()
    package.train()
    for step in range(STEPS):
        grads = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
        if step % 11 == 5:
            grads[2] = None  # a tensor without a gradient this step: both skip it
        for t, g in zip(theirs, grads):
            t.grad = None if g is None else torch.from_numpy(g.copy())
        if lr_schedule is not None:
            package.param_groups[0]["lr"] = lr_schedule(step)  # a torch scheduler would set it so
        assert optimizer.step(grads) is True
        package.step()
        yield ours, theirs, "train"
        if step in SWITCH_AFTER:
            optimizer.eval()
            package.eval()
            yield ours, theirs, "eval"
            optimizer.train()
            package.train()
    yield ours, theirs, "train"
    # The group scalars agree exactly (they are computed in double by the same formulas).
    saved = optimizer.state_dict()["group_states"][0]
    group = package.param_groups[0]
    assert saved["k"] == group["k"] == STEPS
    assert saved["lr_max"] == group["lr_max"] and saved["weight_sum"] == group["weight_sum"]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("ours_name", "theirs_name", "config"), CASES, ids=CASE_IDS)
def test_matches_the_schedulefree_package(torch_and_schedulefree, ours_name, theirs_name, config, dtype):
    torch, schedulefree = torch_and_schedulefree
    modes = set()
    for ours, theirs, mode in run_against_package(torch, schedulefree, ours_name, theirs_name, config, dtype):
        modes.add(mode)
        for a, t in zip(ours, theirs):
            np.testing.assert_allclose(a, t.numpy(), **TOLERANCE[dtype], err_msg=mode)
    assert modes == {"train", "eval"}


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("ours_name", "theirs_name"), [("ScheduleFreeAdamW", "AdamWScheduleFree"),
                                                        ("ScheduleFreeSGD", "SGDScheduleFree")])
def test_an_lr_schedule_composes_with_the_warmup_as_in_the_package(torch_and_schedulefree, ours_name, theirs_name,
                                                                   dtype):
    torch, schedulefree = torch_and_schedulefree
    base = 0.01 if ours_name == "ScheduleFreeAdamW" else 0.1
    schedule = lrcore.schedules.CosineAnnealing(base, T_max=STEPS)
    for ours, theirs, _ in run_against_package(torch, schedulefree, ours_name, theirs_name,
                                               dict(lr=base, warmup_steps=15), dtype, lr_schedule=schedule):
        for a, t in zip(ours, theirs):
            np.testing.assert_allclose(a, t.numpy(), **TOLERANCE[dtype])


@pytest.mark.torch
def test_the_package_refuses_a_step_in_eval_mode_and_starts_there(torch_and_schedulefree):
    torch, schedulefree = torch_and_schedulefree
    package = schedulefree.AdamWScheduleFree([torch.zeros(3)])
    assert package.param_groups[0]["train_mode"] is False
    with pytest.raises(Exception, match="not in train mode"):
        package.step()


# ------------------------------------------------------------ lrcore only --
OPTIMIZERS = [lrcore.ScheduleFreeAdamW, lrcore.ScheduleFreeSGD]


def grads_like(params, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


def frozen(opt, params):
    return copy.deepcopy(opt.state_dict()), [p.copy() for p in params]


def assert_same(before, after):
    (state_a, params_a), (state_b, params_b) = before, after
    for a, b in zip(params_a, params_b):
        assert a.tobytes() == b.tobytes()
    assert state_a["group_states"] == state_b["group_states"]
    assert state_a["step_count"] == state_b["step_count"]
    for key, entry in state_a["state"].items():
        for name, value in entry.items():
            other = state_b["state"][key][name]
            assert value.tobytes() == other.tobytes() if isinstance(value, np.ndarray) else value == other


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_a_step_in_eval_mode_is_refused_and_changes_nothing(cls):
    params = [np.ones(5), np.ones(3, np.float32)]
    opt = cls(params)
    assert opt.train_mode is False  # a new optimizer starts in eval mode, as the package's
    before = frozen(opt, params)
    with pytest.raises(RuntimeError, match=r"param_groups\[0\]: the optimizer is in eval mode .*call train\(\)"):
        opt.step(grads_like(params, 0))
    assert_same(before, frozen(opt, params))
    opt.train()
    assert opt.train_mode is True
    assert opt.step(grads_like(params, 0)) is True
    opt.eval()
    before = frozen(opt, params)
    with pytest.raises(RuntimeError, match="eval mode"):
        opt.step(grads_like(params, 1))
    assert_same(before, frozen(opt, params))


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_train_and_eval_are_idempotent_and_move_only_stepped_parameters(cls):
    params = [np.linspace(-1, 1, 9), np.full(4, 2.0, np.float32)]
    opt = cls(params)
    opt.train()
    opt.train()
    for seed in (0, 1):  # after one step x = y = z; the second separates them
        assert opt.step([grads_like(params, seed)[0], None]) is True
    y = [p.copy() for p in params]
    opt.eval()
    x = [p.copy() for p in params]
    opt.eval()  # already there: nothing moves
    assert all(a.tobytes() == b.tobytes() for a, b in zip(params, x))
    assert not np.array_equal(x[0], y[0])
    assert params[1].tobytes() == y[1].tobytes()  # never stepped: no z, stays
    opt.train()
    np.testing.assert_allclose(params[0], y[0], rtol=1e-14, atol=1e-15)  # y back, to rounding


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_x_is_the_average_and_y_interpolates(cls):
    """After steps, eval's x satisfies y = (1 - beta) z + beta x (the definition the switch inverts)."""
    params = [np.random.default_rng(0).standard_normal(50)]
    opt = cls(params, warmup_steps=3)
    opt.train()
    for seed in range(20):
        opt.step(grads_like(params, seed))
    y = params[0].copy()
    z = opt.state_dict()["state"][0]["z"]
    opt.eval()
    beta = opt.param_groups[0]["betas"][0] if cls is lrcore.ScheduleFreeAdamW else opt.param_groups[0]["momentum"]
    np.testing.assert_allclose((1 - beta) * z + beta * params[0], y, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_a_failing_mode_switch_moves_nothing(cls):
    params0, params1 = [np.ones(6)], [np.full(4, 3.0)]
    opt = cls([{"params": params0}, {"params": params1}])
    opt.train()
    opt.step(grads_like(params0 + params1, 0))
    name = "betas" if cls is lrcore.ScheduleFreeAdamW else "momentum"
    good = opt.param_groups[1][name]
    opt.param_groups[1][name] = (lambda t: float("nan"), 0.999) if name == "betas" else (lambda t: 1.5)
    before = frozen(opt, params0 + params1)
    with pytest.raises(ValueError, match=r"param_groups\[1\]: (beta1|momentum) must be in \(0, 1\)"):
        opt.eval()
    assert_same(before, frozen(opt, params0 + params1))
    assert opt.train_mode is True
    opt.param_groups[1][name] = good
    opt.eval()
    assert opt.train_mode is False and opt.state_dict()["group_states"][1]["train_mode"] is False


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_a_group_added_later_joins_the_current_mode(cls):
    first, later = [np.ones(3)], [np.ones(2)]
    opt = cls(first)
    opt.train()
    opt.step(grads_like(first, 0))
    opt.add_param_group({"params": later})
    assert [g["train_mode"] for g in opt.state_dict()["group_states"]] == [True, True]
    assert opt.step(grads_like(first + later, 1)) is True
    assert [g["k"] for g in opt.state_dict()["group_states"]] == [2, 1]


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_group_state_advances_also_without_gradients_and_not_on_a_skipped_step(cls):
    params = [np.ones(4)]
    opt = cls(params, skip_nonfinite=True)
    opt.train()
    assert opt.step([None]) is True  # counted, as the package increments k for a group without gradients
    assert opt.state_dict()["group_states"][0]["k"] == 1
    before = frozen(opt, params)
    assert opt.step([np.array([1.0, np.nan, 0.0, 0.0])]) is False
    assert_same(before, frozen(opt, params))


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_a_weight_that_cannot_be_computed_is_refused_before_anything_changes(cls):
    params = [np.ones(4)]
    opt = cls(params, lr=0.0, weight_lr_power=-1.0)  # lr_max**-1 with lr_max = 0: the package divides by zero
    opt.train()
    before = frozen(opt, params)
    with pytest.raises(ValueError, match=r"lr_max\*\*weight_lr_power is not finite at k = 0"):
        opt.step(grads_like(params, 0))
    assert_same(before, frozen(opt, params))


@pytest.mark.parametrize("restore", ["state_dict", "checkpoint"])
@pytest.mark.parametrize("cls", OPTIMIZERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_state_dict_and_checkpoint_keep_the_mode_and_the_group_state(cls, mode, restore, tmp_path):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(11).astype(np.float32), rng.standard_normal((2, 5))]
    opt = cls(params, warmup_steps=4)
    opt.train()
    for seed in range(6):
        opt.step(grads_like(params, seed))
    getattr(opt, mode)()
    saved = opt.state_dict()
    group_state = saved["group_states"][0]
    assert group_state["k"] == 6 and group_state["train_mode"] == (mode == "train")
    assert type(group_state["k"]) is int and type(group_state["lr_max"]) is float
    twin_params = [np.zeros_like(p) for p in params]
    twin = cls(twin_params, warmup_steps=4)
    if restore == "state_dict":
        twin.load_state_dict(saved, params=params)
    else:
        lrcore.save(tmp_path / "sf.npz", opt)
        lrcore.load(tmp_path / "sf.npz", twin)
    assert twin.train_mode == (mode == "train")
    assert twin.state_dict()["group_states"] == saved["group_states"]
    for a, b in zip(twin_params, params):
        assert a.tobytes() == b.tobytes()
    # Both continue identically, through a mode round trip.
    for optimizer, arrays in ((opt, params), (twin, twin_params)):
        optimizer.train()
        for seed in (10, 11):
            optimizer.step(grads_like(arrays, seed))
        optimizer.eval()
    for a, b in zip(twin_params, params):
        assert a.tobytes() == b.tobytes()


def test_load_refuses_a_bad_group_state():
    params = [np.ones(3)]
    opt = lrcore.ScheduleFreeAdamW(params)
    opt.train()
    opt.step([np.ones(3)])
    saved = opt.state_dict()
    for change, message in [
        (lambda s: s.pop("group_states"), "group_states must be a list"),
        (lambda s: s["group_states"][0].pop("k"), r"group_states\[0\] must be a dict with the entries"),
        (lambda s: s["group_states"][0].update(k=1.5), r"group_states\[0\]\['k'\] must be a count"),
        (lambda s: s["group_states"][0].update(k=-2), r"group_states\[0\]: group_state k must be an integer"),
        (lambda s: s["group_states"][0].update(train_mode=1), r"\['train_mode'\] must be a flag"),
        (lambda s: s["group_states"][0].update(weight_sum=-1.0), "weight_sum must be a finite number >= 0"),
        (lambda s: s["group_states"][0].update(lr_max=float("nan")), "lr_max must be -1 or"),
    ]:
        bad = copy.deepcopy(saved)
        change(bad)
        before = frozen(opt, params)
        with pytest.raises(ValueError, match=message):
            opt.load_state_dict(bad)
        assert_same(before, frozen(opt, params))
    with pytest.raises(ValueError, match="keeps no per-group state"):
        lrcore.Adam([np.ones(3)]).load_state_dict(dict(lrcore.Adam([np.ones(3)]).state_dict(),
                                                       group_states=saved["group_states"]))


@pytest.mark.parametrize("cls", OPTIMIZERS)
def test_find_lr_needs_train_mode_and_restores_everything(cls):
    w = np.array([3.0, -2.0, 1.0])
    opt = cls([w], warmup_steps=5)
    with pytest.raises(ValueError, match=r"find_lr needs the .* in train mode.*call optimizer.train\(\)"):
        lrcore.find_lr(opt, lambda: (0.5 * float(w @ w), [w.copy()]), num_steps=20)
    opt.train()
    opt.step([w.copy()])
    before = frozen(opt, [w])
    groups = [dict(g) for g in opt.param_groups]
    result = lrcore.find_lr(opt, lambda: (0.5 * float(w @ w), [w.copy()]), num_steps=30, start_lr=1e-4,
                            end_lr=10.0)
    assert len(result.lrs) >= 2 and np.isfinite(result.losses[0])
    assert_same(before, frozen(opt, [w]))
    assert opt.param_groups[0]["warmup_steps"] == groups[0]["warmup_steps"] == 5


# ------------------------------------------------------ kernels, bitwise --
FUNCTIONAL_CASES = [
    ("schedule_free_adamw", dict(lr=0.01, weight_decay=0.01, warmup_steps=3, r=0.5, beta1=0.3)),
    ("schedule_free_adamw", dict(lr=0.003, beta1=0.9, beta2=0.95, eps=1e-6, weight_lr_power=0.0)),
    ("schedule_free_sgd", dict(lr=0.1, weight_decay=0.01, momentum=0.6, warmup_steps=2)),
    ("schedule_free_sgd", dict(lr=0.5, momentum=0.2, r=1.0)),
]


def run_functional(module, name, config, dtype, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(1,), (17,), (70001,), (33, 7), (0,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    zs = [None] * len(shapes)
    extra = [[np.zeros_like(p) for p in params]] if name == "schedule_free_adamw" else []
    group_state = functional.new_group_state(name)
    getattr(module, f"{name}_train")(params, zs, group_state, **config)
    for step in range(8):
        grads = [rng.standard_normal(s).astype(dtype) if (step + i) % 4 else None for i, s in enumerate(shapes)]
        getattr(module, name)(params, grads, zs, *extra, group_state, **config)
        if step in (2, 5):
            getattr(module, f"{name}_eval")(params, zs, group_state, **config)
            yield params, zs, group_state
            getattr(module, f"{name}_train")(params, zs, group_state, **config)
    yield params, zs, group_state


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize(("name", "config"), FUNCTIONAL_CASES, ids=[f"{n}-{i}" for i, (n, _) in
                                                                    enumerate(FUNCTIONAL_CASES)])
def test_kernels_and_switch_equal_the_reference_bitwise(each_isa, name, config, dtype, threads):
    previous = lrcore.get_num_threads()
    lrcore.set_num_threads(threads)
    try:
        for ours, theirs in zip(run_functional(functional, name, config, dtype),
                                run_functional(reference, name, config, dtype)):
            for a, b in zip(ours[0], theirs[0]):
                assert a.tobytes() == b.tobytes()
            for a, b in zip(ours[1], theirs[1]):
                assert (a is None and b is None) or a.tobytes() == b.tobytes()
            assert ours[2].tobytes() == theirs[2].tobytes()
    finally:
        lrcore.set_num_threads(previous)


def test_functional_group_state_starts_in_eval_mode():
    params = [np.ones(3)]
    group_state = functional.new_group_state("schedule_free_sgd")
    assert group_state.tolist() == [0.0, -1.0, 0.0, 0.0]
    with pytest.raises(RuntimeError, match="eval mode"):
        functional.schedule_free_sgd(params, [np.ones(3)], [None], group_state)
    assert group_state.tolist() == [0.0, -1.0, 0.0, 0.0] and params[0].tolist() == [1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="rule must name a rule with per-group state"):
        functional.new_group_state("adam")
