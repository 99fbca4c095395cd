# Type stubs of the compiled module lrcore._core (the pybind11 bindings).
# The public, documented API is in lrcore.functional, lrcore.optim,
# lrcore.schedules, lrcore.gradients and lrcore._runtime; these are the raw
# entry points they call. Written by hand: tests/test_stubs.py checks that the
# names below (submodules, classes, fields, parameters) match the compiled module.
#
# The submodules are modelled as ModuleType subclasses, one attribute per name
# the C++ registers (cpp/python/register_*.cpp), since a compiled module cannot
# carry stub files of its own submodules.
from types import ModuleType
from typing import (
    Any, Callable, ClassVar, Iterable, List, Literal, Mapping, Optional, Sequence, SupportsIndex, Tuple, Union,
)

import numpy as np

# One parameter group of a step: (native hyperparameters, params, grads,
# state name -> list of arrays (None entries are created), per-tensor step counters or None),
# and for a rule with per-group state, the group's float64 state array.
_Group = Union[
    Tuple[
        Mapping[str, Any],
        Sequence[np.ndarray],
        Sequence[Optional[np.ndarray]],
        Mapping[str, Optional[List[Optional[np.ndarray]]]],
        Optional[np.ndarray],
    ],
    Tuple[
        Mapping[str, Any],
        Sequence[np.ndarray],
        Sequence[Optional[np.ndarray]],
        Mapping[str, Optional[List[Optional[np.ndarray]]]],
        Optional[np.ndarray],
        np.ndarray,
    ],
]

class _Rule:
    # lrcore._core.rules.Rule: one update rule's native description and its step.
    @property
    def name(self) -> str: ...
    # (name, kind "number" | "flag", valid range in words), in the kernel's order.
    @property
    def hyperparameters(self) -> List[Tuple[str, str, str]]: ...
    # (state name, functional list name, needed when ("" = always), kernel-initialized,
    # what the kernel initializes it from: "gradient", "param", or "" when not kernel-initialized).
    @property
    def states(self) -> List[Tuple[str, str, str, bool, str, str, str]]: ...
    # Per-tensor scalar states: (name, functional list name, initial value).
    @property
    def scalars(self) -> List[Tuple[str, str, float]]: ...
    @property
    def has_step(self) -> bool: ...
    # (name, kind "count" | "number" | "flag", initial value) of the per-group state; empty without one.
    @property
    def group_scalars(self) -> List[Tuple[str, str, float]]: ...
    @property
    def has_modes(self) -> bool: ...
    # The states with one value per row of the parameter (shape param.shape[:1]).
    @property
    def row_states(self) -> Tuple[str, ...]: ...
    # Whether the rule takes numpy gradients, and row-sparse ones (SparseRows).
    @property
    def dense_gradients(self) -> bool: ...
    @property
    def sparse_gradients(self) -> bool: ...
    def step(
        self,
        groups: Sequence[_Group],
        counters: Optional[np.ndarray] = None,
        skip_nonfinite: bool = False,
        create: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        group_labels: bool = False,
        max_grad_norm: Optional[float] = None,
        norm_type: float = 2.0,
        grad_norm: Optional[np.ndarray] = None,
        rounding_seed: Optional[int] = None,
    ) -> bool: ...
    def check_hyperparameters(self, hyperparameters: Mapping[str, Any], prefix: str = "") -> None: ...
    def needed_states(self, hyperparameters: Mapping[str, Any]) -> List[str]: ...
    # Rules with modes: groups are (hyperparameters, params, state, group_state).
    def switch_mode(self, groups: Sequence[Tuple[Any, ...]], train: bool) -> None: ...
    def check_group_state(self, group_state: np.ndarray, prefix: str = "") -> None: ...

class _RulesModule(ModuleType):
    # lrcore._core.rules: one Rule object per native rule.
    Rule = _Rule
    sgd: _Rule
    adagrad: _Rule
    rmsprop: _Rule
    adam: _Rule
    adafactor: _Rule
    nadam: _Rule
    radam: _Rule
    adamax: _Rule
    lion: _Rule
    adadelta: _Rule
    rprop: _Rule
    asgd: _Rule
    schedule_free_adamw: _Rule
    schedule_free_sgd: _Rule
    sparse_adam: _Rule
    rowwise_adagrad: _Rule
    names: Tuple[str, ...]

# --------------------------------------------------------------- schedules --
# cpp/python/register_schedules.cpp: one class per closed form, generated from
# the field list in lrcore/schedules.hpp. The constructor is keyword-only and
# wants every field; real fields accept any real number, integer fields any
# integer-like value (operator.index), and the properties are read-only.

