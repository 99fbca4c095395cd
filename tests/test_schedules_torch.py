"""lrcore.schedules against torch.optim.lr_scheduler, step by step, in float64.

Each torch scheduler is driven the way torch intends (optimizer.step() then
scheduler.step()) on a dummy parameter; the value after t scheduler steps must
equal s(t) to 1e-9 relative.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.optim import lr_scheduler as torch_schedulers  # noqa: E402

from lrcore import schedules  # noqa: E402

pytestmark = pytest.mark.torch

RTOL = 1e-9
STEPS = 1200
LR = 0.1


def _optimizer(kind: str, lr: float = LR):
    parameter = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    if kind == "sgd":
        return torch.optim.SGD([parameter], lr=lr, momentum=0.9)
    return torch.optim.Adam([parameter], lr=lr)


def torch_trace(make_scheduler, steps, *, lr=LR, kind="sgd", read="lr", metrics=None):
    """Values of param_groups[0][read] before any step and after each of `steps` scheduler steps."""
    optimizer = _optimizer(kind, lr)
    scheduler = make_scheduler(optimizer)
    group = optimizer.param_groups[0]

    def current():
        return group["betas"][0] if read == "beta1" else group[read]

    values = [current()]
    for index in range(steps):
        optimizer.step()  # no gradient: a no-op that keeps torch's call-order check quiet
        if metrics is None:
            scheduler.step()
        else:
            scheduler.step(metrics[index])
        values.append(current())
    return np.asarray(values, dtype=np.float64)


def lrcore_trace(schedule, steps):
    return np.asarray([schedule(t) for t in range(steps + 1)], dtype=np.float64)


def max_relative_deviation(ours, theirs):
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    assert ours.shape == theirs.shape
    scale = np.maximum(np.abs(ours), np.abs(theirs))
    difference = np.abs(ours - theirs)
    relative = np.divide(difference, scale, out=np.zeros_like(difference), where=scale > 0)
    return float(relative.max())


# (id, lrcore schedule factory, torch scheduler factory, steps). The optimizer's lr is LR.
CASES = [
    # StepLR
    ("step-30-0.1", lambda: schedules.StepDecay(LR, 30, 0.1), lambda o: torch_schedulers.StepLR(o, 30, 0.1), STEPS),
    ("step-7-0.5", lambda: schedules.StepDecay(LR, 7, 0.5), lambda o: torch_schedulers.StepLR(o, 7, 0.5), STEPS),
    ("step-1-0.99", lambda: schedules.StepDecay(LR, 1, 0.99), lambda o: torch_schedulers.StepLR(o, 1, 0.99), STEPS),
    # MultiStepLR, repeated milestones and a milestone at 0
    (
        "multistep",
        lambda: schedules.MultiStepDecay(LR, [30, 80, 700], 0.1),
        lambda o: torch_schedulers.MultiStepLR(o, [30, 80, 700], 0.1),
        STEPS,
    ),
    (
        "multistep-repeated",
        lambda: schedules.MultiStepDecay(LR, [10, 10, 500, 500, 500], 0.5),
        lambda o: torch_schedulers.MultiStepLR(o, [10, 10, 500, 500, 500], 0.5),
        STEPS,
    ),
    (
        "multistep-zero",
        lambda: schedules.MultiStepDecay(LR, [0, 3, 999], 0.9),
        lambda o: torch_schedulers.MultiStepLR(o, [0, 3, 999], 0.9),
        STEPS,
    ),
    # ExponentialLR
    ("exp-0.99", lambda: schedules.ExponentialDecay(LR, 0.99), lambda o: torch_schedulers.ExponentialLR(o, 0.99),
     STEPS),
    ("exp-0.9", lambda: schedules.ExponentialDecay(LR, 0.9), lambda o: torch_schedulers.ExponentialLR(o, 0.9), STEPS),
    (
        "exp-1.001",
        lambda: schedules.ExponentialDecay(LR, 1.001),
        lambda o: torch_schedulers.ExponentialLR(o, 1.001),
        STEPS,
    ),
    # PolynomialLR, including steps past total_iters
    (
        "poly-1000-1",
        lambda: schedules.PolynomialDecay(LR, 1000, 1.0),
        lambda o: torch_schedulers.PolynomialLR(o, 1000, 1.0),
        STEPS,
    ),
    (
        "poly-500-2",
        lambda: schedules.PolynomialDecay(LR, 500, 2.0),
        lambda o: torch_schedulers.PolynomialLR(o, 500, 2.0),
        STEPS,
    ),
    (
        "poly-300-0.5",
        lambda: schedules.PolynomialDecay(LR, 300, 0.5),
        lambda o: torch_schedulers.PolynomialLR(o, 300, 0.5),
        STEPS,
    ),
    (
        "poly-1500-3",
        lambda: schedules.PolynomialDecay(LR, 1500, 3.0),
        lambda o: torch_schedulers.PolynomialLR(o, 1500, 3.0),
        1600,
    ),
    # LinearLR
    ("linear-default", lambda: schedules.Linear(LR), lambda o: torch_schedulers.LinearLR(o), STEPS),
    (
        "linear-warmup-1000",
        lambda: schedules.Linear(LR, 0.01, 1.0, 1000),
        lambda o: torch_schedulers.LinearLR(o, 0.01, 1.0, 1000),
        STEPS,
    ),
    (
        "linear-decay",
        lambda: schedules.Linear(LR, 1.0, 0.1, 700),
        lambda o: torch_schedulers.LinearLR(o, 1.0, 0.1, 700),
        STEPS,
    ),
    (
        "linear-to-zero",
        lambda: schedules.Linear(LR, 0.5, 0.0, 100),
        lambda o: torch_schedulers.LinearLR(o, 0.5, 0.0, 100),
        STEPS,
    ),
    # CosineAnnealingLR (torch's recursive form), several periods past T_max
    (
        "cosine-100",
        lambda: schedules.CosineAnnealing(LR, 100),
        lambda o: torch_schedulers.CosineAnnealingLR(o, 100),
        STEPS,
    ),
    (
        "cosine-1000-etamin",
        lambda: schedules.CosineAnnealing(LR, 1000, 1e-4),
        lambda o: torch_schedulers.CosineAnnealingLR(o, 1000, 1e-4),
        2500,
    ),
    (
        "cosine-37-etamin",
        lambda: schedules.CosineAnnealing(LR, 37, 0.01),
        lambda o: torch_schedulers.CosineAnnealingLR(o, 37, 0.01),
        STEPS,
    ),
    (
        "cosine-1",
        lambda: schedules.CosineAnnealing(LR, 1, 0.02),
        lambda o: torch_schedulers.CosineAnnealingLR(o, 1, 0.02),
        STEPS,
    ),
    # CosineAnnealingWarmRestarts, T_mult = 1 and > 1
    (
        "sgdr-10",
        lambda: schedules.CosineAnnealingWarmRestarts(LR, 10),
        lambda o: torch_schedulers.CosineAnnealingWarmRestarts(o, 10),
        STEPS,
    ),
    (
        "sgdr-10-x2",
        lambda: schedules.CosineAnnealingWarmRestarts(LR, 10, 2, 1e-3),
        lambda o: torch_schedulers.CosineAnnealingWarmRestarts(o, 10, 2, 1e-3),
        STEPS,
    ),
    (
        "sgdr-3-x3",
        lambda: schedules.CosineAnnealingWarmRestarts(LR, 3, 3),
        lambda o: torch_schedulers.CosineAnnealingWarmRestarts(o, 3, 3),
        STEPS,
    ),
    (
        "sgdr-50-etamin",
        lambda: schedules.CosineAnnealingWarmRestarts(LR, 50, 1, 0.01),
        lambda o: torch_schedulers.CosineAnnealingWarmRestarts(o, 50, 1, 0.01),
        STEPS,
    ),
    # CyclicLR, all three modes
    (
        "cyclic-triangular",
        lambda: schedules.Cyclic(0.001, 0.1, 100),
        lambda o: torch_schedulers.CyclicLR(o, 0.001, 0.1, 100),
        STEPS,
    ),
    (
        "cyclic-asymmetric",
        lambda: schedules.Cyclic(0.01, 0.1, 20, 30),
        lambda o: torch_schedulers.CyclicLR(o, 0.01, 0.1, 20, 30),
        STEPS,
    ),
    (
        "cyclic-triangular2",
        lambda: schedules.Cyclic(0.001, 0.1, 50, mode="triangular2"),
        lambda o: torch_schedulers.CyclicLR(o, 0.001, 0.1, 50, mode="triangular2"),
        STEPS,
    ),
    (
        "cyclic-exp-range",
        lambda: schedules.Cyclic(0.001, 0.1, 30, mode="exp_range", gamma=0.999),
        lambda o: torch_schedulers.CyclicLR(o, 0.001, 0.1, 30, mode="exp_range", gamma=0.999),
        STEPS,
    ),
    (
        "cyclic-exp-range-asymmetric",
        lambda: schedules.Cyclic(0.002, 0.05, 17, 40, mode="exp_range", gamma=0.9995),
        lambda o: torch_schedulers.CyclicLR(o, 0.002, 0.05, 17, 40, mode="exp_range", gamma=0.9995),
        STEPS,
    ),
    # OneCycleLR: torch defines t = 0 .. total_steps - 1 as the schedule (see test below for t >= total_steps)
    (
        "onecycle-cos",
        lambda: schedules.OneCycle(LR, 1000),
        lambda o: torch_schedulers.OneCycleLR(o, LR, total_steps=1000),
        999,
    ),
    (
        "onecycle-linear",
        lambda: schedules.OneCycle(LR, 1500, 0.25, "linear"),
        lambda o: torch_schedulers.OneCycleLR(o, LR, total_steps=1500, pct_start=0.25, anneal_strategy="linear"),
        1499,
    ),
    (
        "onecycle-three-phase",
        lambda: schedules.OneCycle(LR, 1200, three_phase=True),
        lambda o: torch_schedulers.OneCycleLR(o, LR, total_steps=1200, three_phase=True),
        1199,
    ),
    (
        "onecycle-three-phase-linear",
        lambda: schedules.OneCycle(0.5, 1001, 0.4, "linear", 10.0, 100.0, True),
        lambda o: torch_schedulers.OneCycleLR(
            o, 0.5, total_steps=1001, pct_start=0.4, anneal_strategy="linear", div_factor=10.0,
            final_div_factor=100.0, three_phase=True,
        ),
        1000,
    ),
    # LambdaLR
    (
        "lambda-exp",
        lambda: schedules.Lambda(LR, lambda t: 0.995**t),
        lambda o: torch_schedulers.LambdaLR(o, lambda t: 0.995**t),
        STEPS,
    ),
    (
        "lambda-inverse",
        lambda: schedules.Lambda(LR, lambda t: 1.0 / (1.0 + 0.01 * t)),
        lambda o: torch_schedulers.LambdaLR(o, lambda t: 1.0 / (1.0 + 0.01 * t)),
        STEPS,
    ),
    # SequentialLR: the schedule after milestone m sees t - m
    (
        "sequential-warmup-cosine",
        lambda: schedules.Sequential([schedules.Linear(LR, 0.1, 1.0, 100), schedules.CosineAnnealing(LR, 900)], [100]),
        lambda o: torch_schedulers.SequentialLR(
            o, [torch_schedulers.LinearLR(o, 0.1, 1.0, 100), torch_schedulers.CosineAnnealingLR(o, 900)], [100]
        ),
        STEPS,
    ),
    (
        "sequential-three",
        lambda: schedules.Sequential(
            [
                schedules.ExponentialDecay(LR, 0.99),
                schedules.StepDecay(LR, 50, 0.5),
                schedules.CosineAnnealingWarmRestarts(LR, 100, 2),
            ],
            [200, 500],
        ),
        lambda o: torch_schedulers.SequentialLR(
            o,
            [
                torch_schedulers.ExponentialLR(o, 0.99),
                torch_schedulers.StepLR(o, 50, 0.5),
                torch_schedulers.CosineAnnealingWarmRestarts(o, 100, 2),
            ],
            [200, 500],
        ),
        STEPS,
    ),
    (
        "sequential-cyclic",
        lambda: schedules.Sequential(
            [schedules.PolynomialDecay(LR, 300, 2.0), schedules.Cyclic(0.01, 0.1, 40, mode="triangular2")], [250]
        ),
        lambda o: torch_schedulers.SequentialLR(
            o,
            [
                torch_schedulers.PolynomialLR(o, 300, 2.0),
                torch_schedulers.CyclicLR(o, 0.01, 0.1, 40, mode="triangular2"),
            ],
            [250],
        ),
        STEPS,
    ),
    # Warmup == SequentialLR([LinearLR(start_factor, 1, W), scheduler], [W])
    (
        "warmup-cosine",
        lambda: schedules.Warmup(schedules.CosineAnnealing(LR, 1000), 100, 0.01),
        lambda o: torch_schedulers.SequentialLR(
            o, [torch_schedulers.LinearLR(o, 0.01, 1.0, 100), torch_schedulers.CosineAnnealingLR(o, 1000)], [100]
        ),
        STEPS,
    ),
    (
        "warmup-exp",
        lambda: schedules.Warmup(schedules.ExponentialDecay(LR, 0.998), 37, 0.25),
        lambda o: torch_schedulers.SequentialLR(
            o, [torch_schedulers.LinearLR(o, 0.25, 1.0, 37), torch_schedulers.ExponentialLR(o, 0.998)], [37]
        ),
        STEPS,
    ),
]


# ChainedScheduler, written as a torch user writes it: every scheduler on the same optimizer (lr = LR),
# every lrcore schedule with that lr as its base. (id, lrcore schedules, torch schedulers, steps)
CHAINED = [
    (
        "linear-multistep",  # the example of the "Rules as data" issue
        lambda: [schedules.Linear(LR, start_factor=0.4, total_steps=3), schedules.MultiStepDecay(LR, [4, 8], 0.1)],
        lambda o: [torch_schedulers.LinearLR(o, 0.4, total_iters=3), torch_schedulers.MultiStepLR(o, [4, 8], 0.1)],
        400,
    ),
    (
        "exp-step",
        lambda: [schedules.ExponentialDecay(LR, 0.995), schedules.StepDecay(LR, 100, 0.5)],
        lambda o: [torch_schedulers.ExponentialLR(o, 0.995), torch_schedulers.StepLR(o, 100, 0.5)],
        STEPS,
    ),
    (
        "linear-multistep-poly",
        lambda: [
            schedules.Linear(LR, 0.2, 1.0, 50),
            schedules.MultiStepDecay(LR, [300, 600], 0.3),
            schedules.PolynomialDecay(LR, 1500, 2.0),
        ],
        lambda o: [
            torch_schedulers.LinearLR(o, 0.2, 1.0, 50),
            torch_schedulers.MultiStepLR(o, [300, 600], 0.3),
            torch_schedulers.PolynomialLR(o, 1500, 2.0),
        ],
        1400,
    ),
    (
        "cosine-step",
        lambda: [schedules.CosineAnnealing(LR, 5000), schedules.StepDecay(LR, 250, 0.7)],
        lambda o: [torch_schedulers.CosineAnnealingLR(o, 5000), torch_schedulers.StepLR(o, 250, 0.7)],
        STEPS,
    ),
    (
        "step-then-warmup-linear",  # the order of the schedulers does not matter
        lambda: [schedules.StepDecay(LR, 40, 0.8), schedules.Linear(LR, 0.05, 1.0, 120)],
        lambda o: [torch_schedulers.StepLR(o, 40, 0.8), torch_schedulers.LinearLR(o, 0.05, 1.0, 120)],
        600,
    ),
    (
        "single",
        lambda: [schedules.MultiStepDecay(LR, [10, 10, 30], 0.5)],
        lambda o: [torch_schedulers.MultiStepLR(o, [10, 10, 30], 0.5)],
        100,
    ),
]
CHAINED_RTOL = 1e-12


@pytest.mark.parametrize(("make_ours", "make_torch", "steps"), [case[1:] for case in CHAINED],
                         ids=[case[0] for case in CHAINED])
def test_chained_matches_torch_chained_scheduler(make_ours, make_torch, steps):
    theirs = torch_trace(lambda o: torch_schedulers.ChainedScheduler(make_torch(o)), steps)
    ours = lrcore_trace(schedules.Chained(make_ours()), steps)
    assert max_relative_deviation(ours, theirs) <= CHAINED_RTOL


def test_chained_example_of_the_issue_step_by_step():
    chained = schedules.Chained(
        [schedules.Linear(0.1, start_factor=0.4, total_steps=3), schedules.MultiStepDecay(0.1, [4, 8], 0.1)]
    )
    theirs = torch_trace(
        lambda o: torch_schedulers.ChainedScheduler(
            [torch_schedulers.LinearLR(o, 0.4, total_iters=3), torch_schedulers.MultiStepLR(o, [4, 8], 0.1)]
        ),
        10,
        lr=0.1,
    )
    assert theirs[0] == pytest.approx(0.04, rel=1e-15)  # the base is applied once
    assert [chained(t) for t in range(11)] == pytest.approx(list(theirs), rel=1e-15)


@pytest.mark.parametrize(
    ("make_ours", "make_torch", "steps"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_matches_torch(make_ours, make_torch, steps):
    theirs = torch_trace(make_torch, steps)
    ours = lrcore_trace(make_ours(), steps)
    assert max_relative_deviation(ours, theirs) <= RTOL


def _plateau_metrics(mode: str, count: int = 1500, seed: int = 0) -> np.ndarray:
    """A noisy loss curve with long plateaus (an accuracy-like curve for mode="max")."""
    rng = np.random.default_rng(seed)
    steps = np.arange(count)
    loss = 1.0 / (1.0 + steps / 40.0)
    loss = np.maximum(loss, 0.2 + 0.1 * (steps > 700))  # plateaus, then a worse plateau
    loss = loss + rng.normal(0.0, 0.003, count)
    loss[900:1000] = loss[900]  # exactly flat
    return loss if mode == "min" else 1.0 - loss


PLATEAU_CASES = [
    ("min-rel", LR, dict(mode="min", factor=0.5, patience=5, threshold=1e-4, threshold_mode="rel")),
    (
        "min-abs-cooldown",
        LR,
        dict(mode="min", factor=0.5, patience=3, threshold=1e-3, threshold_mode="abs", cooldown=4, min_lr=1e-4),
    ),
    (
        "max-rel-cooldown",
        LR,
        dict(mode="max", factor=0.3, patience=2, threshold=1e-3, threshold_mode="rel", cooldown=2),
    ),
    (
        "max-abs-floor",
        LR,
        dict(mode="max", factor=0.5, patience=0, threshold=0.0, threshold_mode="abs", cooldown=1, min_lr=0.01),
    ),
    ("min-rel-defaults", LR, dict()),
    ("eps-skips-reductions", 1e-7, dict(factor=0.5, patience=1, eps=1e-7)),
]


@pytest.mark.parametrize(("lr", "options"), [case[1:] for case in PLATEAU_CASES], ids=[c[0] for c in PLATEAU_CASES])
def test_reduce_on_plateau_matches_torch(lr, options):
    metrics = _plateau_metrics(options.get("mode", "min"))
    theirs = torch_trace(
        lambda o: torch_schedulers.ReduceLROnPlateau(o, **options), len(metrics), lr=lr, metrics=metrics
    )
    ours = schedules.ReduceOnPlateau(lr, **options)
    values = [ours(0)]
    for index, metric in enumerate(metrics):
        ours.observe(metric)
        values.append(ours(index + 1))
    assert max_relative_deviation(values, theirs) <= RTOL
    if options.get("eps") is None:
        assert len(set(theirs.tolist())) >= 3  # the metrics really trigger reductions


MOMENTUM_CASES = [
    (
        "cyclic-triangular",
        lambda: schedules.Cyclic(0.001, 0.1, 100).momentum_schedule(),
        lambda o: torch_schedulers.CyclicLR(o, 0.001, 0.1, 100),
        STEPS,
    ),
    (
        "cyclic-triangular2",
        lambda: schedules.Cyclic(0.001, 0.1, 50, 70, mode="triangular2").momentum_schedule(0.85, 0.95),
        lambda o: torch_schedulers.CyclicLR(
            o, 0.001, 0.1, 50, 70, mode="triangular2", base_momentum=0.85, max_momentum=0.95
        ),
        STEPS,
    ),
    (
        "cyclic-exp-range",
        lambda: schedules.Cyclic(0.001, 0.1, 30, mode="exp_range", gamma=0.999).momentum_schedule(0.7, 0.99),
        lambda o: torch_schedulers.CyclicLR(
            o, 0.001, 0.1, 30, mode="exp_range", gamma=0.999, base_momentum=0.7, max_momentum=0.99
        ),
        STEPS,
    ),
    (
        "onecycle-cos",
        lambda: schedules.OneCycle(LR, 1000).momentum_schedule(),
        lambda o: torch_schedulers.OneCycleLR(o, LR, total_steps=1000),
        999,
    ),
    (
        "onecycle-three-phase-linear",
        lambda: schedules.OneCycle(LR, 1200, 0.35, "linear", three_phase=True).momentum_schedule(0.8, 0.9),
        lambda o: torch_schedulers.OneCycleLR(
            o, LR, total_steps=1200, pct_start=0.35, anneal_strategy="linear", three_phase=True,
            base_momentum=0.8, max_momentum=0.9,
        ),
        1199,
    ),
]


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize(
    ("make_ours", "make_torch", "steps"), [case[1:] for case in MOMENTUM_CASES], ids=[c[0] for c in MOMENTUM_CASES]
)
def test_momentum_matches_torch(make_ours, make_torch, steps, kind):
    theirs = torch_trace(make_torch, steps, kind=kind, read="momentum" if kind == "sgd" else "beta1")
    ours = lrcore_trace(make_ours(), steps)
    assert max_relative_deviation(ours, theirs) <= RTOL


@pytest.mark.parametrize("anneal_strategy", ["cos", "linear"])
@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_past_total_steps(anneal_strategy, three_phase):
    """Torch extrapolates once at t = total_steps and raises beyond; lrcore holds min_lr from total_steps - 1."""
    total = 200
    theirs = torch_trace(
        lambda o: torch_schedulers.OneCycleLR(
            o, LR, total_steps=total, anneal_strategy=anneal_strategy, three_phase=three_phase
        ),
        total,
    )
    ours = schedules.OneCycle(LR, total, anneal_strategy=anneal_strategy, three_phase=three_phase)
    assert max_relative_deviation(lrcore_trace(ours, total - 1), theirs[:total]) <= RTOL
    assert all(ours(t) == ours(total - 1) for t in (total, total + 1, 10 * total))
    assert ours(total) == pytest.approx(ours.min_lr, rel=1e-12)

    optimizer = _optimizer("sgd")
    scheduler = torch_schedulers.OneCycleLR(optimizer, LR, total_steps=total)
    for _ in range(total):
        optimizer.step()
        scheduler.step()
    optimizer.step()
    with pytest.raises(ValueError, match="Tried to step"):
        scheduler.step()


def test_polynomial_past_total_steps_holds_like_torch():
    theirs = torch_trace(lambda o: torch_schedulers.PolynomialLR(o, 100, 1.5), 400)
    ours = schedules.PolynomialDecay(LR, 100, 1.5)
    assert max_relative_deviation(lrcore_trace(ours, 400), theirs) <= RTOL
    assert ours(100) == ours(101) == ours(10**9) == 0.0
