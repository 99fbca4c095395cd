"""Mixed precision in the benchmark: ``--dtype bfloat16`` and ``--dtype float16``.

One cell (a rule on a workload at a thread count) gives one row per storage layout of the 16-bit
parameters (:data:`LAYOUTS`):

* ``fp32-state``: 16-bit parameters and gradients, float32 state, stores rounded to nearest even;
* ``bf16-state+sr``: 16-bit parameters and gradients, bfloat16 state, every 16-bit store rounded
  stochastically (seeded);
* ``master``: 16-bit parameters and gradients, a float32 master copy of each parameter and float32
  state; the master is stepped and written, rounded to nearest, into the parameter.

Each layout is verified before anything is timed. The nearest-rounding layouts must be **bitwise**
equal to a numpy reference: :mod:`lrcore.reference` run in float32 on the widened inputs, its
16-bit results rounded to nearest even with numpy's ``astype`` (``ml_dtypes`` for bfloat16), one step
at a time. The stochastic layout has no bitwise reference, so each of its two steps is checked
against the exact float32 step from the 16-bit values the previous step left: every stored value must
be one of the two 16-bit neighbours of the exact value (the exact value itself when representable),
and in each quarter of the rounding fractions the number rounded away from zero must agree with the
probabilities (a z-score); then the whole run is repeated with the same seed on another thread count
and the baseline instruction set, and must be bitwise the same.

Then the layouts, lrcore's float32 step on the same (widened) values, each layout's memory roof and
every contender that was verified take turns in **one** interleaved group, so every ratio in a row
(``/roof``, ``f32``, the contender columns) comes from the same rounds.

The contenders (``torch-fused`` and the other torch variants with 16-bit parameters, whose state is
then 16-bit too; DeepSpeedCPUAdam with 16-bit parameters and float32 state) round in their own
operation order, so their parameters are verified in units in the last place of the 16-bit format
against the reference of their own layout: at most :data:`CONTENDER_ULPS` unit off wherever the
error is also above the float32 tolerance (1e-3 of the update; near zero a unit is far smaller),
and at most :data:`CONTENDER_DIFFERING` of the values differing at all. torch's foreach and
for-loop Adam round every intermediate to the 16-bit dtype: a different update, shown as MISMATCH.

The memory roof of a layout (:class:`MixedRoofRunner`) is ``lrcore._core.bench.roof_stream`` over
float32 arrays of its own sized to move the layout's bytes per element (see :func:`roof_tensors`
for the one approximation: the read/write split when a layout updates more than four times what
it only reads).
"""

from __future__ import annotations

import functools
import gc
import math
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core, _runtime, reference
from ..functional import state_like
from ._contenders import (CONTENDERS, TORCH_VARIANTS, ArraysRunner, FunctionalRunner, Runner, _import, deepspeed_adam,
                          torch_module)
from ._rules import Rule, State
from ._runner import CaseResult, ContenderResult, Options, _set_threads
from ._timing import Timed, measure_interleaved
from ._verify import TOLERANCE, deviation, state_deviation
from ._workloads import Workload

__all__ = ["CONTENDER_DIFFERING", "CONTENDER_ULPS", "LAYOUTS", "Layout", "MIXED_CONTENDERS", "MixedRoofRunner",
           "bfloat16", "check_stochastic", "is_mixed", "layout_bytes_per_element", "mixed_unsupported",
           "run_mixed_case", "sixteen_bit_dtype"]

#: Contenders verified within this many units in the last place of the 16-bit format (per value)...
CONTENDER_ULPS = 1
#: ... and with at most this fraction of the values differing from their layout's reference at all.
CONTENDER_DIFFERING = 0.01
#: A stochastic rounding whose counts of values rounded up stray more than this many standard
#: deviations from the expected counts (in any quarter of the fractions) fails verification.
STOCHASTIC_Z = 6.0
#: The seed of the stochastic layout.
ROUNDING_SEED = 1234


@functools.lru_cache(maxsize=None)
def bfloat16() -> Optional[np.dtype]:
    """``ml_dtypes.bfloat16`` as a numpy dtype, or None without ml_dtypes."""
    module = _import("ml_dtypes")
    return None if module is None else np.dtype(module.bfloat16)


def sixteen_bit_dtype(name: str) -> np.dtype:
    """The numpy dtype of ``--dtype bfloat16`` / ``float16``.

    Raises:
        ValueError: bfloat16 without ml_dtypes installed.
    """
    if name == "float16":
        return np.dtype(np.float16)
    found = bfloat16()
    if found is None:
        raise ValueError("--dtype bfloat16 needs ml_dtypes (pip install ml_dtypes)")
    return found