_CyclicMode = Literal["triangular", "triangular2", "exp_range"]
_AnnealStrategy = Literal["cos", "linear"]

class _NativeSchedule:
    # What every compiled schedule class has.
    _fields: ClassVar[Tuple[str, ...]]
    def __init__(self, **fields: Any) -> None: ...
    def __call__(self, t: SupportsIndex) -> float: ...

class _Constant(_NativeSchedule):
    def __init__(self, *, lr: float) -> None: ...
    @property
    def lr(self) -> float: ...

class _CosineAnnealing(_NativeSchedule):
    def __init__(self, *, lr: float, T_max: SupportsIndex, eta_min: float) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def T_max(self) -> int: ...
    @property
    def eta_min(self) -> float: ...

class _CosineAnnealingWarmRestarts(_NativeSchedule):
    def __init__(self, *, lr: float, T_0: SupportsIndex, T_mult: SupportsIndex, eta_min: float) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def T_0(self) -> int: ...
    @property
    def T_mult(self) -> int: ...
    @property
    def eta_min(self) -> float: ...

class _Cyclic(_NativeSchedule):
    def __init__(
        self,
        *,
        base_lr: float,
        max_lr: float,
        step_size_up: SupportsIndex,
        step_size_down: SupportsIndex,
        mode: _CyclicMode,
        gamma: float,
    ) -> None: ...
    @property
    def base_lr(self) -> float: ...
    @property
    def max_lr(self) -> float: ...
    @property
    def step_size_up(self) -> int: ...
    @property
    def step_size_down(self) -> int: ...
    @property
    def mode(self) -> _CyclicMode: ...
    @property
    def gamma(self) -> float: ...

class _CyclicMomentum(_NativeSchedule):
    def __init__(
        self,
        *,
        base_momentum: float,
        max_momentum: float,
        step_size_up: SupportsIndex,
        step_size_down: SupportsIndex,
        mode: _CyclicMode,
        gamma: float,
    ) -> None: ...
    @property
    def base_momentum(self) -> float: ...
    @property
    def max_momentum(self) -> float: ...
    @property
    def step_size_up(self) -> int: ...
    @property
    def step_size_down(self) -> int: ...
    @property
    def mode(self) -> _CyclicMode: ...
    @property
    def gamma(self) -> float: ...

class _ExponentialDecay(_NativeSchedule):
    def __init__(self, *, lr: float, gamma: float, decay_steps: SupportsIndex, staircase: bool) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def gamma(self) -> float: ...
    @property
    def decay_steps(self) -> int: ...
    @property
    def staircase(self) -> bool: ...

class _InverseSqrt(_NativeSchedule):
    def __init__(self, *, lr: float, warmup_steps: SupportsIndex) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def warmup_steps(self) -> int: ...

class _InverseTimeDecay(_NativeSchedule):
    def __init__(
        self,
        *,
        lr: float,
        decay_rate: float,
        decay_steps: SupportsIndex,
        staircase: bool,
    ) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def decay_rate(self) -> float: ...
    @property
    def decay_steps(self) -> int: ...
    @property
    def staircase(self) -> bool: ...

class _Linear(_NativeSchedule):
    def __init__(
        self,
        *,
        lr: float,
        start_factor: float,
        end_factor: float,
        total_steps: SupportsIndex,
    ) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def start_factor(self) -> float: ...
    @property
    def end_factor(self) -> float: ...
    @property
    def total_steps(self) -> int: ...

class _MultiStepDecay(_NativeSchedule):
    def __init__(self, *, lr: float, milestones: Iterable[SupportsIndex], gamma: float) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def milestones(self) -> Tuple[int, ...]: ...
    @property
    def gamma(self) -> float: ...

class _OneCycle(_NativeSchedule):
    def __init__(
        self,
        *,
        max_lr: float,
        total_steps: SupportsIndex,
        pct_start: float,
        anneal_strategy: _AnnealStrategy,
        div_factor: float,
        final_div_factor: float,
        three_phase: bool,
    ) -> None: ...
    @property
    def max_lr(self) -> float: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def pct_start(self) -> float: ...
    @property
    def anneal_strategy(self) -> _AnnealStrategy: ...
    @property
    def div_factor(self) -> float: ...
    @property
    def final_div_factor(self) -> float: ...
    @property
    def three_phase(self) -> bool: ...
    @property
    def initial_lr(self) -> float: ...
    @property
    def min_lr(self) -> float: ...

