"""lrcore.schedules without torch: formulas, purity, validation, state, composition."""

from __future__ import annotations

import copy
import doctest
import math
import pickle
import random
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lrcore import schedules
from lrcore.schedules import (
    Chained,
    Constant,
    CosineAnnealing,
    CosineAnnealingWarmRestarts,
    Cyclic,
    CyclicMomentum,
    ExponentialDecay,
    InverseSqrt,
    InverseTimeDecay,
    Lambda,
    Linear,
    MultiStepDecay,
    OneCycle,
    OneCycleMomentum,
    PolynomialDecay,
    ReduceOnPlateau,
    Schedule,
    Sequential,
    StepDecay,
    Warmup,
)


def halving(t: int) -> float:
    """A picklable factor function for Lambda."""
    return 0.5 ** (t // 100)


def one_of_each():
    """One instance of every public schedule type."""
    return [
        Constant(0.1),
        StepDecay(0.1, 30),
        MultiStepDecay(0.1, [10, 10, 50]),
        ExponentialDecay(0.1, 0.5, decay_steps=20, staircase=True),
        InverseTimeDecay(0.1, 0.5, decay_steps=10),
        PolynomialDecay(0.1, 100, 2.0, end_lr=0.01),
        Linear(0.1),
        CosineAnnealing(0.1, 100, 0.001),
        CosineAnnealingWarmRestarts(0.1, 10, 2),
        Cyclic(0.01, 0.1, 20, mode="triangular2"),
        CyclicMomentum(0.8, 0.9, 20),
        OneCycle(0.1, 200, three_phase=True),
        OneCycleMomentum(200),
        Lambda(0.1, halving),
        Sequential([Linear(0.1, 0.5, 1.0, 10), CosineAnnealing(0.1, 100)], [10]),
        Chained([ExponentialDecay(0.1, 0.99), StepDecay(0.1, 50, 0.5)]),
        Warmup(CosineAnnealing(0.1, 100), 20),
        InverseSqrt(0.1, 50),
        ReduceOnPlateau(CosineAnnealing(0.1, 100), patience=2),
        0.5 * CosineAnnealing(0.1, 100),
        Linear(0.1, 0.5, 1.0, 10) * StepDecay(1.0, 30),
    ]


SCHEDULE_IDS = [type(s).__name__ for s in one_of_each()]


def test_every_public_schedule_is_covered():
    public = {name for name in schedules.__all__ if name != "Schedule"}
    assert public == set(SCHEDULE_IDS)
    for name in schedules.__all__:
        assert issubclass(getattr(schedules, name), Schedule)


# ----------------------------------------------------------------------------------------------
# Calling convention: pure, float-valued, t an integer >= 0
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("schedule", one_of_each(), ids=SCHEDULE_IDS)
def test_pure_and_order_independent(schedule):
    steps = list(range(400))
    forward = [schedule(t) for t in steps]
    shuffled = steps[:]
    random.Random(0).shuffle(shuffled)
    out_of_order = dict((t, schedule(t)) for t in shuffled)
    assert [out_of_order[t] for t in steps] == forward
    assert [schedule(t) for t in steps] == forward
    assert all(type(value) is float and math.isfinite(value) for value in forward)


@pytest.mark.parametrize("schedule", one_of_each(), ids=SCHEDULE_IDS)
def test_step_must_be_a_non_negative_integer(schedule):
    with pytest.raises(ValueError, match="t must be >= 0"):
        schedule(-1)
    with pytest.raises(TypeError, match="integer"):
        schedule(1.5)
    with pytest.raises(TypeError, match="integer"):
        schedule("3")
    assert schedule(np.int64(7)) == schedule(7)


@pytest.mark.parametrize("schedule", one_of_each(), ids=SCHEDULE_IDS)
def test_pickle_deepcopy_and_repr(schedule):
    for clone in (pickle.loads(pickle.dumps(schedule)), copy.deepcopy(schedule)):
        assert type(clone) is type(schedule)
        assert [clone(t) for t in range(0, 300, 7)] == [schedule(t) for t in range(0, 300, 7)]
    assert repr(schedule).startswith(type(schedule).__name__ + "(")


CLOSED_FORMS = [s for s in one_of_each() if hasattr(s, "_native")]


@pytest.mark.parametrize("schedule", CLOSED_FORMS, ids=[type(s).__name__ for s in CLOSED_FORMS])
def test_closed_forms_take_their_fields_from_the_compiled_declaration(schedule):
    from lrcore._core import schedules as native

    compiled = getattr(native, type(schedule).__name__)
    assert type(schedule)._fields == compiled._fields and len(compiled._fields) >= 1
    assert isinstance(schedule._native, compiled)
    for name in compiled._fields:
        assert getattr(schedule, name) == getattr(schedule._native, name)
        with pytest.raises(AttributeError):
            setattr(schedule, name, getattr(schedule, name))  # read-only
    # The compiled object pickles on its own and rebuilds through the same checks.
    clone = pickle.loads(pickle.dumps(schedule._native))
    assert repr(clone) == repr(schedule)
    assert [clone(t) for t in range(0, 300, 11)] == [schedule(t) for t in range(0, 300, 11)]
    state = schedule._native.__getstate__()
    assert list(state) == list(compiled._fields)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        compiled(**state, bogus=1)
    with pytest.raises(TypeError, match="missing keyword argument"):
        compiled(**dict(list(state.items())[1:]))


# ----------------------------------------------------------------------------------------------
# Formulas (the torch counterparts are checked in test_schedules_torch.py)
# ----------------------------------------------------------------------------------------------


def test_constant():
    assert [Constant(0.3)(t) for t in (0, 1, 10**12)] == [0.3, 0.3, 0.3]


@pytest.mark.parametrize("staircase", [False, True])
def test_exponential_decay_with_decay_steps(staircase):
    schedule = ExponentialDecay(0.2, 0.5, decay_steps=8, staircase=staircase)
    for t in range(200):
        exponent = t // 8 if staircase else t / 8
        assert schedule(t) == pytest.approx(0.2 * 0.5**exponent, rel=1e-14)


@pytest.mark.parametrize("staircase", [False, True])
def test_inverse_time_decay(staircase):
    schedule = InverseTimeDecay(0.2, 0.3, decay_steps=7, staircase=staircase)
    for t in range(200):
        progress = t // 7 if staircase else t / 7
        assert schedule(t) == pytest.approx(0.2 / (1 + 0.3 * progress), rel=1e-14)


def test_step_decay_is_staircase_exponential_decay():
    step = StepDecay(0.1, 13, 0.7)
    exponential = ExponentialDecay(0.1, 0.7, decay_steps=13, staircase=True)
    assert [step(t) for t in range(300)] == [exponential(t) for t in range(300)]


def test_multistep_counts_repeated_milestones():
    schedule = MultiStepDecay(1.0, [3, 3, 8], gamma=0.5)
    assert [schedule(t) for t in (0, 2, 3, 7, 8, 100)] == [1.0, 1.0, 0.25, 0.25, 0.125, 0.125]
    assert MultiStepDecay(1.0, [])(50) == 1.0


def test_polynomial_decay_to_end_lr_then_holds():
    schedule = PolynomialDecay(0.5, 40, power=1.5, end_lr=0.05)
    for t in range(40):
        assert schedule(t) == pytest.approx((0.5 - 0.05) * (1 - t / 40) ** 1.5 + 0.05, rel=1e-14)
    assert schedule(40) == schedule(41) == schedule(10**9) == pytest.approx(0.05, rel=1e-15)


def test_cosine_annealing_continues_past_t_max_like_torch():
    schedule = CosineAnnealing(1.0, 50, 0.1)
    assert schedule(50) == pytest.approx(0.1, rel=1e-15)
    for k in range(1, 50):
        assert schedule(50 + k) == pytest.approx(schedule(50 - k), rel=1e-12)
    assert schedule(100) == pytest.approx(1.0, rel=1e-15)


def test_warm_restarts_period_lengths():
    schedule = CosineAnnealingWarmRestarts(1.0, T_0=5, T_mult=3, eta_min=0.0)
    restarts = [t for t in range(1, 300) if schedule(t) == 1.0]
    assert restarts == [5, 20, 65, 200]  # periods 5, 15, 45, 135


def test_inverse_sqrt():
    schedule = InverseSqrt(0.4, 100)
    for t in range(100):
        assert schedule(t) == pytest.approx(0.4 * t / 100, rel=1e-15, abs=0.0)
    for t in range(100, 5000, 37):
        assert schedule(t) == pytest.approx(0.4 * math.sqrt(100 / t), rel=1e-15)


def test_onecycle_holds_min_lr_past_total_steps():
    for strategy in ("cos", "linear"):
        for three_phase in (False, True):
            schedule = OneCycle(0.1, 500, anneal_strategy=strategy, three_phase=three_phase)
            assert schedule(0) == pytest.approx(schedule.initial_lr, rel=1e-15)
            final = schedule(499)
            assert final == pytest.approx(schedule.min_lr, rel=1e-9)
            assert schedule(500) == schedule(501) == schedule(10**12) == final
            momentum = schedule.momentum_schedule()
            assert momentum(500) == momentum(10**9) == momentum(499)


@settings(max_examples=60, deadline=None)
@given(
    base=st.floats(0.0, 1.0),
    span=st.floats(0.0, 1.0),
    up=st.integers(1, 50),
    down=st.integers(0, 50),
    mode=st.sampled_from(["triangular", "triangular2", "exp_range"]),
    t=st.integers(0, 10**6),
)
def test_cyclic_stays_between_its_ends(base, span, up, down, mode, t):
    peak = base + span
    lr = Cyclic(base, peak, up, down, mode=mode, gamma=0.9999)(t)
    momentum = Cyclic(base, peak, up, down, mode=mode, gamma=0.9999).momentum_schedule(0.8, 0.9)(t)
    slack = 1e-12
    assert base - slack <= lr <= peak + slack
    assert 0.8 - slack <= momentum <= 0.9 + slack


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(3, 5000),
    pct=st.floats(0.05, 0.95),
    strategy=st.sampled_from(["cos", "linear"]),
    three_phase=st.booleans(),
    data=st.data(),
)
def test_onecycle_stays_between_min_and_max(total, pct, strategy, three_phase, data):
    if pct * total - 1.0 == 0.0 or (three_phase and pct > 0.5):
        return  # an empty warm-up (rejected) or overlapping three-phase layout (torch extrapolates)
    schedule = OneCycle(1.0, total, pct, strategy, three_phase=three_phase)
    t = data.draw(st.integers(0, 2 * total))
    assert schedule.min_lr * (1 - 1e-9) <= schedule(t) <= 1.0 + 1e-12