def is_mixed(dtype: Any) -> bool:
    """Whether ``dtype`` is one of the 16-bit parameter dtypes (float16, ml_dtypes' bfloat16)."""
    dtype = np.dtype(dtype)
    return bool(dtype == np.float16 or (dtype.itemsize == 2 and dtype.name == "bfloat16"))


@dataclass(frozen=True)
class Layout:
    """How a 16-bit parameter's step is stored.

    Attributes:
        name: the key in the JSON and the table.
        title: what it is, for the report.
        state_dtype: "float32" or "bfloat16".
        master: a float32 master copy of each parameter.
        stochastic: every 16-bit store rounded stochastically (with :data:`ROUNDING_SEED`).
    """

    name: str
    title: str
    state_dtype: str
    master: bool = False
    stochastic: bool = False


LAYOUTS: Tuple[Layout, ...] = (
    Layout("fp32-state", "16-bit params and grads, float32 state, round to nearest", "float32"),
    Layout("bf16-state+sr", "16-bit params and grads, bfloat16 state, stochastic rounding", "bfloat16",
           stochastic=True),
    Layout("master", "16-bit params and grads, float32 master weights and state", "float32", master=True),
)


#: lrcore's float32 step on the widened values, through the same call as the layouts.
FLOAT32 = Layout("float32", "float32 params, grads and state", "float32")


def layout_bytes_per_element(rule: Rule, layout: Layout, itemsize: int = 2) -> int:
    """Bytes a step must move per element: read the 16-bit gradient, read and write the parameter, each
    state array shaped like it and the master copy."""
    state_bytes = 4 if layout.state_dtype == "float32" else 2
    return itemsize + 2 * itemsize + 2 * state_bytes * len(rule.streamed_state_names) + (8 if layout.master else 0)


# ------------------------------------------------------------------ runners --
def _native_hyperparameters(rule: Rule) -> Dict[str, Any]:
    """The native step's hyperparameters for the rule's configuration (defaults, then the bench's, then fixed)."""
    description = rule.description
    values: Dict[str, Any] = {}
    for h in description.hyperparameters:
        if h.kind == "option":
            continue
        defaults = h.default if len(h.native) > 1 else (h.default,)
        values.update(zip(h.native, defaults))
    values.update(rule.hyperparameters)
    values.update(description.fixed)
    return values


class MixedLrcoreRunner(ArraysRunner):
    """lrcore's native step (``lrcore._core.rules.<rule>.step``, every argument prepared) on 16-bit parameters
    in one layout (or on float32 ones, :data:`FLOAT32`)."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], layout: Layout,
                 seed: int = ROUNDING_SEED) -> None:
        self.rule = rule
        self.layout = layout
        self._params = [p.copy() for p in params]
        self._grads: List[np.ndarray] = [None] * len(params)  # type: ignore[list-item]
        self._state = rule.new_state(self._params, state_dtype=layout.state_dtype)
        self._state.setdefault("steps", np.zeros(len(params), dtype=np.int64))  # stochastic rounding keys by it
        description = rule.description
        names = {s.list_name: s.name for s in description.states}
        names.update({s.list_name: s.name for s in description.scalars})
        state_dict: Dict[str, Any] = {names[k]: v for k, v in self._state.items() if k in names}
        self.masters: Optional[List[np.ndarray]] = None
        if layout.master:
            self.masters = [p.astype(np.float32) for p in self._params]
            state_dict["master_weight"] = self.masters
        group: Tuple[Any, ...] = (_native_hyperparameters(rule), self._params, self._grads, state_dict,
                                  self._state["steps"])
        if "group_state" in self._state:
            group += (self._state["group_state"],)
        create = functools.partial(state_like, dtype=layout.state_dtype)
        self.step = functools.partial(description.native.step, [group], None, False, create,  # type: ignore[method-assign]
                                      rounding_seed=seed if layout.stochastic else None)


class MixedReference:
    """lrcore.reference in float32 on the widened 16-bit values, its 16-bit results rounded to nearest even.

    ``state_dtype`` None keeps the state in float32 (``fp32-state``, ``master``); a 16-bit dtype rounds
    it after every step too (torch's layout: state in the parameter's dtype). With ``master`` the
    float32 parameters are the master copies and are not rounded; the 16-bit parameters are their
    rounded values.
    """

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], master: bool = False,
                 state_dtype: Optional[np.dtype] = None) -> None:
        self.rule = rule
        self.dtype = params[0].dtype
        self.master = master
        self.state_dtype = state_dtype
        self.runner = FunctionalRunner(rule, [p.astype(np.float32) for p in params], getattr(reference, rule.function))
        self.params16 = [p.copy() for p in params]

    def step(self, grads: Sequence[np.ndarray]) -> None:
        self.runner.use_grads([g.astype(np.float32) for g in grads])
        self.runner.step()
        for k, p in enumerate(self.runner.params()):
            self.params16[k] = p.astype(self.dtype)
            if not self.master:
                p[...] = self.params16[k].astype(np.float32)
        if self.state_dtype is not None:
            state = self.runner.state()
            assert state is not None
            for name in self.rule.state_names:
                for a in state[name]:
                    if a is not None:
                        a[...] = a.astype(self.state_dtype).astype(np.float32)

    def state(self, dtype: Optional[np.dtype] = None) -> State:
        """The state lists, in ``dtype`` (default: float32, as kept)."""
        state = self.runner.state()
        assert state is not None
        return {name: [None if a is None else (a if dtype is None else a.astype(dtype)) for a in state[name]]
                for name in self.rule.state_names}


def _torch_16_bit(torch: Any, array: np.ndarray) -> Any:
    """A torch tensor sharing ``array``'s memory, of its 16-bit dtype."""
    if array.dtype == np.float16:
        return torch.from_numpy(array)
    return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)


