"""lrcore.torch: the torch.optim drop-ins, against torch.optim on a real torch model.

Every rule of tests/rules.py (so every rule lrcore describes) with each of its
option sets, float32 and float64: trained with loss.backward() for 60 steps
next to torch.optim's optimizer of the same rule (equal to rounding) and next
to lrcore's numpy class fed the same gradients (bitwise equal). Then
schedulers (OneCycleLR's momentum and beta cycling included), state_dict
resume through torch.save / torch.load(weights_only=True), state_dicts
exchanged with torch.optim, named parameters and groups, zero_grad, closures,
hooks, and bad inputs, each refused with nothing modified.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import pickle
import subprocess
import sys

import numpy as np
import pytest

from rules import ROW_RULES
from rules import RULE_CASES, RULE_IDS, RULES

torch = pytest.importorskip("torch", reason="lrcore.torch needs torch")
lrtorch = pytest.importorskip("lrcore.torch")

import lrcore  # noqa: E402

pytestmark = pytest.mark.torch

STEPS = 60
DTYPES = [torch.float32, torch.float64]
# After 60 steps of mini-batch training the trajectories differ only by rounding
# (torch's vectorized CPU kernels fuse some multiply-adds, lrcore's never do),
# amplified by the model's feedback from parameters to gradients: measured up to
# 4e-6 in float32 (centered RMSprop) and 7e-15 in float64. Bitwise agreement is
# checked against lrcore's numpy classes.
TOLERANCE = {torch.float32: dict(rtol=2e-4, atol=2e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


@pytest.fixture(autouse=True, scope="module")
def torch_single_thread():
    # torch's OpenMP workers spin after each operation and starve lrcore's pool on a
    # small machine (docs/torch.md); one torch thread keeps the run fast.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(), torch.nn.Linear(12, 3)).to(dtype)


class Batches:
    """A small classification set served as mini-batches, the next one at each call: the gradients
    vary from step to step as in training (with one full batch they settle, and centered RMSprop's
    sqrt(v - a*a) would cancel to rounding noise, in torch as in lrcore)."""

    def __init__(self, dtype=torch.float32, seed=1, size=400, batch=40):
        generator = torch.Generator().manual_seed(seed)
        self.x = torch.randn(size, 6, generator=generator, dtype=dtype)
        self.y = (self.x[:, 0] > 0).long() + (self.x[:, 1] > 0.5).long()
        self.batch, self.calls = batch, {}

    def follow(self, model, leader):
        """``model`` continues where ``leader`` is (a resumed copy)."""
        self.calls[id(model)] = self.calls.get(id(leader), 0)

    def __getitem__(self, model):
        # Each model gets the same sequence of batches.
        start = self.calls.get(id(model), 0)
        self.calls[id(model)] = start + 1
        rows = slice((start * self.batch) % len(self.x), (start * self.batch) % len(self.x) + self.batch)
        return self.x[rows], self.y[rows]


def make_data(dtype=torch.float32, seed=1):
    return Batches(dtype, seed)


def objective(model, data, optimizer):
    """The cross-entropy, negated for an optimizer that maximizes: each optimizer trains."""
    x, y = data[model]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    return -loss if optimizer.param_groups[0].get("maximize") else loss


def train_step(model, optimizer, data, set_to_none=True):
    optimizer.zero_grad(set_to_none=set_to_none)
    loss = objective(model, data, optimizer)
    loss.backward()
    optimizer.step()
    return loss.item()


def has_reference(rule):
    """Whether the rule has a torch implementation to compare with (torch.optim's, or the schedulefree
    package's); Lion has none, and is compared bitwise with lrcore's numpy class instead."""
    return rule.torch_name is not None


def reference_for(rule, params, **config):
    """The reference implementation's optimizer, ready to step (tests/rules.py: torch.optim's single-tensor
    path, or the schedulefree package's optimizer in train mode; skips when that package is missing)."""
    return rule.torch_optimizer(params, **config)


def ours(rule):
    return getattr(lrtorch, rule.description.class_name)


def takes_dense_gradients(description):
    return getattr(description, "dense_gradients", True)


def skip_if_sparse_only(rule):
    if not takes_dense_gradients(rule.description):
        pytest.skip(f"{rule.description.class_name} takes row-sparse gradients only: lrcore.torch refuses it "
                    "(test_sparse_gradient_rules_are_refused_at_construction)")


def ours_for(rule, params, **config):
    """lrcore.torch's optimizer of the rule, ready to step: a schedule-free one is put in train mode, as
    the schedulefree package's (and tests/rules.py's numpy classes) are."""
    skip_if_sparse_only(rule)
    optimizer = ours(rule)(params, **config)
    if rule.description.has_modes:
        optimizer.train()
    return optimizer


@contextlib.contextmanager
def torch_scalar_dtype(rule, dtype):
    """torch.optim keeps per-tensor scalars (NAdam's mu_product, ASGD's eta and mu) in its default dtype,
    float32, where lrcore keeps float64; for a float64 run torch's default is float64 too, so the two
    compute alike."""
    previous = torch.get_default_dtype()
    if dtype == torch.float64 and rule.description.scalars:
        torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_close(a, b, dtype, what=""):
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.detach().numpy(), y.detach().numpy(), **TOLERANCE[dtype], err_msg=what)


def assert_bitwise(a, b, what=""):
    for k, (x, y) in enumerate(zip(a, b)):
        x = x.detach().numpy() if isinstance(x, torch.Tensor) else x
        y = y.detach().numpy() if isinstance(y, torch.Tensor) else y
        assert np.array_equal(x, y), f"{what} tensor {k} differs"


def snapshot(model, optimizer):
    """Everything a step may change: parameters, the state (deep copy) and lrcore's counters."""
    return ([p.detach().clone() for p in model.parameters()], copy.deepcopy(optimizer.state_dict()))


def assert_unchanged(before, model, optimizer):
    params, state_dict = before
    assert_bitwise(params, list(model.parameters()), "parameter")
    now = optimizer.state_dict()
    assert now["lrcore"] == state_dict["lrcore"]
    assert now["param_groups"] == state_dict["param_groups"]
    assert sorted(now["state"]) == sorted(state_dict["state"])
    for index, entry in state_dict["state"].items():
        assert sorted(now["state"][index]) == sorted(entry)
        for name, value in entry.items():
            assert torch.equal(now["state"][index][name], value), (index, name)


