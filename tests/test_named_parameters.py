"""Parameters given with names, as torch's ``model.named_parameters()`` yields them.

Names change only how gradients are addressed: a step with a mapping name ->
gradient must do bitwise what the positional step (groups flattened in order)
does, put each gradient on the array of that name, and refuse a missing or
unknown name before writing anything.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import lrcore

from rules import RULE_CASES, RULE_IDS, RULES, make_gradients

RULE_BY_NAME = {rule.name: rule for rule in RULES}

# A small "model": every weight has the same shape as every bias, so a gradient
# landing on the wrong array would not be caught by a shape check.
MODEL_ORDER = ["layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias", "head.weight", "head.bias"]
SHAPE = (3, 4)


def model(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return {name: rng.standard_normal(SHAPE).astype(dtype) for name in MODEL_ORDER}


def named_parameters(params):
    """(name, array) pairs in model order, like torch's Module.named_parameters()."""
    return iter([(name, params[name]) for name in MODEL_ORDER])


def group_settings(rule=None):
    """The per-group overrides of the two groups: weight decay, or lr for a rule without weight decay (Rprop)."""
    if rule is None or "weight_decay" in rule.description.defaults:
        return {"weight_decay": 0.05}, {"weight_decay": 0.0}
    return {"lr": 0.02}, {"lr": 0.005}


def decay_groups(params, rule=None):
    """torch's usual split: weights decay, biases do not. Groups reorder the parameters."""
    decay = [(n, p) for n, p in named_parameters(params) if n.endswith("weight")]
    no_decay = [(n, p) for n, p in named_parameters(params) if n.endswith("bias")]
    first, second = group_settings(rule)
    return [{"params": decay, **first}, {"params": no_decay, **second}]


GROUP_ORDER = [n for n in MODEL_ORDER if n.endswith("weight")] + [n for n in MODEL_ORDER if n.endswith("bias")]


def gradients_by_name(seed, steps, dtype=np.float64):
    rng = np.random.default_rng(seed)
    raw = make_gradients(rng, [SHAPE] * len(MODEL_ORDER), dtype, steps)
    return [dict(zip(MODEL_ORDER, step)) for step in raw]


def frozen(opt, params):
    return copy.deepcopy((opt.state_dict(), {n: p.copy() for n, p in params.items()}, opt.step_count,
                          opt.skipped_steps, opt.last_hyperparameters))


def assert_same(a, b):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (sorted(map(str, a)), sorted(map(str, b)))
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


# ------------------------------------------------------------ equivalence --
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_named_groups_step_bitwise_like_positional_groups_in_group_order(rule, config):
    named_params, plain_params = model(), model()
    named = rule.optimizer(decay_groups(named_params, rule), **config)
    first, second = group_settings(rule)
    plain = rule.optimizer([{"params": [plain_params[n] for n in GROUP_ORDER[:3]], **first},
                            {"params": [plain_params[n] for n in GROUP_ORDER[3:]], **second}], **config)
    for grads in gradients_by_name(1, 4):
        assert named.step(grads) is True
        assert plain.step([grads[n] for n in GROUP_ORDER]) is True
    for name in MODEL_ORDER:
        assert named_params[name].tobytes() == plain_params[name].tobytes(), name
    named_state, plain_state = named.state_dict(), plain.state_dict()
    for group in named_state["param_groups"]:
        del group["param_names"]
    assert_same(named_state, plain_state)


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_gradients_by_name_land_on_the_array_of_that_name(rule, config):
    # Each parameter gets its own one-tensor optimizer as the reference: the
    # named optimizer must give every array exactly its own gradient's update.
    params = model(2)
    originals = {n: p.copy() for n, p in params.items()}
    opt = rule.optimizer([("layer2.bias", params["layer2.bias"]), ("head.weight", params["head.weight"]),
                          ("layer1.weight", params["layer1.weight"]), ("head.bias", params["head.bias"]),
                          ("layer1.bias", params["layer1.bias"]), ("layer2.weight", params["layer2.weight"])],
                         **config)
    steps = gradients_by_name(3, 3)
    for grads in steps:
        opt.step(grads)
    for name in MODEL_ORDER:
        alone = originals[name].copy()
        single = rule.optimizer([alone], **config)
        for grads in steps:
            single.step([grads[name]])
        assert alone.tobytes() == params[name].tobytes(), name


def test_named_parameters_as_a_one_shot_iterator():
    rule = RULE_BY_NAME["adam"]
    params = model(4)
    opt = rule.optimizer(named_parameters(params), lr=0.01)
    assert opt.param_groups[0]["param_names"] == MODEL_ORDER
    assert all(a is params[n] for a, n in zip(opt.param_groups[0]["params"], MODEL_ORDER))
    assert opt.state_dict()["param_groups"][0]["param_names"] == MODEL_ORDER


