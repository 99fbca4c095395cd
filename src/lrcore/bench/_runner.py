"""Runs the benchmark cases: set up, verify, then time lrcore against each contender.

A case is one rule on one workload at one thread count. Its order:

1. Make the starting arrays (parameters and two gradients, fixed seed).
2. Reference: two steps of :mod:`lrcore.reference` from zero state, one per
   gradient (the second step exercises non-trivial state and bias corrections).
3. lrcore: the same two steps on copies, compared with the reference
   (parameters and state). A mismatch marks the case FAILED and nothing of it
   is timed. The roof is checked the same way (u + g).
4. Time lrcore interleaved with the roof (and with itself on one thread when
   the case uses more), then with each other contender in turn, each verified
   first. Ratios always come from one interleaved group.

Memory: the reference's own arrays serve as the expected result (no copy),
so numpy-ref (which is that runner) is timed last; the roof is checked
against the starting arrays without copying its own, and each contender's
arrays are freed (and the garbage collector run) before the next is made.
At most the starting arrays (params and two gradients), the reference, lrcore
and one more contender (or the roof) are alive at once.

Every cell keeps its spread: the interquartile range of the rounds over the
median. A ratio whose two cells' spreads add up to more than
:data:`NOISY_SPREAD` is flagged ``noisy``.
"""

from __future__ import annotations

import functools
import gc
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core, _runtime, reference
from ..optim import Adam
from ._contenders import CONTENDERS, TORCH_VARIANTS, FunctionalRunner, RoofRunner, Runner, torch_module
from ._rules import RULES, Rule, State
from ._timing import Samples, Timed, TimingBudget, measure_interleaved
from ._verify import TOLERANCE, deviation, sign_ties, state_deviation
from ._workloads import OPT_STEP, Workload

__all__ = ["CaseResult", "ContenderResult", "NOISY_SPREAD", "OptStepResult", "Options", "VerificationError",
           "run_case", "run_opt_step", "verified_step"]

#: A ratio is flagged noisy when the relative interquartile ranges of its two cells add up to more than this
#: (to first order, the relative width of the ratio's own interquartile interval).
NOISY_SPREAD = 0.25

#: Workloads at least this large (elements) run the garbage collector after each contender, so no freed
#: contender's arrays linger in a reference cycle while the next one allocates.
_COLLECT_ABOVE = 1 << 20


def noisy(*spreads: Optional[float]) -> bool:
    """True when the spreads (relative IQRs) of the cells a ratio comes from add up to more than NOISY_SPREAD."""
    return sum(s for s in spreads if s is not None) > NOISY_SPREAD


def _ignore(phase: str) -> None:
    pass


@dataclass
class Options:
    """What to run (parsed from the command line by :mod:`lrcore.bench._cli`)."""

    rules: List[Rule]
    workloads: List[Workload]
    threads: List[int]
    against: List[str]
    dtype: np.dtype = field(default_factory=lambda: np.dtype(np.float32))
    budget: TimingBudget = field(default_factory=TimingBudget)
    seed: int = 0


@dataclass
class ContenderResult:
    """One contender in one case.

    status: "ok" (verified and timed), "mismatch" (its result differs from the
    reference: not timed), "error" (it raised), or "n/a" (not installed, or
    no such configuration).
    """

    name: str
    status: str
    reason: Optional[str] = None
    deviation: Optional[float] = None
    seconds: Optional[float] = None
    lrcore_seconds: Optional[float] = None
    samples: int = 0
    spread: Optional[float] = None         # IQR / median of this contender's rounds
    lrcore_spread: Optional[float] = None  # the same for lrcore's rounds in this group

    @property
    def speedup(self) -> Optional[float]:
        """How many times faster lrcore is (this contender's time / lrcore's, same interleaved group)."""
        if self.seconds is None or not self.lrcore_seconds:
            return None
        return self.seconds / self.lrcore_seconds

    @property
    def noisy(self) -> bool:
        """The speedup is not meaningful: the two cells' spreads add up to more than NOISY_SPREAD."""
        return self.status == "ok" and noisy(self.spread, self.lrcore_spread)