class _OneCycleMomentum(_NativeSchedule):
    def __init__(
        self,
        *,
        total_steps: SupportsIndex,
        pct_start: float,
        anneal_strategy: _AnnealStrategy,
        three_phase: bool,
        base_momentum: float,
        max_momentum: float,
    ) -> None: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def pct_start(self) -> float: ...
    @property
    def anneal_strategy(self) -> _AnnealStrategy: ...
    @property
    def three_phase(self) -> bool: ...
    @property
    def base_momentum(self) -> float: ...
    @property
    def max_momentum(self) -> float: ...

class _PolynomialDecay(_NativeSchedule):
    def __init__(self, *, lr: float, total_steps: SupportsIndex, power: float, end_lr: float) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def total_steps(self) -> int: ...
    @property
    def power(self) -> float: ...
    @property
    def end_lr(self) -> float: ...

class _StepDecay(_NativeSchedule):
    def __init__(self, *, lr: float, step_size: SupportsIndex, gamma: float) -> None: ...
    @property
    def lr(self) -> float: ...
    @property
    def step_size(self) -> int: ...
    @property
    def gamma(self) -> float: ...

class _SchedulesModule(ModuleType):
    # lrcore._core.schedules: one compiled class per closed-form schedule.
    Constant = _Constant
    CosineAnnealing = _CosineAnnealing
    CosineAnnealingWarmRestarts = _CosineAnnealingWarmRestarts
    Cyclic = _Cyclic
    CyclicMomentum = _CyclicMomentum
    ExponentialDecay = _ExponentialDecay
    InverseSqrt = _InverseSqrt
    InverseTimeDecay = _InverseTimeDecay
    Linear = _Linear
    MultiStepDecay = _MultiStepDecay
    OneCycle = _OneCycle
    OneCycleMomentum = _OneCycleMomentum
    PolynomialDecay = _PolynomialDecay
    StepDecay = _StepDecay

# --------------------------------------------------------------- gradients --
# cpp/python/register_gradients.cpp: whole-gradient passes over a list of
# float32/float64 arrays (None entries skipped).

class _GradientsModule(ModuleType):
    @staticmethod
    def all_finite(grads: Sequence[Optional[np.ndarray]]) -> bool: ...
    @staticmethod
    def global_norm(grads: Sequence[Optional[np.ndarray]], norm_type: float = 2.0) -> float: ...
    @staticmethod
    def clip_grad_norm(
        grads: Sequence[Optional[np.ndarray]],
        max_norm: float,
        norm_type: float = 2.0,
        error_if_nonfinite: bool = False,
    ) -> float: ...
    @staticmethod
    def clip_grad_value(grads: Sequence[Optional[np.ndarray]], clip_value: float) -> None: ...
    # The pieces of global_norm, for a caller holding the gradients in parts (lrcore.distributed).
    @staticmethod
    def norm_partials(
        grads: Sequence[Optional[np.ndarray]], norm_type: float = 2.0
    ) -> Tuple[np.ndarray, np.ndarray]: ...
    @staticmethod
    def norm_from_partials(float32_partials: np.ndarray, float64_partials: np.ndarray, norm_type: float = 2.0) -> float: ...
    @staticmethod
    def clip_coefficient(total_norm: float, max_norm: float) -> float: ...

# ------------------------------------------------------------------- bench --
# cpp/python/register_bench.cpp: the benchmark's memory roof. For tensor i,
# inputs[i] holds 1-2 arrays only read, updates[i] 1-4 arrays read and written.
# roof_read / roof_update: the roofs of the read-only and in-place gradient passes.

class _BenchModule(ModuleType):
    @staticmethod
    def roof_stream(inputs: Sequence[Sequence[np.ndarray]], updates: Sequence[Sequence[np.ndarray]]) -> None: ...
    @staticmethod
    def roof_read(arrays: Sequence[np.ndarray]) -> None: ...
    @staticmethod
    def roof_update(arrays: Sequence[np.ndarray], addend: float = 0.0) -> None: ...

rules: _RulesModule
schedules: _SchedulesModule
gradients: _GradientsModule
bench: _BenchModule

def isa() -> str: ...
def available_isas() -> List[str]: ...
def compiled_isas() -> List[str]: ...
def set_isa(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(count: int) -> None: ...
def get_flush_denormals() -> bool: ...
def set_flush_denormals(enabled: bool) -> None: ...
def check_parameters(params: Sequence[np.ndarray], first_index: int = 0) -> None: ...

# ------------------------------------------------------------ sparse rows --
# cpp/python/register_optimizers.cpp: a row-sparse gradient (lrcore.SparseRows).

class SparseRows:
    def __init__(self, indices: Any, values: Any) -> None: ...
    @property
    def indices(self) -> np.ndarray: ...
    @property
    def values(self) -> np.ndarray: ...
