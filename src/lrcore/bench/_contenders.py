"""The implementations the benchmark times, behind one small interface.

A contender makes a :class:`Runner` from a rule and the case's starting
arrays. Every runner owns copies of the parameters (and its own state), steps
with the gradient it was last given, and exposes its parameters (and, for
the numpy-style runners, its state) as numpy arrays for verification.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..functional import state_like

from .. import _core, functional, reference
from ._numpy_fast import FastNumpyStep
from ._rules import Rule, State
from ._verify import deviation, rms_deviation

__all__ = ["BNB_8BIT_TOLERANCE", "CONTENDERS", "Contender", "Runner", "RoofRunner", "TORCH_VARIANTS", "clear_caches"]


class Runner:
    """One implementation set up on its own copy of a case's arrays."""

    def use_grads(self, grads: Sequence[np.ndarray]) -> None:
        raise NotImplementedError

    def step(self) -> object:  # what a step returns is ignored
        raise NotImplementedError

    def params(self) -> List[np.ndarray]:
        raise NotImplementedError

    def state(self) -> Optional[State]:
        """The state in lrcore.functional's layout, or None when it is not comparable."""
        return None


class ArraysRunner(Runner):
    """A runner over numpy arrays of its own: ``_params``, the ``_grads`` list its step reads, and
    ``_state`` in lrcore.functional's layout."""

    _params: List[np.ndarray]
    _grads: List[np.ndarray]
    _state: State

    def use_grads(self, grads: Sequence[np.ndarray]) -> None:
        self._grads[:] = grads

    def params(self) -> List[np.ndarray]:
        return self._params

    def state(self) -> Optional[State]:
        return self._state


class FunctionalRunner(ArraysRunner):
    """Calls ``step_function(params, grads, *state lists[, steps], **hyperparameters)`` (lrcore.functional's shape)."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], step_function: Callable[..., None]) -> None:
        self._params = [p.copy() for p in params]
        self._grads: List[np.ndarray] = [None] * len(params)  # type: ignore[list-item]
        self._state = rule.new_state(self._params)
        positional: List[Any] = [self._state[name] for name in rule.state_names + rule.scalar_names]
        if rule.has_steps:
            positional.append(self._state["steps"])
        if "group_state" in self._state:
            positional.append(self._state["group_state"])
        # Bound once: the timed call is the implementation's own call and nothing else.
        self.step = functools.partial(step_function, self._params, self._grads, *positional,  # type: ignore[method-assign]
                                      **rule.hyperparameters)


class FastNumpyRunner(FunctionalRunner):
    def __init__(self, rule: Rule, params: Sequence[np.ndarray]) -> None:
        super().__init__(rule, params, lambda *a, **k: None)
        step = FastNumpyStep(rule, self._params)
        self.step = functools.partial(step, self._params, self._grads, self._state)  # type: ignore[method-assign]


class RoofRunner:
    """The memory roof on copies of the case's arrays: the rule's reads and writes, trivial arithmetic."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        # Allocated as the other runners (and the optimizer classes) allocate: the parameters, then
        # each state list in turn. Small arrays allocated back to back would sit 4 KiB + a header
        # apart, and a load 4 KiB after a store stalls (4K aliasing): the layout is part of the cost.
        copies = [p.copy() for p in params]
        states = [[state_like(p) for p in params] for _ in rule.streamed_state_names]
        self.updates = [[p] + [state[i] for state in states] for i, p in enumerate(copies)]
        self.inputs = [[g] for g in grads]
        self._origin = list(params)  # the caller's starting parameters (not copied; nobody writes them)
        self._stepped = False
        self.step = functools.partial(_core.bench.roof_stream, self.inputs, self.updates)

    def deviation(self) -> float:
        """Runs the first roof step and returns the largest relative error of u <- u + g (0 when exact).

        Checked against the starting parameters and zero state rather than a
        copy of the roof's arrays, so a large workload needs no second set.
        """
        if self._stepped:
            raise RuntimeError("RoofRunner.deviation() checks the first step only")
        self._stepped = True
        self.step()
        worst = 0.0
        for (g,), p0, new in zip(self.inputs, self._origin, self.updates):
            scale = max(float(np.max(np.abs(g), initial=0.0)), 1e-30)
            for k, u1 in enumerate(new):
                expected = p0 + g if k == 0 else g  # the state starts at zero: 0 + g is exactly g
                error = float(np.max(np.abs(u1 - expected), initial=0.0)) / scale
                worst = max(worst, error if error == error else float("inf"))
        return worst