# ------------------------------------------------------------------ the classes
def test_one_class_per_rule_derived_from_the_descriptions():
    names = [rule.class_name for rule in lrcore._rules.RULES.values()]
    assert set(names) <= set(lrtorch.__all__)
    for rule in lrcore._rules.RULES.values():
        cls = getattr(lrtorch, rule.class_name)
        assert issubclass(cls, torch.optim.Optimizer) and issubclass(cls, lrtorch.Optimizer)
        assert cls.rule is rule
        if not takes_dense_gradients(rule):
            with pytest.raises(TypeError, match="row-sparse"):
                cls([torch.nn.Parameter(torch.zeros(3))])
            continue
        optimizer = cls([torch.nn.Parameter(torch.zeros(3))])
        for h in rule.hyperparameters:
            assert optimizer.defaults[h.name] == h.default
            assert optimizer.param_groups[0][h.name] == h.default
        assert rule.summary.split(" (")[0] in cls.__doc__


def test_the_test_table_covers_every_rule():
    # The row rules (SparseAdam, RowWiseAdagrad: row-sparse gradients, per-row state) are not run through
    # the adapter here: it refuses sparse tensors and allocates state shaped like the parameter.
    assert {rule.name for rule in RULES + ROW_RULES} == set(lrcore._rules.RULES)


# ------------------------------------------------------- agreement with torch.optim
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_matches_torch_optim_on_a_model(rule, config, dtype):
    skip_if_sparse_only(rule)
    if not has_reference(rule):
        pytest.skip(f"torch has no {rule.description.class_name} (compared bitwise with lrcore's numpy class)")
    data = make_data(dtype)
    model, torch_model = make_model(dtype), make_model(dtype)
    optimizer = ours_for(rule, model.parameters(), **config)
    with torch_scalar_dtype(rule, dtype):
        torch_optimizer = reference_for(rule, torch_model.parameters(), **config)
        for _ in range(STEPS):
            train_step(model, optimizer, data)
            train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), dtype)
    mine, theirs = optimizer.state_dict(), torch_optimizer.state_dict()
    assert sorted(mine["state"]) == sorted(theirs["state"])
    for index, entry in theirs["state"].items():
        # torch's layout: the same entries, each a tensor like torch's.
        assert sorted(mine["state"][index]) == sorted(entry), index
        for name, value in entry.items():
            if name == "step":
                # torch's default dtype (float32; float64 in the runs torch_scalar_dtype widens)
                assert mine["state"][index]["step"].dtype == torch.float32
                assert mine["state"][index]["step"].shape == ()
                assert mine["state"][index]["step"].item() == value.item() == STEPS
            elif value is not None:
                assert_close([mine["state"][index][name]], [value], dtype, name)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_bitwise_equal_to_the_numpy_class(rule, config, dtype):
    """The same gradients through lrcore.torch and through lrcore's numpy class: identical bits."""
    data = make_data(dtype)
    model = make_model(dtype)
    optimizer = ours_for(rule, model.parameters(), **config)
    arrays = [p.detach().numpy().copy() for p in model.parameters()]
    numpy_optimizer = rule.optimizer(arrays, **config)
    for _ in range(STEPS):
        optimizer.zero_grad()
        objective(model, data, optimizer).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        optimizer.step()
        numpy_optimizer.step(grads)
        assert_bitwise(list(model.parameters()), arrays)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    numpy_state = numpy_optimizer.state_dict()["state"]
    for index, entry in optimizer.state_dict()["state"].items():
        for name, value in entry.items():
            if name != "step":
                assert np.array_equal(value.numpy(), numpy_state[index][name]), name


@pytest.mark.parametrize("rule", [r for r in RULES if r.description.hyperparameters[0].name == "lr"], ids=str)
def test_lr_schedulers_drive_the_groups(rule):
    data = make_data()
    model, torch_model = make_model(), make_model()
    config = rule.configs[0]
    optimizer = ours_for(rule, model.parameters(), **config)

    def schedulers(opt):
        warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS - 10)
        return torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[10])

    if not has_reference(rule):
        # No torch implementation: lrcore's numpy class, given each step the lr torch's scheduler set,
        # takes the same steps bit for bit.
        arrays = [p.detach().numpy().copy() for p in model.parameters()]
        numpy_optimizer = rule.optimizer(arrays, **config)
        mine = schedulers(optimizer)
        for _ in range(STEPS):
            optimizer.zero_grad()
            objective(model, data, optimizer).backward()
            grads = [p.grad.numpy().copy() for p in model.parameters()]
            numpy_optimizer.param_groups[0]["lr"] = optimizer.param_groups[0]["lr"]
            optimizer.step()
            numpy_optimizer.step(grads)
            mine.step()
            assert_bitwise(list(model.parameters()), arrays)
        assert optimizer.param_groups[0]["lr"] != config["lr"]  # the scheduler did move it
        return
    torch_optimizer = reference_for(rule, torch_model.parameters(), **config)
    mine, theirs = schedulers(optimizer), schedulers(torch_optimizer)
    for _ in range(STEPS):
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
        mine.step()
        theirs.step()
        assert optimizer.param_groups[0]["lr"] == torch_optimizer.param_groups[0]["lr"]
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)


@pytest.mark.parametrize(("name", "config", "cycled"), [
    ("AdamW", dict(lr=0.01, weight_decay=0.05), "betas"),
    ("Adam", dict(lr=0.01, amsgrad=True), "betas"),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True), "momentum"),
    ("RMSprop", dict(lr=0.01, momentum=0.9), "momentum"),
])
def test_one_cycle_lr_cycles_momentum_and_betas(name, config, cycled):
    # float64: at OneCycleLR's peak (lr 0.05) RMSprop with momentum amplifies float32 rounding
    # past a tight tolerance; in float64 the runs agree to ~1e-13.
    data = make_data(torch.float64)
    model, torch_model = make_model(torch.float64), make_model(torch.float64)
    optimizer = getattr(lrtorch, name)(model.parameters(), **config)
    torch_optimizer = getattr(torch.optim, name)(torch_model.parameters(), foreach=False, **config)
    mine, theirs = (torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=STEPS, cycle_momentum=True)
                    for opt in (optimizer, torch_optimizer))
    seen = set()
    for _ in range(STEPS - 1):
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
        mine.step()
        theirs.step()
        group = optimizer.param_groups[0]
        assert group[cycled] == torch_optimizer.param_groups[0][cycled]
        assert group["lr"] == torch_optimizer.param_groups[0]["lr"]
        seen.add(group[cycled][0] if cycled == "betas" else group[cycled])
    assert len(seen) > 10  # the momentum (beta1) really cycled
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float64)