class Torch16Runner(Runner):
    """A torch.optim optimizer on 16-bit tensors sharing memory with numpy copies (its state is 16-bit)."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], variant: str, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [_torch_16_bit(torch, p).requires_grad_() for p in self._params]
        arguments = dict(rule.torch_arguments)
        arguments.update(TORCH_VARIANTS[variant])
        assert rule.torch_class is not None
        self.optimizer = getattr(torch.optim, rule.torch_class)(self._tensors, **arguments)
        self.step = self.optimizer.step  # type: ignore[method-assign]

    def use_grads(self, grads: Sequence[np.ndarray]) -> None:
        for tensor, grad in zip(self._tensors, grads):
            tensor.grad = _torch_16_bit(self._torch, grad)

    def params(self) -> List[np.ndarray]:
        return self._params


class DeepSpeed16Runner(Torch16Runner):
    """DeepSpeedCPUAdam on 16-bit parameters and gradients, with float32 state (fp32_optimizer_states=True)."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], optimizer_class: Any, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [_torch_16_bit(torch, p).requires_grad_() for p in self._params]
        hp = rule.hyperparameters
        self.optimizer = optimizer_class(self._tensors, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                         weight_decay=hp.get("weight_decay", 0.0),
                                         adamw_mode=rule.deepspeed_adamw_mode, fp32_optimizer_states=True)
        self.step = self.optimizer.step  # type: ignore[method-assign]


@dataclass(frozen=True)
class MixedContender:
    """A contender of the 16-bit rows: how to make it and the layout of the reference it must match."""

    name: str
    title: str
    unavailable: Callable[[], Optional[str]]
    unsupported: Callable[[Rule], Optional[str]]
    make: Callable[[Rule, Sequence[np.ndarray]], Runner]
    state_16_bit: bool  # its state is in the parameter's dtype (torch) rather than float32 (DeepSpeed)


def _torch_mixed_unsupported(variant: str) -> Callable[[Rule], Optional[str]]:
    def check(rule: Rule) -> Optional[str]:
        return CONTENDERS[variant].unsupported(rule)
    return check


def _deepspeed_mixed_unsupported(rule: Rule) -> Optional[str]:
    if rule.deepspeed_adamw_mode is None:
        return "DeepSpeedCPUAdam is compared on 16-bit parameters for Adam and AdamW only"
    return None if deepspeed_adam() is not None else "this deepspeed has no DeepSpeedCPUAdam"


def _torch_mixed_unavailable() -> Optional[str]:
    return None if torch_module() is not None else "torch is not installed"


def _deepspeed_mixed_unavailable() -> Optional[str]:
    return None if deepspeed_adam() is not None else "deepspeed is not installed"


def _torch_make(variant: str) -> Callable[[Rule, Sequence[np.ndarray]], Runner]:
    return lambda rule, params: Torch16Runner(rule, params, variant, torch_module())