@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_positional_gradients_still_work_for_a_named_optimizer(rule, config):
    by_name, by_position = model(5), model(5)
    a = rule.optimizer(decay_groups(by_name, rule), **config)
    b = rule.optimizer(decay_groups(by_position, rule), **config)
    for grads in gradients_by_name(6, 3):
        a.step(grads)
        b.step([grads[n] for n in GROUP_ORDER])
    for name in MODEL_ORDER:
        assert by_name[name].tobytes() == by_position[name].tobytes(), name
    assert_same(a.state_dict(), b.state_dict())


def test_param_names_key_names_plain_arrays_too():
    params = model(7)
    opt = RULE_BY_NAME["sgd"].optimizer(
        [{"params": [params[n] for n in GROUP_ORDER[:3]], "param_names": GROUP_ORDER[:3], "weight_decay": 0.1},
         {"params": [params[n] for n in GROUP_ORDER[3:]], "param_names": GROUP_ORDER[3:]}], lr=0.1)
    reference = {n: p.copy() for n, p in params.items()}
    grads = gradients_by_name(8, 1)[0]
    opt.step(grads)
    for name in MODEL_ORDER:
        decay = 0.1 if name.endswith("weight") else 0.0
        expected = reference[name] - 0.1 * (grads[name] + decay * reference[name])
        np.testing.assert_allclose(params[name], expected, rtol=1e-14, atol=1e-15)
    assert [g["param_names"] for g in opt.state_dict()["param_groups"]] == [GROUP_ORDER[:3], GROUP_ORDER[3:]]


# --------------------------------------------------------- None = skipped --
@pytest.mark.parametrize(("rule", "config"), RULE_CASES, ids=RULE_IDS)
def test_a_none_gradient_by_name_skips_that_parameter(rule, config):
    params = model(9)
    opt = rule.optimizer(decay_groups(params, rule), **config)
    steps = gradients_by_name(10, 3)
    opt.step(steps[0])
    skipped = params["layer2.bias"].copy()
    before = opt.state_dict()
    index = GROUP_ORDER.index("layer2.bias")
    opt.step({**steps[1], "layer2.bias": None})
    assert params["layer2.bias"].tobytes() == skipped.tobytes()
    after = opt.state_dict()
    assert_same(after["state"][index], before["state"][index])
    assert after["state"][0]["step"] == 2
    assert after["step_count"] == 2
    # Same as the positional form with None in that place.
    twin_params = model(9)
    twin = rule.optimizer(decay_groups(twin_params, rule), **config)
    twin.step([steps[0][n] for n in GROUP_ORDER])
    twin.step([None if n == "layer2.bias" else steps[1][n] for n in GROUP_ORDER])
    for name in MODEL_ORDER:
        assert twin_params[name].tobytes() == params[name].tobytes(), name


# ------------------------------------------------------------- bad names --
@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_a_missing_name_raises_and_writes_nothing(rule_name):
    rule = RULE_BY_NAME[rule_name]
    params = model(11)
    opt = rule.optimizer(decay_groups(params, rule), lr=0.01)
    opt.step(gradients_by_name(12, 1)[0])
    grads = gradients_by_name(13, 1)[0]
    del grads["head.bias"]  # in the last group: the first groups' gradients are all there
    before = frozen(opt, params)
    with pytest.raises(ValueError, match=r"no gradient for parameter 'head\.bias'"):
        opt.step(grads)
    assert_same(frozen(opt, params), before)


@pytest.mark.parametrize("rule_name", list(RULE_BY_NAME))
def test_an_unknown_name_raises_naming_it_and_writes_nothing(rule_name):
    rule = RULE_BY_NAME[rule_name]
    params = model(14)
    opt = rule.optimizer(decay_groups(params, rule), lr=0.01)
    opt.step(gradients_by_name(15, 1)[0])
    grads = gradients_by_name(16, 1)[0]
    grads["layer3.weight"] = np.ones(SHAPE)
    before = frozen(opt, params)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['layer3\.weight'\]"):
        opt.step(grads)
    assert_same(frozen(opt, params), before)


def test_a_gradient_by_name_with_the_wrong_shape_names_its_position_and_writes_nothing():
    params = model(17)
    opt = RULE_BY_NAME["adam"].optimizer(decay_groups(params), lr=0.01)
    grads = gradients_by_name(18, 1)[0]
    grads["head.bias"] = np.ones(5)
    before = frozen(opt, params)
    index = GROUP_ORDER.index("head.bias")
    with pytest.raises(ValueError, match=rf"grads\[{index}\] has shape \(5,\)"):
        opt.step(grads)
    assert_same(frozen(opt, params), before)