# ---------------------------------------------------------------- state_dict
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_torch_save_resume_is_bitwise(rule, config, tmp_path):
    data = make_data()
    model = make_model()
    optimizer = ours_for(rule, model.parameters(), **config, max_grad_norm=1.0)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.5)
    for _ in range(STEPS // 2):
        train_step(model, optimizer, data)
        scheduler.step()
    path = tmp_path / "checkpoint.pt"
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, path)
    for _ in range(STEPS // 2):
        train_step(model, optimizer, data)
        scheduler.step()

    resumed_model = make_model(seed=5)
    resumed = ours(rule)(resumed_model.parameters(), **config, max_grad_norm=1.0)  # the mode comes with the state
    resumed_scheduler = torch.optim.lr_scheduler.StepLR(resumed, step_size=7, gamma=0.5)
    checkpoint = torch.load(path, weights_only=True)
    data.calls[id(resumed_model)] = STEPS // 2
    resumed_model.load_state_dict(checkpoint["model"])
    resumed.load_state_dict(checkpoint["optimizer"])
    resumed_scheduler.load_state_dict(checkpoint["scheduler"])
    assert resumed.step_count == STEPS // 2
    for _ in range(STEPS // 2):
        train_step(resumed_model, resumed, data)
        resumed_scheduler.step()
    assert_bitwise(list(model.parameters()), list(resumed_model.parameters()), "resumed parameter")
    assert resumed.step_count == optimizer.step_count == STEPS
    assert resumed.last_grad_norm == optimizer.last_grad_norm is not None
    a, b = optimizer.state_dict(), resumed.state_dict()
    for index, entry in a["state"].items():
        for name, value in entry.items():
            assert torch.equal(value, b["state"][index][name]), name


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_state_dicts_exchange_with_torch_optim(rule, config):
    """torch.optim's state loads into lrcore.torch and lrcore.torch's into torch.optim; both continue alike."""
    skip_if_sparse_only(rule)
    if not has_reference(rule):
        pytest.skip(f"torch has no {rule.description.class_name}, so no state_dict to exchange")
    data = make_data(torch.float64)
    for make_source, make_target in ((reference_for, ours_for), (ours_for, reference_for)):
        with torch_scalar_dtype(rule, torch.float64):
            source_model = make_model(torch.float64)
            source = make_source(rule, source_model.parameters(), **config)
            for _ in range(STEPS // 2):
                train_step(source_model, source, data)
            target_model = make_model(torch.float64, seed=3)
            target_model.load_state_dict(source_model.state_dict())
            target = make_target(rule, target_model.parameters(), **config)
            state_dict = copy.deepcopy(source.state_dict())
            if make_target is reference_for:
                # The schedulefree package has no __setstate__ filling in its own group options (foreach),
                # as torch.optim's classes have; lrcore.torch's groups do not keep them.
                for group in state_dict["param_groups"]:
                    for name, value in target.defaults.items():
                        group.setdefault(name, value)
            target.load_state_dict(state_dict)
            for _ in range(STEPS // 2):
                train_step(source_model, source, data)
                train_step(target_model, target, data)
        assert_close(list(source_model.parameters()), list(target_model.parameters()), torch.float64,
                     f"{type(source).__module__} -> {type(target).__module__}")


def test_loading_a_state_of_another_rule_variant_is_refused():
    model = make_model()
    torch_adam = torch.optim.Adam(model.parameters(), lr=0.01)
    train_step(model, torch_adam, make_data())
    optimizer = lrtorch.AdamW(make_model().parameters(), lr=0.01)
    before = copy.deepcopy(optimizer.state_dict())
    with pytest.raises(ValueError, match="decoupled_weight_decay"):
        optimizer.load_state_dict(torch_adam.state_dict())
    assert optimizer.state_dict() == before


def test_a_bad_state_dict_changes_nothing():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        train_step(model, optimizer, data)
    before = snapshot(model, optimizer)
    bad_shape = copy.deepcopy(optimizer.state_dict())
    bad_shape["state"][1]["exp_avg"] = torch.zeros(5)
    with pytest.raises(ValueError, match=r"exp_avg.*param_groups\[0\]\['params'\]\[1\]"):
        optimizer.load_state_dict(bad_shape)
    unknown = copy.deepcopy(optimizer.state_dict())
    unknown["state"][0]["momentum_buffer"] = torch.zeros_like(model[0].weight)
    with pytest.raises(ValueError, match="momentum_buffer"):
        optimizer.load_state_dict(unknown)
    bad_lr = copy.deepcopy(optimizer.state_dict())
    bad_lr["param_groups"][0]["lr"] = -1.0
    with pytest.raises(ValueError, match=r"param_groups\[0\].*lr"):
        optimizer.load_state_dict(bad_lr)
    bad_count = copy.deepcopy(optimizer.state_dict())
    bad_count["lrcore"]["step_count"] = -3
    with pytest.raises(ValueError, match="step_count"):
        optimizer.load_state_dict(bad_count)
    assert_unchanged(before, model, optimizer)
    # ... and it still steps as before.
    reference = make_model()
    reference.load_state_dict(model.state_dict())
    twin = lrtorch.Adam(reference.parameters(), lr=0.01)
    twin.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    data.follow(reference, model)
    train_step(model, optimizer, data)
    train_step(reference, twin, data)
    assert_bitwise(list(model.parameters()), list(reference.parameters()))


def test_state_dict_layout_is_torchs():
    model = make_model()
    optimizer = lrtorch.AdamW(model.named_parameters(), lr=0.01, amsgrad=True)
    train_step(model, optimizer, make_data())
    state_dict = optimizer.state_dict()
    assert set(state_dict) == {"state", "param_groups", "lrcore"}
    assert state_dict["param_groups"][0]["params"] == [0, 1, 2, 3]
    assert state_dict["param_groups"][0]["param_names"] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert state_dict["param_groups"][0]["betas"] == (0.9, 0.999)
    entry = state_dict["state"][2]
    assert list(entry) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert entry["step"].dtype == torch.float32 and entry["step"].item() == 1.0
    assert entry["exp_avg"].shape == model[2].weight.shape
    assert state_dict["lrcore"] == {"step_count": 1, "skipped_steps": 0, "last_grad_norm": None}
    # It survives a round trip through torch.save / torch.load(weights_only=True).
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert loaded["lrcore"] == state_dict["lrcore"]
    assert torch.equal(loaded["state"][2]["max_exp_avg_sq"], entry["max_exp_avg_sq"])


# ------------------------------------------------------ torch.optim's behaviour
def test_named_parameters_and_groups():
    data = make_data()
    model, torch_model = make_model(), make_model()

    def groups(m):
        named = list(m.named_parameters())
        return [{"params": named[:2], "lr": 0.02}, {"params": named[2:], "weight_decay": 0.1}]

    optimizer = lrtorch.AdamW(groups(model), lr=0.01)
    torch_optimizer = torch.optim.AdamW(groups(torch_model), lr=0.01, foreach=False)
    assert optimizer.param_groups[0]["param_names"] == ["0.weight", "0.bias"]
    assert optimizer.param_groups[1]["lr"] == 0.01 and optimizer.param_groups[0]["weight_decay"] == 0.01
    for step in range(STEPS):
        if step == 20:  # users may edit groups between steps
            for opt in (optimizer, torch_optimizer):
                opt.param_groups[1]["lr"] = 0.005
                opt.param_groups[0]["betas"] = (0.8, 0.99)
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)
    assert optimizer.state_dict()["param_groups"][1]["param_names"] == ["2.weight", "2.bias"]


def test_add_param_group_mid_training():
    data = make_data()
    model, torch_model = make_model(), make_model()
    optimizer = lrtorch.Adam(list(model[0].parameters()), lr=0.01)
    torch_optimizer = torch.optim.Adam(list(torch_model[0].parameters()), lr=0.01, foreach=False)
    for step in range(30):
        if step == 10:
            optimizer.add_param_group({"params": list(model[2].parameters()), "lr": 0.03})
            torch_optimizer.add_param_group({"params": list(torch_model[2].parameters()), "lr": 0.03})
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)
    assert optimizer.state[model[2].weight]["step"].item() == 20


def test_parameters_without_gradients_are_skipped():
    model = make_model()
    frozen = model[0].bias
    optimizer = lrtorch.Adam(model.parameters(), lr=0.01)
    x, y = make_data()[model]
    torch.nn.functional.cross_entropy(model(x), y).backward()
    frozen.grad = None
    before = frozen.detach().clone()
    optimizer.step()
    assert torch.equal(frozen, before) and frozen not in optimizer.state
    assert optimizer.state[model[0].weight]["step"].item() == 1
    optimizer.zero_grad()
    torch.nn.functional.cross_entropy(model(x), y).backward()
    optimizer.step()
    assert optimizer.state[frozen]["step"].item() == 1
    assert optimizer.state[model[0].weight]["step"].item() == 2


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_and_both_gradient_paths(set_to_none):
    """Fresh gradient tensors each step (set_to_none=True) and the same ones zeroed in place give
    the same result as torch."""
    data = make_data()
    model, torch_model = make_model(), make_model()
    optimizer = lrtorch.SGD(model.parameters(), lr=0.05, momentum=0.9)
    torch_optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.05, momentum=0.9, foreach=False)
    for _ in range(20):
        train_step(model, optimizer, data, set_to_none)
        train_step(torch_model, torch_optimizer, data, set_to_none)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)
    optimizer.zero_grad(set_to_none=set_to_none)
    for p in model.parameters():
        assert p.grad is None if set_to_none else torch.count_nonzero(p.grad) == 0


