"""The Python halves of the rule descriptions agree with the native halves, with torch.optim and with the docs."""

from __future__ import annotations

import inspect
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

import lrcore
from lrcore import _core, _rules
from lrcore._rules import RULES
from rules import ROW_RULES
from rules import RULES as TEST_RULES

DESCRIPTIONS = list(RULES.values())
IDS = [rule.name for rule in DESCRIPTIONS]
# torch.optim arguments that choose an implementation, not the update: lrcore has one implementation.
TORCH_IMPLEMENTATION_FLAGS = {"foreach", "capturable", "differentiable", "fused"}
# The rules whose reference is the schedulefree package (class there), not torch.optim.
SCHEDULEFREE_CLASSES = {"ScheduleFreeAdamW": "AdamWScheduleFree", "ScheduleFreeSGD": "SGDScheduleFree"}


def _native_names(rule):
    return [name for name, _, _ in rule.native.hyperparameters]


# ------------------------------------------------------- the native half --
def test_every_native_rule_is_described():
    assert sorted({rule.native.name for rule in DESCRIPTIONS}) == sorted(_core.rules.names)
    for rule in DESCRIPTIONS:
        assert rule.native is getattr(_core.rules, rule.native.name)


@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_each_native_hyperparameter_is_set_exactly_once(rule):
    set_by = [native for h in rule.hyperparameters for native in h.native] + list(rule.fixed)
    assert Counter(set_by) == Counter(_native_names(rule))
    kinds = {name: kind for name, kind, _ in rule.native.hyperparameters}
    for h in rule.hyperparameters:
        if h.kind == "option":
            assert h.native == (), f"{h.name} only sets initial state and must not reach the kernel"
        else:
            assert {kinds[n] for n in h.native} == {h.kind}, h.name
    for native, value in rule.fixed.items():
        assert isinstance(value, bool) if kinds[native] == "flag" else isinstance(value, float), native


@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_valid_ranges_come_from_the_native_rule(rule):
    ranges = {name: valid for name, _, valid in rule.native.hyperparameters}
    for h in rule.hyperparameters:
        if h.native:
            natives = [ranges[n] for n in h.native]
            # A pair whose elements have different ranges (Adafactor's eps) states each.
            expected = natives[0] if len(set(natives)) == 1 else "; ".join(
                f"{n} {r}" for n, r in zip(h.native, natives))
            assert h.valid == expected, h.name


@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_defaults_pass_the_native_checks(rule):
    values = dict(rule.fixed)
    for h in rule.hyperparameters:
        values.update(zip(h.native, h.default if len(h.native) > 1 else (h.default,)))
    rule.native.check_hyperparameters(values)


@pytest.mark.parametrize("change, message", [
    (lambda r: replace(r, hyperparameters=r.hyperparameters[:-1]), "have no argument"),
    (lambda r: replace(r, fixed={**r.fixed, "amsgrad": True}), "also an argument"),
    (lambda r: replace(r, hyperparameters=r.hyperparameters + (_rules._number("beta3", 0.5, "none"),)),
     "has no hyperparameter 'beta3'"),
    (lambda r: replace(r, hyperparameters=r.hyperparameters + (_rules._flag("lr", False, "again"),)),
     "set by both"),
    (lambda r: replace(r, functional_arguments=r.functional_arguments[:-1]), "do not match the native states"),
])
def test_a_description_that_disagrees_with_the_native_half_is_refused(change, message):
    with pytest.raises(RuntimeError, match=message):
        _rules._complete(change(RULES["adam"]))