# ----------------------------------------------------------------------------------------------
# Composition
# ----------------------------------------------------------------------------------------------


def test_sequential_shifts_each_schedule_to_its_milestone():
    first, second, third = ExponentialDecay(0.1, 0.9), CosineAnnealing(0.2, 30), Constant(0.01)
    schedule = Sequential([first, second, third], milestones=[10, 40])
    for t in range(100):
        expected = first(t) if t < 10 else second(t - 10) if t < 40 else third(t - 40)
        assert schedule(t) == expected
    assert Sequential([0.3], [])(5) == 0.3  # a number stands for a Constant


def test_chained_multiplies_factors_relative_to_the_common_base():
    parts = [Linear(0.1, 0.25, 1.0, 20), StepDecay(0.1, 7, 0.5), Constant(0.1)]
    schedule = Chained(parts)
    assert schedule.base == 0.1
    for t in range(100):
        expected = 0.1 * (parts[0](t) / 0.1) * (parts[1](t) / 0.1)
        assert schedule(t) == pytest.approx(expected, rel=1e-15)
    # The example: the base is not squared (it was 0.004 at t=0 when values multiplied).
    chained = Chained([Linear(0.1, start_factor=0.4, total_steps=3), MultiStepDecay(0.1, [4, 8], 0.1)])
    assert [chained(t) for t in (0, 3, 4, 8)] == pytest.approx([0.04, 0.1, 0.01, 0.001], rel=1e-15)
    assert Chained([CosineAnnealing(0.2, 10)])(5) == pytest.approx(0.1, rel=1e-15)