def test_a_replaced_gradient_or_parameter_storage_is_followed():
    """The step's cached views follow p.grad = ..., p.data = ... and in-place edits of the gradient."""
    param = torch.nn.Parameter(torch.ones(5))
    twin = torch.nn.Parameter(torch.ones(5))
    optimizer = lrtorch.SGD([param], lr=0.1)
    torch_optimizer = torch.optim.SGD([twin], lr=0.1)
    grad = torch.arange(5.0)
    for p in (param, twin):
        p.grad = grad.clone()
    for _ in range(3):  # the same gradient tensor: the cached view
        optimizer.step()
        torch_optimizer.step()
    param.grad.mul_(2)
    twin.grad.mul_(2)
    optimizer.step()
    torch_optimizer.step()
    param.grad = torch.full((5,), 3.0)
    twin.grad = torch.full((5,), 3.0)
    optimizer.step()
    torch_optimizer.step()
    param.grad.data = torch.full((5,), -1.0)
    twin.grad.data = torch.full((5,), -1.0)
    optimizer.step()
    torch_optimizer.step()
    param.data = torch.zeros(5)
    twin.data = torch.zeros(5)
    optimizer.step()
    torch_optimizer.step()
    assert torch.equal(param, twin)
    # A non-contiguous gradient is read through a contiguous copy.
    param.grad = torch.arange(10.0)[::2]
    twin.grad = torch.arange(10.0)[::2]
    optimizer.step()
    torch_optimizer.step()
    assert torch.equal(param, twin)


def test_closure_is_called_once_with_grad_enabled():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.RMSprop(model.parameters(), lr=0.01)
    calls = []

    def closure():
        calls.append(torch.is_grad_enabled())
        optimizer.zero_grad()
        loss = objective(model, data, optimizer)
        loss.backward()
        return loss

    with torch.no_grad():
        loss = optimizer.step(closure)
    assert calls == [True] and isinstance(loss, torch.Tensor)
    assert optimizer.state[model[0].weight]["step"].item() == 1


def test_step_hooks_and_the_profiler():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.Adam(model.parameters(), lr=0.01)
    events = []
    pre = optimizer.register_step_pre_hook(lambda opt, args, kwargs: events.append(("pre", opt.step_count)))
    post = optimizer.register_step_post_hook(lambda opt, args, kwargs: events.append(("post", opt.step_count)))
    from torch.optim.optimizer import register_optimizer_step_post_hook

    glob = register_optimizer_step_post_hook(lambda opt, a, k: events.append(("global",)))
    try:
        train_step(model, optimizer, data)
    finally:
        glob.remove()
    assert events == [("pre", 0), ("post", 1), ("global",)]
    pre.remove()
    post.remove()
    train_step(model, optimizer, data)
    assert len(events) == 3

    # A pre-hook may replace the arguments, as torch's wrapper allows.
    def replace_closure(opt, args, kwargs):
        return (args[0], lambda: 42.0), {}

    handle = optimizer.register_step_pre_hook(replace_closure)
    assert optimizer.step() == 42.0
    handle.remove()
    with torch.profiler.profile() as profile:
        train_step(model, optimizer, data)
    assert any("Optimizer.step#Adam.step" in event.name for event in profile.events())
    assert optimizer.step_count == 4