# -------------------------------------------------------------- torch --
@pytest.mark.torch
@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_class_signature_is_torchs(rule):
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not hasattr(torch.optim, rule.class_name):
        pytest.skip(f"torch.optim has no {rule.class_name} (FBGEMM's rule; its signature is lrcore's own)")
    ours = list(inspect.signature(getattr(lrcore, rule.class_name)).parameters.values())
    if rule.class_name in SCHEDULEFREE_CLASSES:
        # Not in torch.optim: the reference implementation is the schedulefree package's class.
        schedulefree = pytest.importorskip("schedulefree", reason="schedulefree is not installed")
        reference = getattr(schedulefree, SCHEDULEFREE_CLASSES[rule.class_name])
    else:
        reference = getattr(torch.optim, rule.class_name)
    theirs = list(inspect.signature(reference).parameters.values())
    assert ours[0].name == theirs[0].name == "params"
    own = ("skip_nonfinite", "max_grad_norm", "norm_type",  # lrcore's keyword-only additions
           "state_dtype", "master_weights", "stochastic_rounding", "seed")
    assert [p.name for p in ours if p.kind is inspect.Parameter.KEYWORD_ONLY] == list(own)
    names = [p.name for p in ours[1:] if p.name not in own]
    assert names == [h.name for h in rule.hyperparameters]
    torch_names = [p.name for p in theirs[1:]]
    # Every argument of torch's that changes the update is one of ours (or one this rule fixes) ...
    assert set(torch_names) - TORCH_IMPLEMENTATION_FLAGS - set(rule.fixed) == set(names)
    # ... in torch's order, with torch's defaults,
    assert [n for n in torch_names if n in names] == names
    torch_defaults = {p.name: p.default for p in theirs}
    for h in rule.hyperparameters:
        assert h.default == torch_defaults[h.name], h.name
        assert isinstance(h.default, bool) == isinstance(torch_defaults[h.name], bool), h.name
    # ... and a positional call means the same: torch's leading positional arguments are ours, in place.
    positional = [p.name for p in theirs[1:] if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    leading = []
    for name in positional:
        if name not in names:
            break
        leading.append(name)
    assert leading and names[:len(leading)] == leading
    # A hyperparameter the variant fixes, where torch's class has it too, is fixed at torch's default.
    for name, value in rule.fixed.items():
        if name in torch_defaults:
            assert value == torch_defaults[name], name


# ------------------------------------------------------ the functional layer --
@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_functional_arguments_are_the_native_states(rule):
    native_states = [(name, list_name) for name, list_name, *_ in rule.native.states]
    assert [(s.name, s.list_name) for s in rule.states] == native_states
    native_scalars = [(name, list_name) for name, list_name, _ in rule.native.scalars]
    assert [(s.name, s.list_name) for s in rule.scalars] == native_scalars
    lists = {list_name for _, list_name in native_states + native_scalars}
    assert set(rule.functional_arguments) - lists <= {"steps", "group_state"}
    assert ("group_state" in rule.functional_arguments) == bool(rule.native.group_scalars)
    assert lists <= set(rule.functional_arguments)
    assert len(set(rule.functional_arguments)) == len(rule.functional_arguments)
    if rule.native.has_step:
        assert "steps" in rule.functional_arguments


@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_functional_signature_follows_the_description(rule):
    parameters = inspect.signature(getattr(lrcore.functional, rule.name)).parameters.values()
    positional = [p.name for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    keywords = [p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    assert positional == ["params", "grads", *rule.functional_arguments]
    mixed_precision = ["master_weights", "stochastic_rounding", "seed"] + (
        [] if "steps" in rule.functional_arguments else ["steps"])  # every function's, after the rule's own
    assert keywords == [n for n in _native_names(rule) if n not in rule.fixed] + mixed_precision
    optional = {p.name for p in parameters if p.default is None}
    for s in rule.states:
        assert (s.list_name in optional) == (not s.always), s.list_name
    # steps: positional and required for rules with step numbers, else an optional keyword.
    assert ("steps" in optional) == (not rule.has_step)


# ---------------------------------------------------------------- docs --
@pytest.mark.parametrize("rule", DESCRIPTIONS, ids=IDS)
def test_docstrings_mention_every_hyperparameter_and_state(rule):
    class_doc = getattr(lrcore, rule.class_name).__doc__
    for h in rule.hyperparameters:
        assert f"    {h.name}: {h.doc}" in class_doc, h.name
        assert repr(h.default) in class_doc
    assert "skip_nonfinite:" in class_doc
    for s in rule.states:
        assert f"``{s.name}``" in class_doc
    function_doc = getattr(lrcore.functional, rule.name).__doc__
    for name in _native_names(rule):
        if name not in rule.fixed:
            assert f"    {name}: " in function_doc, name
    for name in rule.functional_arguments:
        assert f"    {name}: " in function_doc, name


def test_documentation_table_has_a_row_per_rule():
    table = _rules.documentation_table().splitlines()
    assert len(table) == 2 + len(RULES)
    for rule, row in zip(DESCRIPTIONS, table[2:]):
        assert row.startswith(f"| `lrcore.{rule.class_name}` |")
        for h in rule.hyperparameters:
            assert f"`{h.name}={h.default!r}`" in row


# -------------------------------------------------------- needed states --
NEEDED = [
    ("sgd", {}, []),
    ("sgd", {"momentum": 0.9}, ["momentum_buffer"]),
    ("sgd", {"momentum": 0.9, "nesterov": True}, ["momentum_buffer"]),
    ("adagrad", {}, ["sum"]),
    ("rmsprop", {}, ["square_avg"]),
    ("rmsprop", {"centered": True}, ["square_avg", "grad_avg"]),
    ("rmsprop", {"momentum": 0.5}, ["square_avg", "momentum_buffer"]),
    ("rmsprop", {"centered": True, "momentum": 0.5}, ["square_avg", "grad_avg", "momentum_buffer"]),
    ("adam", {}, ["exp_avg", "exp_avg_sq"]),
    ("adam", {"amsgrad": True}, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    ("adamw", {}, ["exp_avg", "exp_avg_sq"]),
    ("adamw", {"amsgrad": True}, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]),
    # Every configuration needs all three; which a parameter has depends on its ndim (below).
    ("adafactor", {}, ["row_var", "col_var", "variance"]),
    ("nadam", {}, ["exp_avg", "exp_avg_sq"]),
    ("radam", {}, ["exp_avg", "exp_avg_sq"]),
    ("adamax", {}, ["exp_avg", "exp_inf"]),
    ("lion", {}, ["exp_avg"]),
    ("adadelta", {}, ["square_avg", "acc_delta"]),
    ("rprop", {}, ["prev", "step_size"]),
    ("asgd", {}, ["ax"]),
    ("schedule_free_adamw", {}, ["z", "exp_avg_sq"]),
    ("schedule_free_sgd", {}, ["z"]),
    ("sparse_adam", {}, ["exp_avg", "exp_avg_sq"]),
    ("rowwise_adagrad", {}, ["sum"]),
]
TEST_RULE = {rule.name: rule for rule in TEST_RULES + ROW_RULES}


@pytest.mark.parametrize("name, config, expected", NEEDED, ids=[f"{n}-{c}" for n, c, _ in NEEDED])
def test_needed_states(name, config, expected):
    rule = TEST_RULE[name]
    assert rule.description.native.needed_states(rule.native_values(config)) == expected


def test_needed_states_cases_cover_every_conditional_state():
    for rule in DESCRIPTIONS:
        for s in rule.states:
            cases = [expected for name, _, expected in NEEDED if name == rule.name]
            assert any(s.name in e for e in cases) and (s.always or any(s.name not in e for e in cases)), s.name


@pytest.mark.parametrize("name", sorted(TEST_RULE))
def test_needed_when_text_states_the_condition(name):
    """``needed_when`` is shown in the docs; read as an expression over the hyperparameters, it is the rule."""
    rule = TEST_RULE[name]
    for config in rule.configs + [{}] + [case for n, case, _ in NEEDED if n == name]:
        values = rule.native_values(config)
        needed = rule.description.native.needed_states(values)
        for s in rule.description.states:
            expected = s.always or bool(eval(s.needed_when, {"__builtins__": {}}, dict(values)))  # noqa: S307
            assert (s.name in needed) == expected, (s.name, config)


@pytest.mark.parametrize("amsgrad", [False, True])
def test_optimizer_keeps_exactly_the_needed_states(amsgrad):
    w = np.zeros(3, dtype=np.float32)
    opt = lrcore.Adam([w], lr=0.1, amsgrad=amsgrad)
    opt.step([np.ones(3, dtype=np.float32)])
    saved = set(opt.state_dict()["state"][0]) - {"step"}
    assert ("max_exp_avg_sq" in saved) == amsgrad
    assert saved == set(opt.rule.native.needed_states(opt.last_hyperparameters[0]))


# ------------------------------------------------ states shaped by the parameter --
@pytest.mark.parametrize("shape", [(), (5,), (4, 6), (2, 3, 7)])
def test_adafactor_state_exists_and_is_shaped_by_the_parameter_ndim(shape):
    """row_var/col_var (torch's shapes) for 2 or more dimensions, variance for fewer, None otherwise."""
    torch = pytest.importorskip("torch")
    w = np.ones(shape, np.float32)
    opt = lrcore.Adafactor([w])
    opt.step([np.full(shape, 0.5, np.float32)])
    ours = {k: v for k, v in opt.state_dict()["state"][0].items() if k != "step"}
    t = torch.ones(shape, requires_grad=True)
    theirs_opt = torch.optim.Adafactor([t])
    t.grad = torch.full(shape, 0.5)
    theirs_opt.step()
    theirs = {k: v for k, v in theirs_opt.state[t].items() if k != "step"}
    assert set(ours) == set(theirs)
    for name, value in theirs.items():
        assert ours[name].shape == tuple(value.shape), name
    description = lrcore.Adafactor.rule
    for s in description.states:
        assert s.exists_for(shape) == (s.name in theirs)
        if s.name in theirs:
            assert s.shape_for(shape) == tuple(theirs[s.name].shape)


# ---------------------------------------------------------- scalar states --
def test_nadam_keeps_mu_product_as_a_scalar_state():
    rule = RULES["nadam"]
    assert [(s.name, s.list_name, s.initial) for s in rule.scalars] == [("mu_product", "mu_products", 1.0)]
    assert rule.native.scalars == [("mu_product", "mu_products", 1.0)]
    assert all(rule.scalars == () for rule in DESCRIPTIONS if rule.name not in ("nadam", "asgd"))
    parameters = inspect.signature(lrcore.functional.nadam).parameters
    assert parameters["mu_products"].default is inspect.Parameter.empty  # every configuration needs it
    assert "``mu_product``" in lrcore.functional.nadam.__doc__


def test_a_description_without_its_scalar_list_is_refused():
    nadam = RULES["nadam"]
    without = tuple(name for name in nadam.functional_arguments if name != "mu_products")
    with pytest.raises(RuntimeError, match="do not match the native states"):
        _rules._complete(replace(nadam, functional_arguments=without))


def test_scalar_state_lives_in_state_dict_as_a_float64_number():
    w = np.ones(4, np.float32)
    opt = lrcore.NAdam([w])
    saved = opt.state_dict()
    assert saved["state"] == {}  # nothing before the first step, as in torch
    opt.step([np.ones(4, np.float32)])
    mu_product = opt.state_dict()["state"][0]["mu_product"]
    assert isinstance(mu_product, np.ndarray) and mu_product.shape == () and mu_product.dtype == np.float64
    mu_1 = 0.9 * (1 - 0.5 * 0.96 ** 0.004)
    assert float(mu_product) == mu_1
    opt.step([np.ones(4, np.float32)])
    assert float(opt.state_dict()["state"][0]["mu_product"]) == mu_1 * (0.9 * (1 - 0.5 * 0.96 ** 0.008))
