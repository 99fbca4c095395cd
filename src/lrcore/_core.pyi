# Type stubs of the compiled module lrcore._core (the pybind11 bindings).
# The public, documented API is in lrcore.functional, lrcore.optim and
# lrcore._runtime; these are the raw entry points they call. Written by hand:
# tests/test_stubs.py checks that the rule names below match the compiled
# module's lrcore._core.rules.names.
from types import ModuleType
from typing import Any, Callable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

# One parameter group of a step: (native hyperparameters, params, grads,
# state name -> list of arrays (None entries are created), per-tensor step counters or None).
_Group = Tuple[
    Mapping[str, Any],
    Sequence[np.ndarray],
    Sequence[Optional[np.ndarray]],
    Mapping[str, Optional[List[Optional[np.ndarray]]]],
    Optional[np.ndarray],
]

class _Rule:
    # lrcore._core.rules.Rule: one update rule's native description and its step.
    @property
    def name(self) -> str: ...
    # (name, kind "number" | "flag", valid range in words), in the kernel's order.
    @property
    def hyperparameters(self) -> List[Tuple[str, str, str]]: ...
    # (state name, functional list name, needed when ("" = always), kernel-initialized).
    @property
    def states(self) -> List[Tuple[str, str, str, bool]]: ...
    @property
    def has_step(self) -> bool: ...
    def step(
        self,
        groups: Sequence[_Group],
        counters: Optional[np.ndarray] = None,
        skip_nonfinite: bool = False,
        create: Optional[Callable[[np.ndarray], np.ndarray]] = None,
        group_labels: bool = False,
    ) -> bool: ...
    def check_hyperparameters(self, hyperparameters: Mapping[str, Any], prefix: str = "") -> None: ...
    def needed_states(self, hyperparameters: Mapping[str, Any]) -> List[str]: ...

class _RulesModule(ModuleType):
    # lrcore._core.rules: one Rule object per native rule.
    Rule = _Rule
    sgd: _Rule
    adagrad: _Rule
    rmsprop: _Rule
    adam: _Rule
    names: Tuple[str, ...]

rules: _RulesModule
schedules: Any
bench: Any
gradients: Any

def isa() -> str: ...
def available_isas() -> List[str]: ...
def compiled_isas() -> List[str]: ...
def set_isa(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(count: int) -> None: ...
def get_flush_denormals() -> bool: ...
def set_flush_denormals(enabled: bool) -> None: ...
def check_parameters(params: Sequence[np.ndarray], first_index: int = 0) -> None: ...