def test_pickle_and_deepcopy_keep_the_state():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.Adam(model.parameters(), lr=0.01, skip_nonfinite=True)
    train_step(model, optimizer, data)
    clone = copy.deepcopy({"model": model, "optimizer": optimizer})
    restored = pickle.loads(pickle.dumps(clone))
    for copy_ in (clone, restored):
        data.follow(copy_["model"], model)
        assert copy_["optimizer"].skip_nonfinite and copy_["optimizer"].step_count == 1
        train_step(copy_["model"], copy_["optimizer"], data)
    train_step(model, optimizer, data)
    assert_bitwise(list(model.parameters()), list(clone["model"].parameters()))
    assert_bitwise(list(model.parameters()), list(restored["model"].parameters()))


# ----------------------------------------------------------- lrcore's options
def test_max_grad_norm_matches_torch_clipping():
    data = make_data()
    model, torch_model = make_model(), make_model()
    optimizer = lrtorch.AdamW(model.parameters(), lr=0.01, max_grad_norm=0.5)
    torch_optimizer = torch.optim.AdamW(torch_model.parameters(), lr=0.01, foreach=False)
    for _ in range(STEPS):
        train_step(model, optimizer, data)
        torch_optimizer.zero_grad()
        objective(torch_model, data, torch_optimizer).backward()
        norm = torch.nn.utils.clip_grad_norm_(torch_model.parameters(), 0.5, foreach=False)
        torch_optimizer.step()
        assert optimizer.last_grad_norm == pytest.approx(norm.item(), rel=1e-5)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)


def test_skip_nonfinite_skips_the_whole_step():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.Adam(model.parameters(), lr=0.01, skip_nonfinite=True)
    train_step(model, optimizer, data)
    optimizer.zero_grad()
    objective(model, data, optimizer).backward()
    model[2].bias.grad[1] = math.nan
    before = snapshot(model, optimizer)
    assert optimizer.step() is None
    assert optimizer.skipped_steps == 1 and optimizer.step_count == 1
    params, state_dict = before
    assert_bitwise(params, list(model.parameters()))
    for index, entry in state_dict["state"].items():
        for name, value in entry.items():
            assert torch.equal(optimizer.state_dict()["state"][index][name], value)


# ------------------------------------------------------------------ bad inputs
def test_bad_parameters_are_refused_by_name():
    # (bfloat16 and float16 are taken: tests/test_torch_mixed.py)
    with pytest.raises(TypeError, match=r"parameter 'complex'.*torch.complex64.*kernels take"):
        lrtorch.Adam([("ok", torch.nn.Parameter(torch.zeros(3))),
                      ("complex", torch.nn.Parameter(torch.zeros(3, dtype=torch.complex64)))])
    with pytest.raises(ValueError, match=r"parameter 'w'.*not contiguous"):
        lrtorch.Adam([("w", torch.nn.Parameter(torch.zeros(4, 3).t()))])
    with pytest.raises(TypeError, match="sparse"):
        lrtorch.SGD([torch.zeros(3, 3).to_sparse().requires_grad_()])
    base = torch.zeros(6)
    with pytest.raises(ValueError, match=r"share memory.*param_groups\[0\]\['params'\]\[1\]"):
        lrtorch.SGD([base[:4], base[2:]])
    with pytest.raises(ValueError, match=r"param_groups\[0\].*lr"):
        lrtorch.Adam([torch.nn.Parameter(torch.zeros(3))], lr=-1.0)
    with pytest.raises(ValueError, match=r"param_groups\[0\].*nesterov"):
        lrtorch.SGD([torch.nn.Parameter(torch.zeros(3))], nesterov=True)
    with pytest.raises(ValueError, match="capturable"):
        lrtorch.Adam([torch.nn.Parameter(torch.zeros(3))], capturable=True)
    with pytest.raises(TypeError, match="skip_nonfinite"):
        lrtorch.Adam([torch.nn.Parameter(torch.zeros(3))], skip_nonfinite="yes")
    # A group that fails its checks is not added.
    optimizer = lrtorch.Adam([torch.nn.Parameter(torch.zeros(3))])
    with pytest.raises(ValueError, match=r"param_groups\[1\].*eps"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))], "eps": -1.0})
    assert len(optimizer.param_groups) == 1


def test_a_bad_step_changes_nothing():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.Adam(model.named_parameters(), lr=0.01, max_grad_norm=1.0)
    train_step(model, optimizer, data)
    optimizer.zero_grad()
    objective(model, data, optimizer).backward()
    before = snapshot(model, optimizer)

    optimizer.param_groups[0]["lr"] = -0.1
    with pytest.raises(ValueError, match=r"param_groups\[0\].*lr"):
        optimizer.step()
    optimizer.param_groups[0]["lr"] = 0.01
    assert_unchanged(before, model, optimizer)

    optimizer.param_groups[0]["betas"] = (0.9,)
    with pytest.raises(TypeError, match="betas must be a pair"):
        optimizer.step()
    optimizer.param_groups[0]["betas"] = (0.9, 0.999)

    sparse = model[2].weight.grad
    model[2].weight.grad = sparse.to_sparse()
    with pytest.raises(TypeError, match=r"parameter '2.weight'.*sparse"):
        optimizer.step()
    model[2].weight.grad = sparse
    assert_unchanged(before, model, optimizer)
    assert optimizer.step_count == 1
    train_step(model, optimizer, data)
    assert optimizer.step_count == 2


def test_a_failed_first_step_creates_no_state():
    param = torch.nn.Parameter(torch.ones(3))
    param.grad = torch.ones(3)
    optimizer = lrtorch.Adam([param], lr=0.01)
    optimizer.param_groups[0]["eps"] = -1.0
    with pytest.raises(ValueError, match="eps"):
        optimizer.step()
    assert len(optimizer.state) == 0 and optimizer.state_dict()["state"] == {}
    assert torch.equal(param, torch.ones(3))
    optimizer.param_groups[0]["eps"] = 1e-8
    optimizer.step()
    assert optimizer.state[param]["step"].item() == 1