def test_base_of_each_kind_of_schedule():
    assert StepDecay(0.3, 5).base == 0.3
    assert Cyclic(0.01, 0.1, 5).base == 0.01
    assert OneCycle(1.0, 100, div_factor=20.0).base == 0.05
    assert CyclicMomentum().base is None and OneCycleMomentum(100).base is None
    assert Lambda(0.2, halving).base == 0.2
    assert Warmup(CosineAnnealing(0.2, 10), 5).base == 0.2
    assert ReduceOnPlateau(Linear(0.2)).base == 0.2
    assert Sequential([Constant(0.2), CosineAnnealing(0.2, 10)], [3]).base == 0.2
    assert Sequential([Constant(0.01), CosineAnnealing(0.2, 10)], [3]).base is None
    assert (0.5 * StepDecay(0.2, 5)).base == 0.1
    assert (StepDecay(0.2, 5) * Linear(0.5)).base == 0.1
    assert (StepDecay(0.2, 5) * OneCycleMomentum(100)).base is None


@pytest.mark.parametrize(("parts", "match"), [
    ([StepDecay(0.1, 5), ExponentialDecay(1.0, 0.9)], r"schedules\[1\] has 1\.0"),
    ([0.1, 0.2], "share one base"),
    ([StepDecay(0.1, 5), OneCycleMomentum(100)], r"schedules\[1\] \(OneCycleMomentum\) has no base"),
    ([Sequential([0.1, 0.2], [3])], r"schedules\[0\] \(Sequential\) has no base"),
    ([Constant(0.0), StepDecay(0.0, 3)], "base learning rate 0"),
])
def test_chained_refuses_schedules_without_a_common_base(parts, match):
    with pytest.raises(ValueError, match=match):
        Chained(parts)