@dataclass
class CaseResult:
    rule: str
    workload: str
    label: str
    arrays: int
    elements: int
    dtype: str
    threads: int
    bytes_per_step: int
    status: str = "ok"          # "ok" or "FAILED" (lrcore or its roof did not match)
    reason: Optional[str] = None
    deviation: Optional[float] = None
    lrcore_seconds: Optional[float] = None
    roof_seconds: Optional[float] = None
    one_thread_seconds: Optional[float] = None  # lrcore on 1 thread, interleaved with the above
    samples: int = 0
    lrcore_spread: Optional[float] = None       # IQR / median of the rounds, for each time above
    roof_spread: Optional[float] = None
    one_thread_spread: Optional[float] = None
    contenders: Dict[str, ContenderResult] = field(default_factory=dict)
    layout: Optional[str] = None                # 16-bit dtypes: the storage layout (lrcore.bench._mixed.LAYOUTS)
    roof_bytes_per_step: Optional[int] = None   # 16-bit dtypes: what the roof moved (same bytes, own arrays)

    @property
    def gigabytes_per_second(self) -> Optional[float]:
        return self.bytes_per_step / self.lrcore_seconds / 1e9 if self.lrcore_seconds else None

    @property
    def roof_gigabytes_per_second(self) -> Optional[float]:
        return self.bytes_per_step / self.roof_seconds / 1e9 if self.roof_seconds else None

    @property
    def time_over_roof(self) -> Optional[float]:
        return self.lrcore_seconds / self.roof_seconds if self.lrcore_seconds and self.roof_seconds else None

    @property
    def thread_speedup(self) -> Optional[float]:
        """lrcore on one thread / lrcore on ``threads`` threads."""
        return self.one_thread_seconds / self.lrcore_seconds if self.one_thread_seconds and self.lrcore_seconds else None


def _set_threads(count: int) -> None:
    """lrcore's and torch's thread counts (resizing lrcore's pool only when it changes)."""
    if _runtime.get_num_threads() != count:
        _runtime.set_num_threads(count)
    torch = torch_module()
    if torch is not None and torch.get_num_threads() != count:
        torch.set_num_threads(count)


def _lrcore_threads(count: int) -> Callable[[], None]:
    def before() -> None:
        if _runtime.get_num_threads() != count:
            _runtime.set_num_threads(count)
    return before


def _starting_arrays(workload: Workload, dtype: np.dtype, seed: int) -> Tuple[List[np.ndarray], List[np.ndarray],
                                                                         List[np.ndarray]]:
    """Parameters ~ N(0, 1) and two gradients ~ N(0, 1), deterministic in the seed."""
    rng = np.random.default_rng(seed)

    def normal(shape: Tuple[int, ...]) -> np.ndarray:
        if dtype in (np.float32, np.float64):
            return rng.standard_normal(shape, dtype=dtype)
        return rng.standard_normal(shape).astype(dtype)

    params = [normal(s) for s in workload.shapes]
    first = [normal(s) for s in workload.shapes]
    second = [normal(s) for s in workload.shapes]
    return params, first, second