def test_a_mapping_for_an_unnamed_optimizer_raises_type_error():
    params = model(19)
    opt = RULE_BY_NAME["sgd"].optimizer([params[n] for n in MODEL_ORDER], lr=0.1)
    before = frozen(opt, params)
    with pytest.raises(TypeError, match="cannot be given by name"):
        opt.step(gradients_by_name(20, 1)[0])
    with pytest.raises(TypeError, match="cannot be given by name"):
        opt.step({k: g for k, g in enumerate(gradients_by_name(20, 1)[0].values())})
    assert_same(frozen(opt, params), before)


# ------------------------------------------------------ construction rules --
def test_duplicate_names_raise():
    a, b = np.ones(3), np.zeros(3)
    sgd = RULE_BY_NAME["sgd"].optimizer
    with pytest.raises(ValueError, match="'w' appears twice"):
        sgd([("w", a), ("w", b)])
    with pytest.raises(ValueError, match="'w' appears twice"):
        sgd([{"params": [("w", a)]}, {"params": [("w", b)]}])
    with pytest.raises(ValueError, match="'w' appears twice"):
        sgd([{"params": [a], "param_names": ["w"]}, {"params": [b], "param_names": ["w"]}])
    opt = sgd([("w", a)])
    with pytest.raises(ValueError, match="'w' appears twice"):
        opt.add_param_group({"params": [("w", b)]})
    assert len(opt.param_groups) == 1
    opt.add_param_group({"params": [("v", b)]})
    assert opt.state_dict()["param_groups"][1]["param_names"] == ["v"]


def test_mixing_named_and_unnamed_groups_raises():
    a, b = np.ones(3), np.zeros(3)
    sgd = RULE_BY_NAME["sgd"].optimizer
    with pytest.raises(TypeError, match="every parameter group names its parameters or none"):
        sgd([{"params": [("w", a)]}, {"params": [b]}])
    with pytest.raises(TypeError, match="every parameter group names its parameters or none"):
        sgd([{"params": [a]}, {"params": [("w", b)]}])
    with pytest.raises(TypeError, match="mixes"):
        sgd([("w", a), b])
    named = sgd([("w", a)])
    with pytest.raises(TypeError, match="every parameter group names its parameters or none"):
        named.add_param_group({"params": [b]})
    unnamed = sgd([a])
    with pytest.raises(TypeError, match="every parameter group names its parameters or none"):
        unnamed.add_param_group({"params": [("w", b)]})
    assert len(named.param_groups) == len(unnamed.param_groups) == 1
    # After the refused groups both still step in their own form.
    named.step({"w": np.ones(3)})
    unnamed.step([np.ones(3)])
    assert named.step_count == unnamed.step_count == 1


def test_state_dict_round_trip_keeps_names_and_state():
    rule = RULE_BY_NAME["adam"]
    params = model(21)
    opt = rule.optimizer(decay_groups(params, rule), lr=0.01, amsgrad=True)
    for grads in gradients_by_name(22, 2):
        opt.step(grads)
    saved = opt.state_dict()
    assert [g["param_names"] for g in saved["param_groups"]] == [GROUP_ORDER[:3], GROUP_ORDER[3:]]
    copy_params = {n: p.copy() for n, p in params.items()}
    fresh = rule.optimizer(decay_groups(copy_params, rule), lr=0.01, amsgrad=True)
    fresh.load_state_dict(saved)
    grads = gradients_by_name(23, 1)[0]
    opt.step(grads)
    fresh.step(grads)
    for name in MODEL_ORDER:
        assert params[name].tobytes() == copy_params[name].tobytes(), name
    assert_same(opt.state_dict(), fresh.state_dict())


def test_load_state_dict_refuses_other_parameter_names_and_changes_nothing():
    a, b = np.zeros(3), np.zeros(2)
    source = lrcore.Adam([("weight", np.zeros(3)), ("bias", np.zeros(2))], lr=0.1)
    source.step({"weight": np.ones(3), "bias": np.ones(2)})
    target = lrcore.Adam([("bias", a), ("weight", b)], lr=0.1)
    before = target.state_dict()
    with pytest.raises(ValueError, match=r"names its parameters \['weight', 'bias'\], the optimizer's are \['bias', 'weight'\]"):
        target.load_state_dict(source.state_dict())
    assert target.state_dict()["param_groups"] == before["param_groups"] and target.step_count == 0
    same = lrcore.Adam([("weight", np.zeros(3)), ("bias", np.zeros(2))], lr=0.1)
    same.load_state_dict(source.state_dict())
    assert same.step_count == 1