def test_importing_without_torch_says_what_to_install():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import lrcore.torch\nexcept ImportError as e:\n    print(e)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "lrcore[torch]" in result.stdout and "PyTorch" in result.stdout


def test_no_gradient_outlives_its_step():
    """The cached views do not hold gradients: zero_grad(set_to_none=True) frees them."""
    import weakref

    model = make_model()
    optimizer = lrtorch.Adam(model.parameters(), lr=0.01)
    data = make_data()
    for set_to_none in (False, False, True):  # the second step uses the cached memory views
        train_step(model, optimizer, data, set_to_none=set_to_none)
    refs = [weakref.ref(p.grad) for p in model.parameters()]
    optimizer.zero_grad(set_to_none=True)
    assert all(ref() is None for ref in refs)


def test_tensor_hyperparameters_as_torch_allows():
    data = make_data()
    model, torch_model = make_model(), make_model()
    optimizer = lrtorch.AdamW(model.parameters(), lr=torch.tensor(0.01))
    torch_optimizer = torch.optim.AdamW(torch_model.parameters(), lr=torch.tensor(0.01), foreach=False)
    for _ in range(10):
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)


def test_a_replaced_parameter_in_a_group_is_followed():
    first, second = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
    optimizer = lrtorch.SGD([first], lr=0.5)
    first.grad = torch.ones(4)
    optimizer.step()
    optimizer.param_groups[0]["params"][0] = second  # edited in place, as a user may
    second.grad = torch.ones(4)
    optimizer.step()
    assert torch.equal(first, torch.full((4,), 0.5)) and torch.equal(second, torch.full((4,), 0.5))


def test_hyperparameter_errors_name_the_group_only():
    optimizer = lrtorch.Adam([torch.nn.Parameter(torch.zeros(3))])
    optimizer.param_groups[0]["params"][0].grad = torch.ones(3)
    optimizer.param_groups[0]["weight_decay"] = -1.0
    with pytest.raises(ValueError) as error:
        optimizer.step()
    assert str(error.value).startswith("param_groups[0]: weight_decay") and "['params']" not in str(error.value)


def test_a_loaded_non_contiguous_state_is_made_contiguous():
    param = torch.nn.Parameter(torch.ones(3, 4))
    param.grad = torch.ones(3, 4)
    optimizer = lrtorch.Adam([param], lr=0.1)
    optimizer.step()
    state_dict = copy.deepcopy(optimizer.state_dict())
    state_dict["state"][0]["exp_avg"] = state_dict["state"][0]["exp_avg"].t().contiguous().t()
    twin_param = torch.nn.Parameter(param.detach().clone())
    twin_param.grad = torch.ones(3, 4)
    twin = lrtorch.Adam([twin_param], lr=0.1)
    twin.load_state_dict(state_dict)
    optimizer.step()
    twin.step()
    assert torch.equal(param, twin_param) and twin.state[twin_param]["exp_avg"].is_contiguous()


# -------------------------------------------------- the rules' kinds of state
def mu_product_of(steps, betas=(0.9, 0.999), momentum_decay=4e-3):
    """NAdam's mu_product after ``steps`` steps, in float64 (the formula of lrcore._rules.NADAM)."""
    product = 1.0
    for t in range(1, steps + 1):
        product *= betas[0] * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    return product


@pytest.mark.parametrize("name", ["NAdam", "ASGD"])
def test_scalar_state_is_a_float64_tensor_that_round_trips(name):
    """Per-tensor scalars are 0-d float64 tensors under torch's names; they survive torch.save /
    torch.load(weights_only=True) and load_state_dict (which would otherwise cast them to the
    parameters' float32) bit for bit, so a resumed float32 run continues bitwise."""
    description = getattr(lrtorch, name).rule
    names = [s.name for s in description.scalars]
    data = make_data()
    model = make_model()
    optimizer = getattr(lrtorch, name)(model.parameters(), lr=0.01)
    for _ in range(5):
        train_step(model, optimizer, data)
    state_dict = optimizer.state_dict()
    for entry in state_dict["state"].values():
        for scalar in names:
            value = entry[scalar]
            assert isinstance(value, torch.Tensor) and value.shape == () and value.dtype == torch.float64, scalar
    if name == "NAdam":
        assert state_dict["state"][0]["mu_product"].item() == mu_product_of(5)
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    twin_model = make_model(seed=4)
    twin_model.load_state_dict(model.state_dict())
    twin = getattr(lrtorch, name)(twin_model.parameters(), lr=0.01)
    twin.load_state_dict(loaded)
    for index, entry in twin.state_dict()["state"].items():
        for scalar in names:
            assert entry[scalar].dtype == torch.float64
            assert entry[scalar].item() == state_dict["state"][index][scalar].item(), scalar
    data.follow(twin_model, model)
    for _ in range(5):
        train_step(model, optimizer, data)
        train_step(twin_model, twin, data)
    assert_bitwise(list(model.parameters()), list(twin_model.parameters()), "resumed")


@pytest.mark.parametrize("name", ["NAdam", "ASGD"])
def test_scalar_state_exchanges_with_torch_optims_float32_scalars(name):
    """torch.optim keeps mu_product, eta and mu as float32 0-d tensors (its default dtype): they load
    widened to float64; lrcore.torch's float64 ones load into torch.optim, which continues."""
    description = getattr(lrtorch, name).rule
    names = [s.name for s in description.scalars]
    data = make_data()
    torch_model = make_model()
    torch_optimizer = getattr(torch.optim, name)(torch_model.parameters(), lr=0.01, foreach=False)
    for _ in range(6):
        train_step(torch_model, torch_optimizer, data)
    theirs = torch_optimizer.state_dict()
    assert all(theirs["state"][0][scalar].dtype == torch.float32 for scalar in names)
    model = make_model(seed=2)
    model.load_state_dict(torch_model.state_dict())
    optimizer = getattr(lrtorch, name)(model.parameters(), lr=0.01)
    optimizer.load_state_dict(copy.deepcopy(theirs))
    for index, entry in optimizer.state_dict()["state"].items():
        for scalar in names:
            assert entry[scalar].dtype == torch.float64 and entry[scalar].shape == ()
            assert entry[scalar].item() == theirs["state"][index][scalar].item()  # widened exactly
    data.follow(model, torch_model)
    for _ in range(6):
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)
    # ... and back: torch.optim takes lrcore.torch's state and continues as lrcore.torch does.
    back_model = make_model(seed=3)
    back_model.load_state_dict(model.state_dict())
    back = getattr(torch.optim, name)(back_model.parameters(), lr=0.01, foreach=False)
    back.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    data.follow(back_model, model)
    for _ in range(6):
        train_step(model, optimizer, data)
        train_step(back_model, back, data)
    assert_close(list(model.parameters()), list(back_model.parameters()), torch.float32)