class TorchRunner(Runner):
    """A torch.optim optimizer on tensors that share memory with numpy copies of the parameters."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], variant: str, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [torch.from_numpy(p).requires_grad_() for p in self._params]
        arguments = dict(rule.torch_arguments)
        arguments.update(TORCH_VARIANTS[variant])
        assert rule.torch_class is not None, "the contender refuses rules torch does not have"
        self.optimizer = getattr(torch.optim, rule.torch_class)(self._tensors, **arguments)
        self.step = self.optimizer.step  # type: ignore[method-assign]

    def use_grads(self, grads: Sequence[np.ndarray]) -> None:
        for tensor, grad in zip(self._tensors, grads):
            tensor.grad = self._torch.from_numpy(grad)

    def params(self) -> List[np.ndarray]:
        return self._params


class ScheduleFreeRunner(TorchRunner):
    """The schedulefree package's optimizer (its single-tensor loop, foreach=False, as lrcore's order) in
    train mode on CPU torch tensors.

    The package normalizes ``p.grad`` in place, so each runner gets its own copy of the gradients
    (made in use_grads, outside the timed step); repeated timed steps then reuse the normalized copy,
    which changes the values but not the work.
    """

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], schedulefree: Any, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [torch.from_numpy(p).requires_grad_() for p in self._params]
        assert rule.schedulefree_class is not None
        self.optimizer = getattr(schedulefree, rule.schedulefree_class)(self._tensors, foreach=False,
                                                                        **rule.torch_arguments)
        self.optimizer.train()
        self.step = self.optimizer.step  # type: ignore[method-assign]

    def use_grads(self, grads: Sequence[np.ndarray]) -> None:
        for tensor, grad in zip(self._tensors, grads):
            tensor.grad = self._torch.from_numpy(grad.copy())


class DeepSpeedRunner(TorchRunner):
    """DeepSpeed's CPU Adam (its own SIMD kernels) on torch tensors."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], optimizer_class: Any, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [torch.from_numpy(p).requires_grad_() for p in self._params]
        hp = rule.hyperparameters
        self.optimizer = optimizer_class(self._tensors, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]), eps=hp["eps"],
                                         weight_decay=hp.get("weight_decay", 0.0),
                                         adamw_mode=rule.deepspeed_adamw_mode)
        self.step = self.optimizer.step  # type: ignore[method-assign]


class DeepSpeedAdagradRunner(TorchRunner):
    """DeepSpeed's CPU Adagrad on torch tensors."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], optimizer_class: Any, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [torch.from_numpy(p).requires_grad_() for p in self._params]
        hp = rule.hyperparameters
        self.optimizer = optimizer_class(self._tensors, lr=hp["lr"], eps=hp.get("eps", 1e-10),
                                         weight_decay=hp.get("weight_decay", 0.0))
        self.step = self.optimizer.step  # type: ignore[method-assign]


class DeepSpeedLionRunner(TorchRunner):
    """DeepSpeed's CPU Lion on torch tensors."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], optimizer_class: Any, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [torch.from_numpy(p).requires_grad_() for p in self._params]
        hp = rule.hyperparameters
        self.optimizer = optimizer_class(self._tensors, lr=hp["lr"], betas=(hp["beta1"], hp["beta2"]),
                                         weight_decay=hp.get("weight_decay", 0.0))
        self.step = self.optimizer.step  # type: ignore[method-assign]