#: The contenders of the 16-bit rows; any other ``--against`` name shows n/a with a reason.
MIXED_CONTENDERS: Dict[str, MixedContender] = {
    c.name: c for c in (
        MixedContender("torch-loop", "torch.optim foreach=False, 16-bit params and state",
                       _torch_mixed_unavailable, _torch_mixed_unsupported("torch-loop"), _torch_make("torch-loop"),
                       True),
        MixedContender("torch-foreach", "torch.optim foreach=True, 16-bit params and state",
                       _torch_mixed_unavailable, _torch_mixed_unsupported("torch-foreach"),
                       _torch_make("torch-foreach"), True),
        MixedContender("torch-fused", "torch.optim fused=True, 16-bit params and state",
                       _torch_mixed_unavailable, _torch_mixed_unsupported("torch-fused"), _torch_make("torch-fused"),
                       True),
        MixedContender("deepspeed", "DeepSpeedCPUAdam, 16-bit params, float32 state",
                       _deepspeed_mixed_unavailable, _deepspeed_mixed_unsupported,
                       lambda rule, params: DeepSpeed16Runner(rule, params, deepspeed_adam(), torch_module()), False),
    )
}

#: ``--against`` with a 16-bit dtype when not given. (torch's foreach and for-loop Adam round every
#: intermediate operation to the 16-bit dtype, so they compute a different update and show MISMATCH.)
MIXED_DEFAULT_AGAINST = ("torch-fused", "deepspeed")
#: ``--rules`` with a 16-bit dtype when not given.
MIXED_DEFAULT_RULES = ("adam", "adamw")

#: The table's short name of each layout.
LAYOUT_LABELS = {"fp32-state": "a fp32 state", "bf16-state+sr": "b bf16+SR", "master": "c master"}


def layouts_json(rules: Sequence[Rule], dtype: np.dtype) -> List[Dict[str, Any]]:
    """The layouts of a run, for the JSON options: name, title, state dtype, master, stochastic, bytes per element."""
    return [{"name": layout.name, "label": LAYOUT_LABELS[layout.name], "title": layout.title,
             "param_dtype": dtype.name, "grad_dtype": dtype.name, "state_dtype": layout.state_dtype,
             "master_weights": layout.master, "stochastic_rounding": layout.stochastic,
             "rounding_seed": ROUNDING_SEED if layout.stochastic else None,
             "bytes_per_element": {rule.name: layout_bytes_per_element(rule, layout, dtype.itemsize) for rule in rules}}
            for layout in LAYOUTS]


def print_layouts(rules: Sequence[Rule], dtype: np.dtype, out: Any) -> None:
    """The layouts announced under the plan, with their bytes per element."""
    print(f"  layouts   {dtype.name} parameters and gradients, one row each:", file=out)
    for layout in LAYOUTS:
        per_rule = ", ".join(f"{rule.name} {layout_bytes_per_element(rule, layout, dtype.itemsize)} B/element"
                             for rule in rules)
        print(f"            {LAYOUT_LABELS[layout.name]:<13} {layout.title} ({per_rule})", file=out)
    out.flush()


def mixed_unsupported(name: str, rule: Rule) -> Optional[str]:
    """Why contender ``name`` has no 16-bit row for ``rule`` (absent, or not compared), or None."""
    contender = MIXED_CONTENDERS.get(name)
    if contender is None:
        return "not compared with 16-bit parameters"
    return contender.unavailable() or contender.unsupported(rule)