def test_a_bad_scalar_state_is_refused_with_nothing_changed():
    data = make_data()
    model = make_model()
    optimizer = lrtorch.NAdam(model.parameters(), lr=0.01)
    for _ in range(2):
        train_step(model, optimizer, data)
    before = snapshot(model, optimizer)
    for bad in ("one", None):
        state_dict = copy.deepcopy(optimizer.state_dict())
        state_dict["state"][1]["mu_product"] = bad
        with pytest.raises(ValueError, match=r"mu_product.*param_groups\[0\]\['params'\]\[1\]"):
            optimizer.load_state_dict(state_dict)
        assert_unchanged(before, model, optimizer)


SCHEDULE_FREE = [("ScheduleFreeAdamW", "AdamWScheduleFree", dict(lr=0.01, weight_decay=0.01, warmup_steps=5)),
                 ("ScheduleFreeSGD", "SGDScheduleFree", dict(lr=0.05, momentum=0.8, warmup_steps=5))]


@pytest.mark.parametrize(("name", "package_name", "config"), SCHEDULE_FREE)
def test_schedule_free_train_and_eval_on_a_model_match_the_package(name, package_name, config):
    """Training in train mode, evaluating in eval mode (the parameters at the average x) and
    training on, next to the schedulefree package's optimizer: the parameters, the group state
    (k, lr_max, weight_sum, train_mode in the group dict) and the state agree."""
    schedulefree = pytest.importorskip("schedulefree", reason="schedulefree is not installed")
    data = make_data(torch.float64)
    model, package_model = make_model(torch.float64), make_model(torch.float64)
    optimizer = getattr(lrtorch, name)(model.parameters(), **config)
    package = getattr(schedulefree, package_name)(package_model.parameters(), foreach=False, **config)
    for group_key in ("k", "lr_max", "weight_sum", "train_mode"):
        assert optimizer.param_groups[0][group_key] == package.param_groups[0][group_key], group_key
    for opt in (optimizer, package):
        opt.train()
    for phase in range(3):
        for _ in range(10):
            train_step(model, optimizer, data)
            train_step(package_model, package, data)
        for opt in (optimizer, package):
            opt.eval()
        assert_close(list(model.parameters()), list(package_model.parameters()), torch.float64, f"eval {phase}")
        with torch.no_grad():  # the evaluation point: both models give the same loss
            x, y = data.x[:80], data.y[:80]
            losses = [torch.nn.functional.cross_entropy(m(x), y).item() for m in (model, package_model)]
        assert losses[0] == pytest.approx(losses[1], rel=1e-10)
        mine, theirs = optimizer.param_groups[0], package.param_groups[0]
        assert mine["k"] == theirs["k"] == 10 * (phase + 1) and type(mine["k"]) is int
        assert mine["train_mode"] is theirs["train_mode"] is False
        assert mine["lr_max"] == pytest.approx(theirs["lr_max"], rel=1e-15)
        assert mine["weight_sum"] == pytest.approx(theirs["weight_sum"], rel=1e-12)
        state, package_state = optimizer.state_dict()["state"], package.state_dict()["state"]
        for index, entry in package_state.items():
            assert sorted(state[index]) == sorted(entry)  # z (and exp_avg_sq); no step
            assert_close([state[index][n] for n in entry], list(entry.values()), torch.float64)
        for opt in (optimizer, package):
            opt.train()
        assert optimizer.param_groups[0]["train_mode"] is True
        assert_close(list(model.parameters()), list(package_model.parameters()), torch.float64, f"train {phase}")


@pytest.mark.parametrize(("name", "package_name", "config"), SCHEDULE_FREE)
def test_schedule_free_modes_are_bitwise_the_numpy_class(name, package_name, config):
    """Through train(), steps, eval() and a torch.save round trip in eval mode: lrcore.torch's
    parameters and state are those of lrcore's numpy class, bit for bit."""
    data = make_data()
    model = make_model()
    optimizer = getattr(lrtorch, name)(model.parameters(), **config)
    arrays = [p.detach().numpy().copy() for p in model.parameters()]
    numpy_optimizer = getattr(lrcore, name)(arrays, **config)
    with pytest.raises(RuntimeError, match="eval mode"):  # a new optimizer is in eval mode, as the package's
        optimizer.zero_grad()
        objective(model, data, optimizer).backward()
        optimizer.step()
    assert optimizer.state == {} and optimizer.param_groups[0]["k"] == 0
    for opt in (optimizer, numpy_optimizer):
        opt.train()
    for _ in range(8):
        optimizer.zero_grad()
        objective(model, data, optimizer).backward()
        grads = [p.grad.numpy().copy() for p in model.parameters()]
        optimizer.step()
        numpy_optimizer.step(grads)
    for opt in (optimizer, numpy_optimizer):
        opt.eval()
    assert_bitwise(list(model.parameters()), arrays, "eval")
    numpy_state = numpy_optimizer.state_dict()
    for g, group_state in enumerate(numpy_state["group_states"]):
        for key, value in group_state.items():
            assert optimizer.param_groups[g][key] == value and type(optimizer.param_groups[g][key]) is type(value)
    for index, entry in optimizer.state_dict()["state"].items():
        for key, value in entry.items():
            assert np.array_equal(value.numpy(), numpy_state["state"][index][key]), key
    # A step in eval mode is refused and changes nothing.
    optimizer.zero_grad()
    objective(model, data, optimizer).backward()
    before = snapshot(model, optimizer)
    with pytest.raises(RuntimeError, match="eval mode"):
        optimizer.step()
    assert_unchanged(before, model, optimizer)
    # Saved in eval mode, resumed, put back in train mode: continues as the numpy class does.
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    resumed_model = make_model(seed=7)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed = getattr(lrtorch, name)(resumed_model.parameters(), **config)
    resumed.load_state_dict(checkpoint["optimizer"])
    assert resumed.param_groups[0]["train_mode"] is False
    data.follow(resumed_model, model)
    for opt in (resumed, numpy_optimizer):
        opt.train()
    for _ in range(4):
        resumed.zero_grad()
        objective(resumed_model, data, resumed).backward()
        grads = [p.grad.numpy().copy() for p in resumed_model.parameters()]
        resumed.step()
        numpy_optimizer.step(grads)
    assert_bitwise(list(resumed_model.parameters()), arrays, "resumed")
    assert resumed.param_groups[0]["k"] == 12