class BitsAndBytesRunner(TorchRunner):
    """A bitsandbytes optimizer (``bnb.optim.Adam32bit``, ``AdamW8bit``, ...) on CPU torch tensors."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray], optimizer_class: Any, torch: Any) -> None:
        self._torch = torch
        self._params = [p.copy() for p in params]
        self._tensors = [torch.from_numpy(p).requires_grad_() for p in self._params]
        self.optimizer = optimizer_class(self._tensors, **rule.torch_arguments)
        self.step = self.optimizer.step  # type: ignore[method-assign]


#: torch.optim keyword arguments of each torch contender.
TORCH_VARIANTS: Dict[str, Dict[str, bool]] = {
    "torch-loop": {"foreach": False},
    "torch-foreach": {"foreach": True},
    "torch-fused": {"fused": True},
}


@dataclass(frozen=True)
class Contender:
    """An implementation to compare lrcore with.

    Attributes:
        name: column key and ``--against`` token.
        title: what it is, for the report header.
        unavailable: returns why it cannot run here (not installed), or None.
        unsupported: returns why it cannot run a rule, or None.
        make: builds a runner for a rule on the given parameters.
    """

    name: str
    title: str
    unavailable: Callable[[], Optional[str]]
    unsupported: Callable[[Rule], Optional[str]]
    make: Callable[[Rule, Sequence[np.ndarray]], Runner]
    #: Largest accepted deviation from the reference (relative to the update), when looser than
    #: the dtype's ``_verify.TOLERANCE`` (e.g. 8-bit optimizer state); None: the default.
    tolerance: Optional[float] = None
    #: How its parameters are compared with the reference's: the worst element (``deviation``), or
    #: for quantized state the root mean square over all elements (``rms_deviation``), whose state
    #: is then not compared element by element either.
    measure: Callable[..., float] = deviation


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except Exception:  # any failure to import means "not available"; the report says so
        return None


@functools.lru_cache(maxsize=None)
def torch_module() -> Any:
    return _import("torch")


@functools.lru_cache(maxsize=None)
def deepspeed_adam() -> Any:
    if torch_module() is None:
        return None
    module = _import("deepspeed.ops.adam")
    return getattr(module, "DeepSpeedCPUAdam", None) if module is not None else None


@functools.lru_cache(maxsize=None)
def deepspeed_adagrad() -> Any:
    if torch_module() is None:
        return None
    module = _import("deepspeed.ops.adagrad")
    return getattr(module, "DeepSpeedCPUAdagrad", None) if module is not None else None


@functools.lru_cache(maxsize=None)
def deepspeed_lion() -> Any:
    if torch_module() is None:
        return None
    module = _import("deepspeed.ops.lion")
    return getattr(module, "DeepSpeedCPULion", None) if module is not None else None


@functools.lru_cache(maxsize=None)
def bitsandbytes_optim() -> Any:
    """``bitsandbytes.optim``, or None (not installed, no torch, or it failed to import)."""
    if torch_module() is None:
        return None
    module = _import("bitsandbytes")
    return getattr(module, "optim", None) if module is not None else None


@functools.lru_cache(maxsize=None)
def schedulefree_module() -> Any:
    """The ``schedulefree`` package (the schedule-free rules' reference implementation), or None."""
    if torch_module() is None:
        return None
    return _import("schedulefree")


def clear_caches() -> None:
    """Forgets which optional libraries were found (for tests that inject or hide a module)."""
    for cached in (torch_module, deepspeed_adam, deepspeed_adagrad, deepspeed_lion, bitsandbytes_optim,
                   schedulefree_module):
        cached.cache_clear()


def _needs_torch() -> Optional[str]:
    return None if torch_module() is not None else "torch is not installed"


def _torch_unsupported(variant: str) -> Callable[[Rule], Optional[str]]:
    def check(rule: Rule) -> Optional[str]:
        torch = torch_module()
        if torch is None:
            return "torch is not installed"
        if rule.torch_class is None:
            return f"torch.optim has no {rule.description.class_name}"
        if not hasattr(torch.optim, rule.torch_class):
            return f"torch.optim has no {rule.torch_class}"
        try:  # torch raises for a flag the class does not have (e.g. RMSprop fused)
            probe = torch.zeros(1, requires_grad=True)
            getattr(torch.optim, rule.torch_class)([probe], **rule.torch_arguments, **TORCH_VARIANTS[variant])
        except (TypeError, RuntimeError, ValueError) as error:
            return f"{rule.torch_class}({', '.join(f'{k}=True' for k in TORCH_VARIANTS[variant])}): {error}"
        return None
    return check


def _no_rule_limit(rule: Rule) -> Optional[str]:
    return None


def _deepspeed_unavailable() -> Optional[str]:
    found = (deepspeed_adam(), deepspeed_adagrad(), deepspeed_lion())
    return None if any(c is not None for c in found) else "deepspeed is not installed"


def _deepspeed_unsupported(rule: Rule) -> Optional[str]:
    if rule.deepspeed_adamw_mode is not None:
        return None if deepspeed_adam() is not None else "this deepspeed has no DeepSpeedCPUAdam"
    if rule.name == "adagrad":
        return None if deepspeed_adagrad() is not None else "this deepspeed has no DeepSpeedCPUAdagrad"
    if rule.name == "lion":
        return None if deepspeed_lion() is not None else "this deepspeed has no DeepSpeedCPULion"
    return "DeepSpeed's CPU optimizers implement Adam, AdamW, Adagrad and Lion only"


def _deepspeed_make(rule: Rule, params: Sequence[np.ndarray]) -> Runner:
    if rule.name == "adagrad":
        return DeepSpeedAdagradRunner(rule, params, deepspeed_adagrad(), torch_module())
    if rule.name == "lion":
        return DeepSpeedLionRunner(rule, params, deepspeed_lion(), torch_module())
    return DeepSpeedRunner(rule, params, deepspeed_adam(), torch_module())


#: bitsandbytes classes per rule and contender (CPU tensors; the 8-bit ones quantize the state).
BNB_CLASSES: Dict[str, Dict[str, str]] = {
    "bnb": {"adam": "Adam32bit", "adamw": "AdamW32bit"},
    "bnb-8bit": {"adam": "Adam8bit", "adamw": "AdamW8bit"},
}

#: 8-bit state (blockwise-quantized moments) moves the update by about half a percent in root mean
#: square (0.6% measured for Adam8bit on 2^16 elements after two steps, while single elements move
#: by up to a quarter of the update); a wrong formula (no bias correction, Adam for AdamW) moves it
#: by far more than this.
BNB_8BIT_TOLERANCE = 0.05


def _bnb_unavailable() -> Optional[str]:
    return None if bitsandbytes_optim() is not None else "bitsandbytes is not installed"


def _bnb_unsupported(variant: str) -> Callable[[Rule], Optional[str]]:
    def check(rule: Rule) -> Optional[str]:
        name = BNB_CLASSES[variant].get(rule.name)
        if name is None:
            return "bitsandbytes is compared for Adam and AdamW only"
        optim = bitsandbytes_optim()
        if optim is None or not hasattr(optim, name):
            return f"bitsandbytes.optim has no {name}"
        return None
    return check


def _schedulefree_unavailable() -> Optional[str]:
    if torch_module() is None:
        return "torch is not installed"
    return None if schedulefree_module() is not None else "schedulefree is not installed"


def _schedulefree_unsupported(rule: Rule) -> Optional[str]:
    if rule.schedulefree_class is None:
        return "the schedulefree package implements the schedule-free rules only"
    return None if hasattr(schedulefree_module(), rule.schedulefree_class) else (
        f"this schedulefree has no {rule.schedulefree_class}")


def _bnb_contender(variant: str, title: str, quantized: bool = False) -> Contender:
    def make(rule: Rule, params: Sequence[np.ndarray]) -> Runner:
        optimizer_class = getattr(bitsandbytes_optim(), BNB_CLASSES[variant][rule.name])
        return BitsAndBytesRunner(rule, params, optimizer_class, torch_module())
    if quantized:
        return Contender(variant, title, _bnb_unavailable, _bnb_unsupported(variant), make, BNB_8BIT_TOLERANCE,
                         rms_deviation)
    return Contender(variant, title, _bnb_unavailable, _bnb_unsupported(variant), make)


def _torch_contender(variant: str, title: str) -> Contender:
    return Contender(variant, title, _needs_torch, _torch_unsupported(variant),
                     lambda rule, params: TorchRunner(rule, params, variant, torch_module()))


#: Every implementation the benchmark knows, lrcore first; the report keeps this order.
CONTENDERS: Dict[str, Contender] = {
    c.name: c
    for c in (
        Contender("lrcore", "lrcore.functional (this package's SIMD kernels)", lambda: None, _no_rule_limit,
                  lambda rule, params: FunctionalRunner(rule, params, getattr(functional, rule.function))),
        Contender("numpy", "numpy with out= and preallocated scratch (same operations as lrcore.reference)",
                  lambda: None, FastNumpyStep.unsupported, FastNumpyRunner),
        Contender("numpy-ref", "lrcore.reference (plain in-place numpy, a temporary per operation)",
                  lambda: None, _no_rule_limit,
                  lambda rule, params: FunctionalRunner(rule, params, getattr(reference, rule.function))),
        _torch_contender("torch-loop", "torch.optim, foreach=False (per-tensor loop)"),
        _torch_contender("torch-foreach", "torch.optim, foreach=True (multi-tensor)"),
        _torch_contender("torch-fused", "torch.optim, fused=True (fused kernels)"),
        Contender("deepspeed", "DeepSpeed's CPU optimizers: DeepSpeedCPUAdam (adam, adamw), DeepSpeedCPUAdagrad, DeepSpeedCPULion",
                  _deepspeed_unavailable, _deepspeed_unsupported, _deepspeed_make),
        _bnb_contender("bnb", "bitsandbytes.optim Adam32bit / AdamW32bit (CPU)"),
        _bnb_contender("bnb-8bit", "bitsandbytes.optim Adam8bit / AdamW8bit (CPU, 8-bit state: verified loosely, "
                                   f"root mean square within {BNB_8BIT_TOLERANCE:.0%} of the update)", quantized=True),
        Contender("schedulefree", "the schedulefree package (AdamWScheduleFree, SGDScheduleFree; foreach=False, "
                                  "train mode)", _schedulefree_unavailable, _schedulefree_unsupported,
                  lambda rule, params: ScheduleFreeRunner(rule, params, schedulefree_module(), torch_module())),
    )
}