def _two_steps(runner: Runner, first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> None:
    runner.use_grads(first)
    runner.step()
    runner.use_grads(second)
    runner.step()


def _snapshot(runner: Runner, rule: Rule) -> Tuple[List[np.ndarray], State]:
    params = [p.copy() for p in runner.params()]
    state = runner.state()
    assert state is not None
    return params, {name: [None if a is None else a.copy() for a in state[name]] for name in rule.state_names}


def run_case(rule: Rule, workload: Workload, threads: int, options: Options,
             phase: Callable[[str], None] = _ignore) -> CaseResult:
    """One rule on one workload at one thread count: verify, then time (see the module docstring).

    ``phase`` is called with a short description as each step starts (for progress output).
    """
    dtype = options.dtype
    result = CaseResult(rule.name, workload.name, workload.label, workload.arrays, workload.elements, dtype.name,
                        threads, workload.elements * rule.bytes_per_element(dtype.itemsize))
    tolerance = TOLERANCE[dtype]
    _set_threads(threads)
    phase("setup and reference")
    params, first, second = _starting_arrays(workload, dtype, options.seed)

    reference_runner = FunctionalRunner(rule, params, getattr(reference, rule.function))
    _two_steps(reference_runner, first, second)
    # The reference's own arrays are the expected result: nothing steps it again until numpy-ref, timed last.
    expected_params = reference_runner.params()
    reference_state = reference_runner.state()
    assert reference_state is not None
    expected_state: State = {name: reference_state[name] for name in rule.state_names}

    phase("verify lrcore")
    lrcore_runner = CONTENDERS["lrcore"].make(rule, params)
    _two_steps(lrcore_runner, first, second)
    result.deviation = max(deviation(lrcore_runner.params(), expected_params, params),
                           state_deviation(lrcore_runner.state(), expected_state, rule.state_names))
    if not result.deviation <= tolerance:
        result.status = "FAILED"
        result.reason = (f"lrcore's result deviates from lrcore.reference by {result.deviation:.3g} "
                         f"of the update (tolerance {tolerance:g})")
        return result
    roof = RoofRunner(rule, params, second)
    roof_error = roof.deviation()
    if roof_error != 0.0:
        result.status = "FAILED"
        result.reason = f"the roof kernel's result is off by {roof_error:.3g}"
        return result

    lrcore_timed = Timed("lrcore", lrcore_runner.step, _lrcore_threads(threads))
    group = [lrcore_timed, Timed("roof", roof.step, _lrcore_threads(threads))]
    if threads > 1:
        group.append(Timed("lrcore-1-thread", lrcore_runner.step, _lrcore_threads(1)))
    phase("time lrcore and the roof")
    samples = measure_interleaved(group, options.budget)
    _set_threads(threads)
    result.lrcore_seconds, result.lrcore_spread = samples["lrcore"].median, samples["lrcore"].spread
    result.roof_seconds, result.roof_spread = samples["roof"].median, samples["roof"].spread
    result.samples = len(samples["lrcore"].times)
    if threads > 1:
        one = samples["lrcore-1-thread"]
        result.one_thread_seconds, result.one_thread_spread = one.median, one.spread
    del roof, group, samples
    big = workload.elements >= _COLLECT_ABOVE
    if big:
        gc.collect()

    # numpy-ref is the reference runner itself: stepping it spoils the expected arrays, so it goes last.
    order = [n for n in options.against if n != "numpy-ref"] + [n for n in options.against if n == "numpy-ref"]
    finished: Dict[str, ContenderResult] = {}
    for name in order:
        if CONTENDERS[name].unavailable() is None:
            phase(f"vs {name}")
        finished[name] = _run_contender(name, rule, params, first, second, expected_params,
                                        expected_state, lrcore_timed, options,
                                        reference_runner if name == "numpy-ref" else None)
        if big:
            gc.collect()
    result.contenders = {name: finished[name] for name in options.against}
    return result


def _parameter_deviation(measure: Callable[..., float], rule: Rule, runner: Runner,
                         expected_params: Sequence[np.ndarray], params: Sequence[np.ndarray],
                         first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> float:
    """A runner's parameters after the two steps against the reference's, by the contender's measure;
    for a sign update (Lion), elements whose sign is a rounding tie may flip (``_verify.sign_ties``)."""
    ties = sign_ties(rule.name, rule.hyperparameters, params, first, second)
    if ties is None:
        return measure(runner.params(), expected_params, params)
    return measure(runner.params(), expected_params, params, ties=ties)


def _run_contender(name: str, rule: Rule, params: Sequence[np.ndarray], first: Sequence[np.ndarray],
                   second: Sequence[np.ndarray], expected_params: Sequence[np.ndarray], expected_state: State,
                   lrcore_timed: Timed, options: Options, prepared: Optional[Runner]) -> ContenderResult:
    contender = CONTENDERS[name]
    reason = contender.unavailable() or contender.unsupported(rule)
    if reason is not None:
        return ContenderResult(name, "n/a", reason)
    tolerance = TOLERANCE[options.dtype] if contender.tolerance is None else max(contender.tolerance,
                                                                                 TOLERANCE[options.dtype])
    try:
        if prepared is not None:  # the reference itself: already stepped, exact by definition
            runner, error = prepared, 0.0
        else:
            runner = contender.make(rule, params)
            _two_steps(runner, first, second)
            error = _parameter_deviation(contender.measure, rule, runner, expected_params, params, first, second)
            state = runner.state()
            if state is not None:
                error = max(error, state_deviation(state, expected_state, rule.state_names))
        if not error <= tolerance:
            return ContenderResult(name, "mismatch", f"deviates from lrcore.reference by {error:.3g} of the update "
                                   f"(tolerance {tolerance:g}); not timed", deviation=error)
        samples = measure_interleaved([lrcore_timed, Timed(name, runner.step)], options.budget)
    except Exception as failure:  # a contender that cannot run this case is reported, not fatal
        return ContenderResult(name, "error", f"{type(failure).__name__}: {failure}")
    mine: Samples = samples[name]
    return ContenderResult(name, "ok", deviation=error, seconds=mine.median, lrcore_seconds=samples["lrcore"].median,
                           samples=len(mine.times), spread=mine.spread, lrcore_spread=samples["lrcore"].spread)


# ------------------------------------------------------------------ opt.step --
@dataclass
class OptStepEntry:
    name: str
    title: str
    status: str
    reason: Optional[str] = None
    deviation: Optional[float] = None
    seconds: Optional[float] = None
    spread: Optional[float] = None  # IQR / median of the rounds


@dataclass
class OptStepResult:
    """The full ``opt.step(grads)`` call on one small array: Python overhead dominates."""

    elements: int
    dtype: str
    threads: int
    status: str = "ok"
    reason: Optional[str] = None
    entries: Dict[str, OptStepEntry] = field(default_factory=dict)

    def speedup(self, name: str, over: str = "lrcore-Adam.step") -> Optional[float]:
        a, b = self.entries.get(name), self.entries.get(over)
        if a is None or b is None or a.seconds is None or b.seconds is None:
            return None
        return a.seconds / b.seconds

    def noisy(self, name: str, over: str = "lrcore-Adam.step") -> bool:
        a, b = self.entries.get(name), self.entries.get(over)
        return a is not None and b is not None and noisy(a.spread, b.spread)


class _AdamClassRunner(Runner):
    """lrcore.Adam: the whole optimizer step, hyperparameter resolution and checks included."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray]) -> None:
        hp = rule.hyperparameters
        self._params = [p.copy() for p in params]
        self.optimizer = Adam(self._params, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"])
        self._grads: List[np.ndarray] = []

    def use_grads(self, grads: Sequence[np.ndarray]) -> None:
        self._grads = list(grads)
        self.step = functools.partial(self.optimizer.step, self._grads)  # type: ignore[method-assign]

    def params(self) -> List[np.ndarray]:
        return self._params


class _BareAdamRunner(FunctionalRunner):
    """lrcore._core.rules.adam.step with every argument prepared: the binding and kernel alone."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray]) -> None:
        hp = rule.hyperparameters
        super().__init__(rule, params, lambda *a, **k: None)
        s = self._state
        hyperparameters = {"lr": hp["lr"], "beta1": hp["beta1"], "beta2": hp["beta2"], "eps": hp["eps"],
                           "weight_decay": 0.0, "amsgrad": False, "maximize": False,
                           "decoupled_weight_decay": False}
        group = (hyperparameters, self._params, self._grads,
                 {"exp_avg": s["exp_avgs"], "exp_avg_sq": s["exp_avg_sqs"]}, s["steps"])
        self.step = functools.partial(_core.rules.adam.step, [group])  # type: ignore[method-assign]


def run_opt_step(workload: Workload, threads: int, options: Options) -> OptStepResult:
    """Adam on one small array: lrcore.Adam.step vs the bare binding vs torch.optim.Adam.step()."""
    assert workload.name == OPT_STEP
    rule = RULES["adam"]
    dtype = options.dtype
    result = OptStepResult(workload.elements, dtype.name, threads)
    tolerance = TOLERANCE[dtype]
    _set_threads(threads)
    params, first, second = _starting_arrays(workload, dtype, options.seed)
    reference_runner = FunctionalRunner(rule, params, getattr(reference, rule.function))
    _two_steps(reference_runner, first, second)
    expected = [p.copy() for p in reference_runner.params()]

    makers: Dict[str, Any] = {
        "lrcore-Adam.step": ("lrcore Adam.step(grads)", _AdamClassRunner),
        "lrcore-_core.adam_step": ("lrcore._core.rules.adam.step(...), arguments prepared", _BareAdamRunner),
    }
    for variant in TORCH_VARIANTS:
        if variant in options.against:
            flags = ", ".join(f"{k}={v}" for k, v in TORCH_VARIANTS[variant].items())
            makers[variant] = (f"torch.optim.Adam({flags}).step()",
                               functools.partial(_make_torch, variant))
    group: List[Timed] = []
    for name, (title, make) in makers.items():
        entry = OptStepEntry(name, title, "ok")
        result.entries[name] = entry
        if name in TORCH_VARIANTS:
            reason = CONTENDERS[name].unavailable() or CONTENDERS[name].unsupported(rule)
            if reason is not None:
                entry.status, entry.reason = "n/a", reason
                continue
        try:
            runner = make(rule, params)
            _two_steps(runner, first, second)
        except Exception as error:
            entry.status, entry.reason = "error", f"{type(error).__name__}: {error}"
            continue
        entry.deviation = deviation(runner.params(), expected, params)
        if not entry.deviation <= tolerance:
            entry.status = "mismatch"
            entry.reason = f"deviates from lrcore.reference by {entry.deviation:.3g} of the update"
            continue
        group.append(Timed(name, runner.step))
    if any(e.status == "mismatch" and e.name.startswith("lrcore") for e in result.entries.values()):
        result.status = "FAILED"
        result.reason = "lrcore's result does not match lrcore.reference"
        return result
    samples = measure_interleaved(group, options.budget)
    for name, timed in samples.items():
        result.entries[name].seconds, result.entries[name].spread = timed.median, timed.spread
    return result


def _make_torch(variant: str, rule: Rule, params: Sequence[np.ndarray]) -> Runner:
    return CONTENDERS[variant].make(rule, params)


# ------------------------------------------------------- pytest-benchmark use --
class VerificationError(AssertionError):
    """A contender's result does not match lrcore.reference."""


def verified_step(contender: str, rule_name: str, workload: Workload, dtype: Any = np.float32,
                  seed: int = 0) -> Callable[[], object]:
    """A contender's step function, set up on the workload and verified first (for bench/ suites).

    ``contender`` is a key of CONTENDERS, ``"roof"`` or ``"lrcore-Adam.step"``
    (the optimizer class, Adam only). The function returned runs one more
    step each call.

    Raises:
        VerificationError: two steps from zero state do not match lrcore.reference.
        LookupError: the contender is not installed or has no such configuration.
    """
    rule = RULES[rule_name]
    dtype = np.dtype(dtype)
    params, first, second = _starting_arrays(workload, dtype, seed)
    if contender == "roof":
        roof = RoofRunner(rule, params, second)
        error = roof.deviation()
        if error != 0.0:
            raise VerificationError(f"roof: off by {error:.3g}")
        return roof.step
    reference_runner = FunctionalRunner(rule, params, getattr(reference, rule.function))
    _two_steps(reference_runner, first, second)
    expected_params, expected_state = _snapshot(reference_runner, rule)
    del reference_runner
    if contender == "lrcore-Adam.step":
        runner: Runner = _AdamClassRunner(rule, params)
    else:
        reason = CONTENDERS[contender].unavailable() or CONTENDERS[contender].unsupported(rule)
        if reason is not None:
            raise LookupError(reason)
        runner = CONTENDERS[contender].make(rule, params)
    measure = deviation if contender == "lrcore-Adam.step" else CONTENDERS[contender].measure
    tolerance = TOLERANCE[dtype]
    looser = CONTENDERS[contender].tolerance if contender in CONTENDERS else None
    if looser is not None:
        tolerance = max(tolerance, looser)
    _two_steps(runner, first, second)
    error = _parameter_deviation(measure, rule, runner, expected_params, params, first, second)
    state = runner.state()
    if state is not None:
        error = max(error, state_deviation(state, expected_state, rule.state_names))
    if not error <= tolerance:
        raise VerificationError(f"{contender} {rule_name}: deviates from lrcore.reference by {error:.3g} of the update")
    return runner.step