def test_chained_accepts_bases_equal_up_to_rounding():
    # 0.5 * 0.2 * 3 is 0.30000000000000004: the same learning rate for every purpose.
    schedule = Chained([3 * (0.5 * Constant(0.2)), StepDecay(0.3, 2)])
    assert schedule(2) == pytest.approx(0.03, rel=1e-14)


# ----------------------------------------------------------------------------------------------
# Arithmetic: number * schedule, schedule * number, schedule * schedule
# ----------------------------------------------------------------------------------------------


def test_scaling_by_a_number_from_either_side():
    inner = CosineAnnealing(0.1, 50)
    for scaled in (0.5 * inner, inner * 0.5, np.float64(0.5) * inner, inner * np.float32(0.5), 1 * inner):
        assert isinstance(scaled, schedules.Scaled)
        factor = scaled.factor
        assert [scaled(t) for t in range(60)] == [factor * inner(t) for t in range(60)]
    assert repr(0.5 * inner) == "Scaled(schedule=CosineAnnealing(lr=0.1, T_max=50, eta_min=0.0), factor=0.5)"
    assert inner(10) == CosineAnnealing(0.1, 50)(10)  # the operand is left as it was


def test_product_of_schedules():
    a, b, c = Linear(0.1, 0.5, 1.0, 10), StepDecay(1.0, 5, 0.5), ExponentialDecay(1.0, 0.9)
    product = a * b
    assert isinstance(product, schedules.Product) and product.schedules == [a, b]
    assert [product(t) for t in range(30)] == [a(t) * b(t) for t in range(30)]
    triple = a * b * c
    assert triple.schedules == [a, b, c]  # one flat product, not a product of a product
    assert triple(7) == pytest.approx(a(7) * b(7) * c(7), rel=1e-15)
    mixed = 2.0 * (a * b)
    assert isinstance(mixed, schedules.Scaled) and mixed(3) == pytest.approx(2.0 * a(3) * b(3), rel=1e-15)
    assert repr(a * b).startswith("Product(schedules=[Linear(lr=0.1, ")


@pytest.mark.parametrize("other", ["0.5", None, [0.5], True, lambda t: 0.5])
def test_arithmetic_refuses_what_is_not_a_number_or_schedule(other):
    schedule = Constant(0.1)
    with pytest.raises(TypeError):
        schedule * other
    with pytest.raises(TypeError):
        other * schedule