def test_schedule_free_group_added_later_joins_the_mode_and_bad_group_state_is_refused():
    model = make_model()
    optimizer = lrtorch.ScheduleFreeAdamW(list(model[0].parameters()), lr=0.01)
    optimizer.train()
    optimizer.add_param_group({"params": list(model[2].parameters())})
    assert optimizer.param_groups[1]["train_mode"] is True and optimizer.param_groups[1]["k"] == 0
    train_step(model, optimizer, make_data())
    assert [g["k"] for g in optimizer.param_groups] == [1, 1]
    before = snapshot(model, optimizer)
    for key, bad in (("k", 1.5), ("k", -1), ("train_mode", 2), ("weight_sum", -1.0), ("lr_max", "x")):
        state_dict = copy.deepcopy(optimizer.state_dict())
        state_dict["param_groups"][1][key] = bad
        with pytest.raises(ValueError, match=rf"param_groups\[1\].*{key}"):
            optimizer.load_state_dict(state_dict)
        assert_unchanged(before, model, optimizer)
    optimizer.param_groups[0]["k"] = 0.5
    optimizer.zero_grad()
    objective(model, make_data(), optimizer).backward()
    with pytest.raises(ValueError, match=r"param_groups\[0\].*k"):
        optimizer.step()
    optimizer.param_groups[0]["k"] = 1
    optimizer.param_groups[1]["lr_max"] = "x"
    with pytest.raises(ValueError, match=r"param_groups\[1\]: lr_max must be a number"):
        optimizer.step()
    optimizer.param_groups[1]["lr_max"] = before[1]["param_groups"][1]["lr_max"]
    assert_unchanged(before, model, optimizer)


def test_adafactor_on_a_matrix_and_a_bias_keeps_torchs_layout():
    """A 2-D weight keeps row_var (out, 1) and col_var (1, in), a 1-D bias variance, as torch.optim's
    Adafactor; the two agree, and a state of the wrong shape or for the wrong kind of parameter is refused."""
    data = make_data()
    model, torch_model = make_model(), make_model()
    optimizer = lrtorch.Adafactor(model.parameters(), lr=0.01, weight_decay=0.01)
    torch_optimizer = torch.optim.Adafactor(torch_model.parameters(), lr=0.01, weight_decay=0.01, foreach=False)
    for _ in range(STEPS):
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)
    mine, theirs = optimizer.state_dict()["state"], torch_optimizer.state_dict()["state"]
    weight, bias = model[0].weight, model[0].bias  # (12, 6) and (12,)
    assert sorted(mine[0]) == sorted(theirs[0]) == ["col_var", "row_var", "step"]
    assert mine[0]["row_var"].shape == (12, 1) and mine[0]["col_var"].shape == (1, 6)
    assert sorted(mine[1]) == sorted(theirs[1]) == ["step", "variance"]
    assert mine[1]["variance"].shape == bias.shape
    for index in theirs:
        for key, value in theirs[index].items():
            if key != "step":
                assert_close([mine[index][key]], [value], torch.float32, key)
    assert weight.shape == (12, 6)
    before = snapshot(model, optimizer)
    wrong_shape = copy.deepcopy(optimizer.state_dict())
    wrong_shape["state"][0]["row_var"] = torch.zeros(12, 6)
    with pytest.raises(ValueError, match=r"row_var.*\(12, 1\)"):
        optimizer.load_state_dict(wrong_shape)
    wrong_kind = copy.deepcopy(optimizer.state_dict())
    wrong_kind["state"][1]["row_var"] = torch.zeros(12, 1)
    with pytest.raises(ValueError, match="row_var.*absent"):
        optimizer.load_state_dict(wrong_kind)
    missing = copy.deepcopy(optimizer.state_dict())
    del missing["state"][0]["col_var"]
    with pytest.raises(ValueError, match="no 'col_var'"):
        optimizer.load_state_dict(missing)
    assert_unchanged(before, model, optimizer)
    # torch.optim's state loads and continues.
    optimizer.load_state_dict(copy.deepcopy(torch_optimizer.state_dict()))
    for _ in range(5):
        train_step(model, optimizer, data)
        train_step(torch_model, torch_optimizer, data)
    assert_close(list(model.parameters()), list(torch_model.parameters()), torch.float32)


def test_rprop_kernel_initialized_step_size_is_created_by_the_first_step():
    param = torch.nn.Parameter(torch.ones(4))
    optimizer = lrtorch.Rprop([param], lr=0.03)
    assert optimizer.state == {}
    param.grad = torch.tensor([1.0, -1.0, 0.0, 2.0])
    optimizer.step()
    state = optimizer.state[param]
    assert sorted(state) == ["prev", "step", "step_size"]
    assert torch.equal(state["step_size"], torch.full((4,), 0.03))  # the kernel started it at lr
    assert torch.equal(param.detach(), torch.tensor([0.97, 1.03, 1.0, 0.97]))


class _SparseOnlyRule:
    """A rule description that takes row-sparse gradients only (as SparseAdam's), for the check below."""

    dense_gradients = False

    def __init__(self, rule):
        self._rule = rule

    def __getattr__(self, name):
        return getattr(self._rule, name)


def test_sparse_gradient_rules_are_refused_at_construction():
    sparse_only = type("SparseAdam", (lrtorch.Adam,), {"rule": _SparseOnlyRule(lrtorch.Adam.rule)})
    with pytest.raises(TypeError, match=r"SparseAdam is not supported.*row-sparse gradients.*lrcore\.Adam"):
        sparse_only([torch.nn.Parameter(torch.zeros(3))])
    for rule in lrcore._rules.RULES.values():  # the real ones, once lrcore has them
        if not takes_dense_gradients(rule):
            with pytest.raises(TypeError, match="row-sparse"):
                getattr(lrtorch, rule.class_name)([torch.nn.Parameter(torch.zeros(3))])