# --------------------------------------------------------------- the roof --
def roof_tensors(read_bytes: int, update_bytes: int) -> List[Tuple[int, int]]:
    """(float32 elements, updated arrays) of roof tensors (one input array each) that move exactly
    ``read_bytes + 2 * update_bytes`` bytes, read-only and read-write as close to the given split as
    roof_stream allows.

    roof_stream pairs every tensor's updated arrays (at most 4) with an input array of the same size,
    so it reads at least a quarter as much as it updates. When the layout updates more than four
    times what it only reads (bfloat16 parameters with float32 state and master copies), the roof
    reads that quarter and updates correspondingly less: the same bytes with a few more of them
    read-only (reads and writes both cross the memory bus once per byte as counted here).
    """
    reads = read_bytes // 4
    updates = update_bytes // 4
    if reads <= 0:
        return []
    if updates <= 4 * reads:
        low = max(1, updates // reads)
        if low >= 4:
            return [(reads, 4)]
        # s_low * low + s_high * (low + 1) = updates, s_low + s_high = reads
        high_size = updates - low * reads
        return [(size, arity) for size, arity in ((reads - high_size, low), (high_size, low + 1)) if size > 0]
    total = reads + 2 * updates  # float32 elements of traffic
    return [(int(round(total / 9)), 4)]


class MixedRoofRunner:
    """The memory roof of a 16-bit layout: roof_stream over float32 arrays of its own that move the
    layout's bytes per element (see :func:`roof_tensors`)."""

    def __init__(self, elements_per_param: Sequence[int], bytes_per_element: int, read_bytes_per_element: int,
                 seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.inputs: List[List[np.ndarray]] = []
        self.updates: List[List[np.ndarray]] = []
        self.bytes_per_step = 0
        for n in elements_per_param:
            read = n * read_bytes_per_element
            update = (n * bytes_per_element - read) // 2
            for size, arity in roof_tensors(read, update):
                self.inputs.append([rng.standard_normal(size, dtype=np.float32)])
                self.updates.append([np.zeros(size, dtype=np.float32) for _ in range(arity)])
                self.bytes_per_step += 4 * size * (1 + 2 * arity)
        self.step = functools.partial(_core.bench.roof_stream, self.inputs, self.updates)

    def deviation(self) -> float:
        """Runs the first step: every updated array (zeros) must then equal its input exactly (0 when so)."""
        self.step()
        worst = 0.0
        for (g,), updated in zip(self.inputs, self.updates):
            for u in updated:
                if not np.array_equal(u, g):
                    worst = max(worst, float(np.max(np.abs(u - g))) / max(float(np.max(np.abs(g))), 1e-30))
                    worst = worst if worst == worst else float("inf")
        return worst


# ----------------------------------------------------------- verification --
def _bits(array: np.ndarray) -> np.ndarray:
    return array.view(np.uint16 if array.dtype.itemsize == 2 else np.uint32 if array.dtype.itemsize == 4
                      else np.uint64)


def differing(actual: Sequence[Optional[np.ndarray]], expected: Sequence[Optional[np.ndarray]]) -> int:
    """How many values differ bitwise (a missing or misshapen array counts all its values)."""
    count = 0
    for a, e in zip(actual, expected):
        if a is None and e is None:
            continue
        if a is None or e is None or a.shape != e.shape or a.dtype != e.dtype:
            count += max(0 if a is None else a.size, 0 if e is None else e.size, 1)
            continue
        count += int(np.count_nonzero(_bits(a) != _bits(e)))
    return count + abs(len(actual) - len(expected))


def _ordered(array: np.ndarray) -> np.ndarray:
    """16-bit floats as integers in the order of their values (sign-magnitude to two's complement)."""
    bits = array.view(np.uint16).astype(np.int64)
    return np.where(bits & 0x8000, -(bits & 0x7FFF), bits)


def ulp_difference(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray],
                   initial: Sequence[np.ndarray]) -> Tuple[int, float]:
    """How far 16-bit values are from the expected ones: the most units in the last place any value is off
    by, among those also off by more than the float32 tolerance of the update (1e-3 of the largest
    change from ``initial``: near zero a unit in the last place is far below what rounding in another
    order can move), and the fraction of values differing at all (a shape or dtype mismatch: a huge
    count and 1.0)."""
    worst, differ, total = 0, 0, 0
    change = max(float(np.max(np.abs(e.astype(np.float64) - x.astype(np.float64)), initial=0.0))
                 for e, x in zip(expected, initial)) if expected else 0.0
    for a, e in zip(actual, expected):
        if a.shape != e.shape or a.dtype != e.dtype:
            return 1 << 30, 1.0
        gap = np.abs(_ordered(a) - _ordered(e))
        error = np.abs(a.astype(np.float64) - e.astype(np.float64))
        beyond = error > TOLERANCE[np.dtype(np.float32)] * change
        worst = max(worst, int(np.max(np.where(beyond, gap, 0), initial=0)))
        differ += int(np.count_nonzero(gap))
        total += a.size
    return worst, differ / max(total, 1)


def _neighbours(exact: np.ndarray, dtype: np.dtype) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 16-bit values just below and above ``exact`` in magnitude (as uint16 bits), and how far ``exact``
    lies from the lower one to the upper one (0: representable). Finite values only."""
    nearest = exact.astype(dtype)
    widened = nearest.astype(np.float32)
    bits = nearest.view(np.uint16).astype(np.int64)
    magnitude_above = np.abs(widened) > np.abs(exact)
    lower = np.where(magnitude_above, bits - 1, bits)  # magnitude one step down, or nearest itself
    # The value above zero takes the exact value's sign (nearest may be a zero of either sign).
    sign = np.where(np.signbit(exact), 0x8000, 0)
    lower = np.where((lower & 0x7FFF) == 0, sign, lower)
    upper = lower + 1
    low = lower.astype(np.uint16).view(dtype).astype(np.float64)
    high = upper.astype(np.uint16).view(dtype).astype(np.float64)
    x = exact.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(x == low, 0.0, (np.abs(x) - np.abs(low)) / (np.abs(high) - np.abs(low)))
    return lower.astype(np.uint16), upper.astype(np.uint16), fraction


def check_stochastic(actual: Sequence[np.ndarray], exact: Sequence[np.ndarray]) -> Tuple[int, float]:
    """Checks 16-bit ``actual`` values as stochastic roundings of the float32 ``exact`` ones.

    Returns (values that are neither neighbour of the exact value, the largest |z| over the four quarters
    of the rounding fractions of the count rounded up in magnitude against its expectation).
    """
    outside = 0
    ups = np.zeros(4)
    expected = np.zeros(4)
    variance = np.zeros(4)
    for a, x in zip(actual, exact):
        lower, upper, fraction = _neighbours(x.reshape(-1), a.dtype)
        bits = a.reshape(-1).view(np.uint16)
        exact_value = fraction == 0
        went_up = bits == upper
        allowed = np.where(exact_value, bits == lower, went_up | (bits == lower))
        outside += int(np.count_nonzero(~allowed))
        inexact = ~exact_value
        quarter = np.minimum((fraction[inexact] * 4).astype(np.int64), 3)
        ups += np.bincount(quarter, weights=went_up[inexact].astype(np.float64), minlength=4)
        expected += np.bincount(quarter, weights=fraction[inexact], minlength=4)
        variance += np.bincount(quarter, weights=fraction[inexact] * (1 - fraction[inexact]), minlength=4)
    z = np.abs(ups - expected) / np.sqrt(np.maximum(variance, 1.0))
    return outside, float(np.max(z))


def _as_float32_state(state: State, names: Sequence[str]) -> State:
    return {name: [None if a is None else a.astype(np.float32) for a in state[name]] for name in names}


def _exact_step(rule: Rule, params: Sequence[np.ndarray], state: State, grads: Sequence[np.ndarray]
                ) -> Tuple[List[np.ndarray], State]:
    """One float32 reference step from 16-bit parameters and state (widened exactly); its float32 results."""
    runner = FunctionalRunner(rule, [p.astype(np.float32) for p in params], getattr(reference, rule.function))
    mine = runner.state()
    assert mine is not None
    for name in rule.state_names:
        mine[name][:] = [None if a is None else a.astype(np.float32) for a in state[name]]
    if rule.has_steps:
        mine["steps"][:] = state["steps"]
    runner.use_grads([g.astype(np.float32) for g in grads])
    runner.step()
    return runner.params(), _as_float32_state(mine, rule.state_names)


def _snapshot_state(state: State, rule: Rule) -> State:
    copy: State = {name: [None if a is None else a.copy() for a in state[name]] for name in rule.state_names}
    copy["steps"] = state["steps"].copy()
    return copy


def verify_layout(rule: Rule, layout: Layout, params: Sequence[np.ndarray], first: Sequence[np.ndarray],
                  second: Sequence[np.ndarray], threads: int,
                  make: Optional[Callable[[], MixedLrcoreRunner]] = None) -> Tuple[MixedLrcoreRunner, Optional[str], float]:
    """Two steps of the layout on copies of ``params``, checked (module docstring); returns the runner (ready
    to be timed), why it failed (None when verified) and its deviation (values differing bitwise for the
    nearest layouts; the largest |z| for the stochastic one)."""
    make = make or (lambda: MixedLrcoreRunner(rule, params, layout))
    runner = make()
    if not layout.stochastic:
        expected = MixedReference(rule, params, master=layout.master)
        for grads in (first, second):
            runner.use_grads(grads)
            runner.step()
            expected.step(grads)
        state = runner.state()
        assert state is not None
        count = differing(runner.params(), expected.params16)
        count += sum(differing(state[name], expected.state()[name]) for name in rule.state_names)
        if layout.master:
            assert runner.masters is not None
            count += differing(runner.masters, expected.runner.params())
        if count:
            return runner, (f"{count} values differ from the float32 reference rounded to nearest even "
                            f"(bitwise check)"), float(count)
        return runner, None, 0.0
    worst_z = 0.0
    before_params = [p.copy() for p in runner.params()]
    state = runner.state()
    assert state is not None
    before_state = _snapshot_state(state, rule)
    for step, grads in enumerate((first, second), start=1):
        exact_params, exact_state = _exact_step(rule, before_params, before_state, grads)
        runner.use_grads(grads)
        runner.step()
        actual_state = runner.state()
        assert actual_state is not None
        pairs = list(zip(runner.params(), exact_params))
        for name in rule.state_names:
            pairs += [(a, x) for a, x in zip(actual_state[name], exact_state[name]) if a is not None]
        outside, z = check_stochastic([a for a, _ in pairs], [x for _, x in pairs])
        worst_z = max(worst_z, z)
        if outside or z > STOCHASTIC_Z:
            return runner, (f"step {step}: {outside} values are not a neighbour of the exact float32 value, "
                            f"rounded-up counts {z:.1f} standard deviations from expected (limit {STOCHASTIC_Z:g})"
                            ), worst_z
        before_params = [p.copy() for p in runner.params()]
        before_state = _snapshot_state(actual_state, rule)
    # The same run on another thread count and the baseline instruction set: bitwise the same.
    other_threads = 1 if threads > 1 else 2
    isa = _runtime.isa()
    repeat = make()
    _runtime.set_num_threads(other_threads)
    try:
        if "baseline" in _runtime.available_isas():
            _runtime.set_isa("baseline")
        for grads in (first, second):
            repeat.use_grads(grads)
            repeat.step()
    finally:
        _runtime.set_isa(isa)
        _runtime.set_num_threads(threads)
    repeat_state = repeat.state()
    assert repeat_state is not None
    final_state = runner.state()
    assert final_state is not None
    count = differing(repeat.params(), runner.params())
    count += sum(differing(repeat_state[name], final_state[name]) for name in rule.state_names)
    if count:
        return runner, (f"{count} values differ between {threads} and {other_threads} threads (ISA {isa} and "
                        f"baseline) with the same seed"), worst_z
    return runner, None, worst_z


def verify_contender(rule: Rule, contender: MixedContender, params: Sequence[np.ndarray],
                     first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> Tuple[Runner, Optional[str], float]:
    """Two steps of the contender checked in 16-bit units in the last place against the reference of its
    layout (16-bit state for torch, float32 state for DeepSpeed; parameters compared)."""
    runner = contender.make(rule, params)
    expected = MixedReference(rule, params, state_dtype=params[0].dtype if contender.state_16_bit else None)
    for grads in (first, second):
        runner.use_grads(grads)
        runner.step()
        expected.step(grads)
    ulps, fraction = ulp_difference(runner.params(), expected.params16, params)
    if ulps > CONTENDER_ULPS or fraction > CONTENDER_DIFFERING:
        return runner, (f"parameters up to {ulps} units in the last place from the reference (beyond 1e-3 of the "
                        f"update), {fraction:.2%} of them differ (limits {CONTENDER_ULPS} and "
                        f"{CONTENDER_DIFFERING:.0%}); not timed"), fraction
    return runner, None, fraction


# ------------------------------------------------------------------- cases --
def starting_arrays(workload: Workload, dtype: np.dtype, seed: int) -> Tuple[List[np.ndarray], List[np.ndarray],
                                                                           List[np.ndarray]]:
    """Parameters and two gradients ~ N(0, 1) drawn in float32 and rounded to the 16-bit dtype."""
    rng = np.random.default_rng(seed)

    def normal(shape: Tuple[int, ...]) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32).astype(dtype)

    params = [normal(s) for s in workload.shapes]
    first = [normal(s) for s in workload.shapes]
    second = [normal(s) for s in workload.shapes]
    return params, first, second


def _lrcore_threads(count: int) -> Callable[[], None]:
    def before() -> None:
        if _runtime.get_num_threads() != count:
            _runtime.set_num_threads(count)
    return before


def run_mixed_case(rule: Rule, workload: Workload, threads: int, options: Options,
                   phase: Callable[[str], None] = lambda text: None) -> List[CaseResult]:
    """One cell at a 16-bit dtype: a verified CaseResult per layout, all timed in one interleaved group."""
    dtype = options.dtype
    _set_threads(threads)
    phase("setup")
    params, first, second = starting_arrays(workload, dtype, options.seed)
    results: List[CaseResult] = []
    group: List[Timed] = []
    runners: Dict[str, Any] = {}
    for layout in LAYOUTS:
        per_element = layout_bytes_per_element(rule, layout, dtype.itemsize)
        case = CaseResult(rule.name, workload.name, workload.label, workload.arrays, workload.elements, dtype.name,
                          threads, workload.elements * per_element)
        case.layout = layout.name
        results.append(case)
        phase(f"verify {layout.name}")
        try:
            runner, problem, error = verify_layout(rule, layout, params, first, second, threads)
        except Exception as failure:  # lrcore refused the layout: the row failed, the others go on
            case.status, case.reason = "FAILED", f"{type(failure).__name__}: {failure}"
            continue
        case.deviation = error
        if problem is not None:
            case.status, case.reason = "FAILED", f"lrcore {layout.name}: {problem}"
            continue
        roof = MixedRoofRunner([int(np.prod(s)) for s in workload.shapes], per_element, dtype.itemsize, options.seed)
        roof_error = roof.deviation()
        if roof_error != 0.0:
            case.status, case.reason = "FAILED", f"the roof kernel's result is off by {roof_error:.3g}"
            continue
        case.roof_bytes_per_step = roof.bytes_per_step
        group.append(Timed(layout.name, runner.step, _lrcore_threads(threads)))
        group.append(Timed(f"roof {layout.name}", roof.step, _lrcore_threads(threads)))
        if threads > 1:
            group.append(Timed(f"{layout.name} 1 thread", runner.step, _lrcore_threads(1)))
        runners[layout.name] = (runner, roof)

    # lrcore float32 on the same values (widened), checked against the float32 reference.
    phase("verify lrcore float32")
    wide = [p.astype(np.float32) for p in params]
    wide_first = [g.astype(np.float32) for g in first]
    wide_second = [g.astype(np.float32) for g in second]
    float32_entry = ContenderResult("lrcore-float32", "ok")
    expected32 = FunctionalRunner(rule, wide, getattr(reference, rule.function))
    # The same call path as the layouts (the native step with prepared arguments), so small sizes
    # compare the same per-call cost.
    float32_runner = MixedLrcoreRunner(rule, wide, FLOAT32)
    for runner_32 in (expected32, float32_runner):
        for grads in (wide_first, wide_second):
            runner_32.use_grads(grads)
            runner_32.step()
    expected_state = expected32.state()
    assert expected_state is not None
    float32_error = max(deviation(float32_runner.params(), expected32.params(), wide),
                        state_deviation(float32_runner.state(), expected_state, rule.state_names))
    del expected32, expected_state
    float32_entry.deviation = float32_error
    if not float32_error <= TOLERANCE[np.dtype(np.float32)]:
        float32_entry.status = "mismatch"
        float32_entry.reason = f"lrcore float32 deviates from lrcore.reference by {float32_error:.3g}; not timed"
    else:
        group.append(Timed("lrcore-float32", float32_runner.step, _lrcore_threads(threads)))

    entries: Dict[str, ContenderResult] = {"lrcore-float32": float32_entry}
    for name in options.against:
        reason = mixed_unsupported(name, rule)
        if reason is not None:
            entries[name] = ContenderResult(name, "n/a", reason)
            continue
        phase(f"verify {name}")
        try:
            theirs, problem, error = verify_contender(rule, MIXED_CONTENDERS[name], params, first, second)
        except Exception as failure:
            entries[name] = ContenderResult(name, "error", f"{type(failure).__name__}: {failure}")
            continue
        if problem is not None:
            entries[name] = ContenderResult(name, "mismatch", problem, deviation=error)
            continue
        entries[name] = ContenderResult(name, "ok", deviation=error)
        group.append(Timed(name, theirs.step))
        if workload.elements >= 1 << 20:
            gc.collect()

    if not runners:
        return results
    phase(f"timing {len(group)} interleaved")
    samples = measure_interleaved(group, options.budget)
    _set_threads(threads)
    for case in results:
        if case.status != "ok" or case.layout is None:
            continue
        mine = samples[case.layout]
        case.lrcore_seconds, case.lrcore_spread = mine.median, mine.spread
        case.samples = len(mine.times)
        roof_samples = samples[f"roof {case.layout}"]
        case.roof_seconds, case.roof_spread = roof_samples.median, roof_samples.spread
        if threads > 1:
            one = samples[f"{case.layout} 1 thread"]
            case.one_thread_seconds, case.one_thread_spread = one.median, one.spread
        for name, entry in entries.items():
            copy = ContenderResult(entry.name, entry.status, entry.reason, entry.deviation)
            if entry.status == "ok" and name in samples:
                timed = samples[name]
                copy.seconds, copy.spread, copy.samples = timed.median, timed.spread, len(timed.times)
                copy.lrcore_seconds, copy.lrcore_spread = mine.median, mine.spread
            case.contenders[name] = copy
    for case in results:  # rows that failed still list the contenders' verdicts
        if not case.contenders:
            case.contenders = {name: ContenderResult(e.name, e.status, e.reason, e.deviation)
                               for name, e in entries.items()}
    return results


def plan_seconds(rule: Rule, workload: Workload, threads: int, contenders: int, budget: Any) -> float:
    """A rough estimate of one 16-bit cell: set-up and verification, then one group of every member."""
    members = 2 * len(LAYOUTS) + (len(LAYOUTS) if threads > 1 else 0) + 1 + contenders
    per_round = sum(max(workload.elements * 22 / 25e9 + 3e-6 * workload.arrays, budget.min_sample_seconds)
                    for _ in range(members))
    rounds = min(max(budget.seconds / per_round, budget.min_samples), budget.max_samples)
    return float(workload.elements * 4e-6 + rounds * per_round + math.log2(max(workload.elements, 2)) * 1e-3)