@pytest.mark.parametrize(("make", "error", "match"), [
    (lambda: -0.5 * Constant(0.1), ValueError, "factor"),
    (lambda: Constant(0.1) * float("nan"), ValueError, "factor"),
    (lambda: schedules.Scaled(0.1, 0.5), TypeError, "schedule"),
    (lambda: schedules.Product([Constant(0.1)]), ValueError, "at least two"),
    (lambda: schedules.Product([Constant(0.1), 0.5]), TypeError, r"schedules\[1\]"),
    (lambda: schedules.Product(Constant(0.1)), TypeError, "schedules"),
])
def test_arithmetic_validation(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_arithmetic_forwards_state_and_pickles():
    plateau = ReduceOnPlateau(0.1, factor=0.5, patience=0)
    schedule = 0.5 * (plateau * Linear(1.0, 0.5, 1.0, 10))
    for metric in (1.0, 2.0, 3.0):
        plateau.observe(metric)
    state = schedule.state_dict()
    assert state == {"schedule": {"schedules": [plateau.state_dict(), {}]}}
    clone = pickle.loads(pickle.dumps(schedule))
    assert [clone(t) for t in range(20)] == [schedule(t) for t in range(20)]
    fresh = 0.5 * (ReduceOnPlateau(0.1, factor=0.5, patience=0) * Linear(1.0, 0.5, 1.0, 10))
    assert fresh(0) != schedule(0)
    fresh.load_state_dict(copy.deepcopy(state))
    assert [fresh(t) for t in range(20)] == [schedule(t) for t in range(20)]
    with pytest.raises(ValueError, match="keys"):
        fresh.load_state_dict({"schedules": []})
    with pytest.raises(ValueError, match="2 schedules"):
        (Constant(0.1) * Constant(0.2)).load_state_dict({"schedules": [{}]})


def test_warmup_ramps_to_the_schedule_start():
    inner = CosineAnnealing(0.3, 100)
    schedule = Warmup(inner, warmup_steps=10, start_factor=0.0)
    assert schedule(0) == 0.0
    for t in range(10):
        assert schedule(t) == pytest.approx(0.3 * t / 10, rel=1e-15, abs=0.0)
    for t in range(10, 200):
        assert schedule(t) == inner(t - 10)
    assert [Warmup(inner, 0)(t) for t in range(50)] == [inner(t) for t in range(50)]
    assert Warmup(inner, 4, start_factor=0.5)(0) == pytest.approx(0.15, rel=1e-15)


def test_lambda():
    schedule = Lambda(0.2, lambda t: 1.0 / (t + 1))
    assert [schedule(t) for t in range(3)] == [0.2, 0.1, 0.2 / 3]


# ----------------------------------------------------------------------------------------------
# ReduceOnPlateau
# ----------------------------------------------------------------------------------------------


def feed(schedule, metrics):
    for metric in metrics:
        schedule.observe(metric)


def test_plateau_scales_a_wrapped_schedule():
    inner = CosineAnnealing(0.1, 1000)
    schedule = ReduceOnPlateau(inner, factor=0.5, patience=1)
    assert [schedule(t) for t in range(0, 1000, 50)] == [inner(t) for t in range(0, 1000, 50)]
    feed(schedule, [1.0, 1.0, 1.0])  # two bad epochs > patience 1: one reduction
    assert schedule.scale == 0.5
    for t in range(0, 1000, 50):
        assert schedule(t) == 0.5 * inner(t)
    feed(schedule, [1.0, 1.0])
    assert schedule.scale == 0.25


def test_plateau_min_lr_bounds_reductions_only():
    inner = Linear(1.0, start_factor=0.01, end_factor=1.0, total_steps=100)
    schedule = ReduceOnPlateau(inner, factor=0.1, patience=0, min_lr=0.05)
    feed(schedule, [1.0, 2.0])  # at step 0 the value (0.01) is below min_lr: nothing to reduce
    assert schedule.scale == 1.0
    schedule(100)
    feed(schedule, [2.0, 2.0, 2.0])  # at step 100: 1.0 -> 0.1 -> 0.05 (floor); the third changes nothing
    assert schedule.scale == pytest.approx(1e-2)
    assert schedule(100) == 0.05  # floored at min_lr
    assert schedule(0) == inner(0) == 0.01  # already below min_lr: left alone, never raised


def test_plateau_eps_uses_the_latest_step():
    inner = ExponentialDecay(1.0, 0.5)
    schedule = ReduceOnPlateau(inner, factor=0.5, patience=0, eps=1e-3)
    schedule(20)  # the optimizer is at step 20: lr ~ 1e-6, a reduction would change it by < eps
    feed(schedule, [1.0, 1.0])
    assert schedule.scale == 1.0
    schedule(0)  # at step 0 a reduction changes the value by 0.5 > eps
    feed(schedule, [1.0])
    assert schedule.scale == 0.5


def test_plateau_cooldown_and_modes():
    schedule = ReduceOnPlateau(1.0, mode="max", factor=0.5, patience=0, cooldown=2, threshold=0.1,
                               threshold_mode="abs")
    feed(schedule, [0.5, 0.55])  # 0.55 is not > 0.5 + 0.1: bad -> reduce, cooldown 2
    assert schedule(0) == 0.5 and schedule.in_cooldown
    feed(schedule, [0.1, 0.1])  # ignored during cooldown
    assert schedule(0) == 0.5 and not schedule.in_cooldown
    feed(schedule, [0.1])
    assert schedule(0) == 0.25
    assert schedule.num_observations == 5 and schedule.best == 0.5


def plateau_pipeline():
    """Composites holding a ReduceOnPlateau, with the plateau returned for observing."""
    plateau = ReduceOnPlateau(CosineAnnealing(0.1, 400, 1e-3), factor=0.5, patience=3, cooldown=2,
                              threshold_mode="abs", threshold=1e-3)
    pipeline = Sequential([Warmup(plateau, 20), Constant(1e-4)], [500])
    return plateau, pipeline


def _metrics(count, seed):
    rng = np.random.default_rng(seed)
    return np.maximum(1.0 / (1.0 + np.arange(count) / 10.0), 0.3) + rng.normal(0.0, 0.01, count)


@pytest.mark.parametrize("wrap", ["plain", "sequential-warmup", "chained"])
def test_plateau_state_dict_round_trip(wrap):
    def build():
        if wrap == "plain":
            plateau = ReduceOnPlateau(0.1, factor=0.5, patience=3, cooldown=2)
            return plateau, plateau
        if wrap == "sequential-warmup":
            return plateau_pipeline()
        plateau = ReduceOnPlateau(ExponentialDecay(0.1, 0.999), factor=0.3, patience=2, mode="max")
        return plateau, Chained([plateau, Linear(0.1, 0.5, 1.0, 50)])

    metrics = _metrics(200, seed=1)
    plateau, schedule = build()
    for step, metric in enumerate(metrics[:100]):
        schedule(step * 3)
        plateau.observe(metric)
    state = copy.deepcopy(schedule.state_dict())
    assert plateau.scale < 1.0  # reductions happened before the checkpoint

    restored_plateau, restored = build()
    restored.load_state_dict(state)
    assert restored.state_dict() == state
    for step, metric in enumerate(metrics[100:], start=100):
        assert restored(step * 3) == schedule(step * 3)
        plateau.observe(metric)
        restored_plateau.observe(metric)
    assert restored.state_dict() == schedule.state_dict()


def test_load_state_dict_rejects_unknown_state():
    with pytest.raises(ValueError, match="keys"):
        ReduceOnPlateau(0.1).load_state_dict({"best": 1.0})
    with pytest.raises(ValueError, match="no state"):
        CosineAnnealing(0.1, 10).load_state_dict({"scale": 0.5})
    with pytest.raises(ValueError, match="keys"):
        Warmup(0.1, 5).load_state_dict({"schedules": []})
    with pytest.raises(ValueError, match="2 schedules"):
        Sequential([0.1, 0.2], [5]).load_state_dict({"schedules": [{}]})
    CosineAnnealing(0.1, 10).load_state_dict({})
    assert Chained([0.1, ReduceOnPlateau(0.1)]).state_dict()["schedules"][0] == {}


# ----------------------------------------------------------------------------------------------
# Validation: every invalid argument raises, naming the argument
# ----------------------------------------------------------------------------------------------

INVALID = [
    (lambda: Constant(-0.1), ValueError, "lr"),
    (lambda: Constant(float("nan")), ValueError, "lr"),
    (lambda: Constant("0.1"), TypeError, "lr"),
    (lambda: StepDecay(0.1, 0), ValueError, "step_size"),
    (lambda: StepDecay(0.1, 2.5), TypeError, "step_size"),
    (lambda: StepDecay(0.1, 10, gamma=0.0), ValueError, "gamma"),
    (lambda: MultiStepDecay(0.1, [5, 3]), ValueError, "non-decreasing"),
    (lambda: MultiStepDecay(0.1, [-1, 3]), ValueError, r"milestones\[0\]"),
    (lambda: MultiStepDecay(0.1, 5), TypeError, "milestones"),
    (lambda: ExponentialDecay(0.1, -0.5), ValueError, "gamma"),
    (lambda: ExponentialDecay(0.1, 0.5, decay_steps=0), ValueError, "decay_steps"),
    (lambda: InverseTimeDecay(0.1, -1.0), ValueError, "decay_rate"),
    (lambda: InverseTimeDecay(0.1, 1.0, decay_steps=0), ValueError, "decay_steps"),
    (lambda: PolynomialDecay(0.1, 0), ValueError, "total_steps"),
    (lambda: PolynomialDecay(0.1, 10, power=-1.0), ValueError, "power"),
    (lambda: PolynomialDecay(0.1, 10, end_lr=-1.0), ValueError, "end_lr"),
    (lambda: Linear(0.1, start_factor=0.0), ValueError, "start_factor"),
    (lambda: Linear(0.1, start_factor=1.5), ValueError, "start_factor"),
    (lambda: Linear(0.1, end_factor=1.5), ValueError, "end_factor"),
    (lambda: Linear(0.1, total_steps=0), ValueError, "total_steps"),
    (lambda: CosineAnnealing(0.1, 0), ValueError, "T_max"),
    (lambda: CosineAnnealing(0.1, 10, eta_min=-1.0), ValueError, "eta_min"),
    (lambda: CosineAnnealingWarmRestarts(0.1, 0), ValueError, "T_0"),
    (lambda: CosineAnnealingWarmRestarts(0.1, 10, T_mult=0), ValueError, "T_mult"),
    (lambda: CosineAnnealingWarmRestarts(0.1, 10, T_mult=1.5), TypeError, "T_mult"),
    (lambda: Cyclic(0.1, 1.0, step_size_up=0), ValueError, "step_size_up"),
    (lambda: Cyclic(0.1, 1.0, step_size_down=-1), ValueError, "step_size_down"),
    (lambda: Cyclic(0.1, 1.0, mode="sawtooth"), ValueError, "mode"),
    (lambda: Cyclic(0.1, 1.0, gamma=0.0), ValueError, "gamma"),
    (lambda: Cyclic(-0.1, 1.0), ValueError, "base_lr"),
    (lambda: Cyclic(0.1, 1.0).momentum_schedule(0.95, 0.9), ValueError, "base_momentum"),
    (lambda: Cyclic(0.1, 1.0).momentum_schedule(0.8, 1.5), ValueError, "max_momentum"),
    (lambda: OneCycle(0.1, 0), ValueError, "total_steps"),
    (lambda: OneCycle(0.1, 100, pct_start=1.5), ValueError, "pct_start"),
    (lambda: OneCycle(0.1, 10, pct_start=0.1), ValueError, "pct_start"),
    (lambda: OneCycle(0.1, 100, anneal_strategy="exp"), ValueError, "anneal_strategy"),
    (lambda: OneCycle(0.1, 100, div_factor=0.0), ValueError, "div_factor"),
    (lambda: OneCycle(0.1, 100, final_div_factor=-1.0), ValueError, "final_div_factor"),
    (lambda: OneCycle(0.1, 100).momentum_schedule(0.99, 0.9), ValueError, "base_momentum"),
    (lambda: InverseSqrt(0.1, 0), ValueError, "warmup_steps"),
    (lambda: Lambda(0.1, 3.0), TypeError, "fn"),
    (lambda: Sequential([], []), ValueError, "at least one"),
    (lambda: Sequential([0.1, 0.2], []), ValueError, "milestones"),
    (lambda: Sequential([0.1, 0.2, 0.3], [10, 10]), ValueError, "strictly increasing"),
    (lambda: Sequential([0.1, 0.2], [0]), ValueError, r"milestones\[0\]"),
    (lambda: Sequential([0.1, "x"], [3]), TypeError, r"schedules\[1\]"),
    (lambda: Chained([]), ValueError, "at least one"),
    (lambda: Chained(CosineAnnealing(0.1, 10)), TypeError, "schedules"),
    (lambda: Warmup(CosineAnnealing(0.1, 10), -1), ValueError, "warmup_steps"),
    (lambda: Warmup(CosineAnnealing(0.1, 10), 5, start_factor=2.0), ValueError, "start_factor"),
    (lambda: Warmup(None, 5), TypeError, "schedule"),
    (lambda: ReduceOnPlateau(0.1, factor=1.0), ValueError, "factor"),
    (lambda: ReduceOnPlateau(0.1, factor=-0.5), ValueError, "factor"),
    (lambda: ReduceOnPlateau(0.1, mode="avg"), ValueError, "mode"),
    (lambda: ReduceOnPlateau(0.1, threshold_mode="pct"), ValueError, "threshold_mode"),
    (lambda: ReduceOnPlateau(0.1, patience=-1), ValueError, "patience"),
    (lambda: ReduceOnPlateau(0.1, cooldown=-1), ValueError, "cooldown"),
    (lambda: ReduceOnPlateau(0.1, threshold=-1.0), ValueError, "threshold"),
    (lambda: ReduceOnPlateau(0.1, min_lr=-1.0), ValueError, "min_lr"),
    (lambda: ReduceOnPlateau(0.1, eps=-1.0), ValueError, "eps"),
    (lambda: ReduceOnPlateau([0.1]), TypeError, "schedule_or_lr"),
]


@pytest.mark.parametrize(("make", "error", "name"), INVALID, ids=[f"{i}-{case[2]}" for i, case in enumerate(INVALID)])
def test_invalid_arguments_raise(make, error, name):
    with pytest.raises(error, match=name):
        make()


# ----------------------------------------------------------------------------------------------
# Documentation and the C++ header
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["", "._closed_form", "._composite", "._plateau"])
def test_docstring_examples(module):
    import importlib

    target = importlib.import_module("lrcore.schedules" + module)
    result = doctest.testmod(target, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


CPP_PROGRAM = r"""
#include <cstdio>
#include "lrcore/schedules.hpp"
int main() {
    using namespace lrcore::schedules;
    const std::int64_t steps[] = {0, 1, 7, 99, 100, 101, 1234};
    const OneCyclePhases phases{1000, 0.3, AnnealStrategy::linear, true};
    for (std::int64_t t : steps) {
        std::printf("%.17g %.17g %.17g %.17g %.17g\n",
                    CosineAnnealingWarmRestarts{0.1, 10, 2, 0.001}(t),
                    OneCycle{0.1, phases}(t),
                    Cyclic{0.01, 0.1, CyclicWave{20.0, 30.0, CyclicMode::exp_range, 0.999}}(t),
                    MultiStepDecay{0.1, {7, 7, 100}, 0.5}(t),
                    PolynomialDecay{0.1, 100, 2.0, 0.01}(t));
    }
}
"""


def test_cpp_header_is_standalone_and_agrees(tmp_path):
    compiler = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        pytest.skip("no C++ compiler on PATH")
    from pathlib import Path

    include = Path(__file__).resolve().parents[1] / "cpp" / "include"
    if not (include / "lrcore" / "schedules.hpp").exists():
        pytest.skip("not a source checkout")
    source = tmp_path / "schedules_demo.cpp"
    source.write_text(CPP_PROGRAM)
    binary = tmp_path / "schedules_demo"
    subprocess.run(
        [compiler, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{include}", str(source), "-o", str(binary)],
        check=True,
        capture_output=True,
    )
    output = subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(output) == 7
    python = [
        CosineAnnealingWarmRestarts(0.1, 10, 2, 0.001),
        OneCycle(0.1, 1000, 0.3, "linear", three_phase=True),
        Cyclic(0.01, 0.1, 20, 30, mode="exp_range", gamma=0.999),
        MultiStepDecay(0.1, [7, 7, 100], 0.5),
        PolynomialDecay(0.1, 100, 2.0, 0.01),
    ]
    for line, t in zip(output, (0, 1, 7, 99, 100, 101, 1234)):
        values = [float(field) for field in line.split()]
        assert values == pytest.approx([schedule(t) for schedule in python], rel=1e-15)
