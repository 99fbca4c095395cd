"""The torch.optim.Optimizer subclass behind lrcore.torch's classes.

A class names its rule (``optimizer_class(RULES["adam"])``); its constructor,
defaults and state come from the rule description, as for lrcore's numpy
classes. The tensors are handed to the rule's native step as numpy views of
their own storage (``tensor.numpy()`` shares memory), so the step updates
them in place: one native call per step, which checks everything first and
writes nothing unless all of it is valid.

State is kept as torch keeps it: ``self.state[p]`` is a dict of tensors with
torch's names (``step``, ``exp_avg``, ...), created on a parameter's first
step, so torch's ``state_dict`` and ``load_state_dict`` work unchanged and
the layouts agree with torch.optim's. Two details make a step cheap:

* the per-group arguments of the native call (the parameters' views, the
  state views, the int64 step counters) are built once and reused while
  ``param_groups``, the parameters' storage and ``self.state`` stay the same
  objects; anything else rebuilds them (see ``Optimizer._current_plans``);
* each group's ``step`` tensors are 0-d views into one float32 tensor of the
  group (torch's step dtype), read into the int64 counters the native step
  increments when the arguments are built, and written from them after each
  step: one numpy assignment per group instead of a tensor operation per
  parameter.

bfloat16 and float16 parameters are viewed the same way (bfloat16 through
its int16 bits, see ``_array_of``); their state is float32 or bfloat16
(``state_dtype``), their optional float32 master copies live in the state
as ``master_weight`` (the native step's state list of that name), and
stochastic rounding keys its bits by the per-tensor steps, kept then for
every rule.
"""

from __future__ import annotations

import ctypes
import re
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

import numpy as np
import torch
from torch.optim import optimizer as _torch_optimizer

from .. import _core
from .._dtypes import bfloat16 as _numpy_bfloat16
from .._rules import RuleDescription, StateArray
from ..optim._optimizer import _check_max_grad_norm, _check_norm_type, _is_schedule

__all__ = ["Optimizer", "SUPPORTED_DTYPES", "optimizer_class"]

#: The tensor dtypes a step takes: float32 and float64, and the 16-bit ones (stepped with float32
#: math, their storage seen by numpy through a 16-bit view, see _array_of).
SUPPORTED_DTYPES: Tuple[torch.dtype, ...] = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
#: The 16-bit parameter dtypes: state in float32 (or bfloat16), optionally a float32 master copy.
SIXTEEN_BIT_DTYPES: Tuple[torch.dtype, ...] = (torch.bfloat16, torch.float16)
#: state_dtype= values and the torch dtype of a 16-bit parameter's state arrays they choose.
_STATE_DTYPES: Dict[Any, torch.dtype] = {None: torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16,
                                         torch.float32: torch.float32, torch.bfloat16: torch.bfloat16}
#: The state entry of a 16-bit parameter's float32 master copy (the native step's state list name).
MASTER_WEIGHT = "master_weight"

_STEP_COUNT, _SKIPPED_STEPS = 0, 1
#: Options of torch.optim's constructors that choose an implementation; lrcore has one.
_IMPLEMENTATION_OPTIONS = ("foreach", "fused")


# torch's registries of the global step hooks (register_optimizer_step_pre_hook / _post_hook).
_GLOBAL_PRE_HOOKS = _torch_optimizer._global_optimizer_pre_hooks
_GLOBAL_POST_HOOKS = _torch_optimizer._global_optimizer_post_hooks
_profiler_enabled = torch._C._autograd._profiler_enabled


class _Stale(Exception):
    """The cached step arguments no longer describe the parameters: rebuild them."""


def _array_of(tensor: torch.Tensor, where: str) -> np.ndarray:
    """A numpy view sharing ``tensor``'s storage: what the native step reads and writes.

    This is the one place that knows which dtypes lrcore takes. torch's
    ``numpy()`` has no bfloat16 (numpy has none), so a bfloat16 tensor is
    seen as int16 bits and that array reinterpreted as ml_dtypes' bfloat16:
    both are views, the memory is the tensor's. float16 is numpy's own.
    """
    if tensor.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"lrcore.torch: {where} is {tensor.dtype}; lrcore's kernels take "
                        f"{', '.join(str(d) for d in SUPPORTED_DTYPES)} tensors")
    if tensor.layout is not torch.strided:
        raise TypeError(f"lrcore.torch: {where} is a sparse tensor ({tensor.layout}); "
                        "lrcore takes dense tensors only")
    if tensor.device.type != "cpu":
        raise ValueError(f"lrcore.torch: {where} is on {tensor.device}; lrcore updates CPU tensors only")
    if not tensor.is_contiguous():
        raise ValueError(f"lrcore.torch: {where} is not contiguous (strides {tensor.stride()}); "
                         "lrcore updates contiguous tensors in place")
    if tensor.dtype is torch.bfloat16:
        return tensor.detach().view(torch.int16).numpy().view(_numpy_bfloat16())
    return tensor.detach().numpy()


def _unowned_view(array: np.ndarray) -> np.ndarray:
    """A view of ``array``'s memory that holds no reference to the array (nor to its tensor).
    ctypes has no 16-bit float type: those are seen as int16 and reinterpreted."""
    bits = array.view(np.int16) if array.dtype.itemsize == 2 else array
    pointer = ctypes.cast(bits.ctypes.data, ctypes.POINTER(np.ctypeslib.as_ctypes_type(bits.dtype)))
    view = np.ctypeslib.as_array(pointer, shape=array.shape)
    return view.view(array.dtype) if bits is not array else view


def _grad_array(grad: torch.Tensor, where: str) -> np.ndarray:
    """The gradient's view (the step only reads it: a non-contiguous one is copied)."""
    if grad.layout is torch.strided and grad.device.type == "cpu" and not grad.is_contiguous():
        grad = grad.contiguous()
    return _array_of(grad, where)


def _dead() -> None:
    """A weak reference to nothing."""
    return None


class _GroupPlan:
    """One group's arguments of the native step, reused between steps."""

    __slots__ = ("group", "params", "count", "names", "views", "pointers", "stepped", "states", "tensors",
                 "steps", "step_buffer", "step_view", "offset", "grad_refs", "grad_arrays",
                 "grad_pointers", "masters")

    def __init__(self, group: Dict[str, Any], offset: int) -> None:
        self.group = group
        self.params: List[torch.Tensor] = group["params"]
        self.count = len(self.params)
        self.offset = offset  # index of the group's first parameter among all of them
        self.names: Optional[List[str]] = group.get("param_names")
        self.views: List[np.ndarray] = []
        self.pointers: List[int] = []
        self.stepped: List[bool] = []
        # state name -> per-parameter numpy views (None: not created yet) and their tensors
        self.states: Dict[str, List[Optional[np.ndarray]]] = {}
        self.tensors: Dict[str, List[Optional[torch.Tensor]]] = {}
        self.steps: Optional[np.ndarray] = None
        self.step_buffer: Optional[torch.Tensor] = None
        self.step_view: Optional[np.ndarray] = None
        # The last gradient seen per parameter (weakly) and, once seen twice, a view of its memory.
        self.grad_refs: List[Callable[[], Optional[torch.Tensor]]] = [_dead] * self.count
        self.grad_arrays: List[Optional[np.ndarray]] = [None] * self.count
        self.grad_pointers: List[int] = [0] * self.count
        # The float32 master copies' views (None: a parameter without one), when the optimizer keeps them;
        # also states[MASTER_WEIGHT], where the native step finds them.
        self.masters: Optional[List[Optional[np.ndarray]]] = None


class Optimizer(torch.optim.Optimizer):
    """Base class of lrcore.torch's optimizers: a torch.optim.Optimizer whose step is lrcore's.

    A subclass is made per rule by :func:`optimizer_class`; its constructor
    has torch's signature plus lrcore's keyword-only options:

    Args:
        skip_nonfinite: check every gradient first; when any element is NaN
            or Inf, skip the whole step (nothing is written; ``skipped_steps``
            counts it).
        max_grad_norm: global-norm clipping of all gradients, fused into the
            step (number >= 0 or None, the default, for off); the gradient
            tensors are not written. ``last_grad_norm`` is the norm.
        norm_type: p of that norm (number > 0 or inf; default 2).
        foreach, fused: accepted for compatibility with torch.optim and
            ignored (lrcore has one implementation, a fused native step).
        state_dtype: the dtype of a 16-bit (bfloat16 or float16) parameter's
            state: None or "float32" (the default) or "bfloat16" (needs a
            16-bit parameter); float32 and float64 parameters keep theirs.
        master_weights: keep a float32 master copy of each 16-bit parameter
            (``state[p]["master_weight"]``, made at construction from the
            parameter); the step updates the master in float32 and writes
            it, rounded to the nearest, into the parameter.
        stochastic_rounding: round every 16-bit store (parameters, bfloat16
            state) stochastically instead of to the nearest, keyed by
            ``seed``, each tensor's index and its step: the same bits on any
            thread count and instruction set. Needs a 16-bit parameter;
            excludes master_weights.
        seed: the int that keys stochastic rounding.

    Attributes:
        step_count: steps applied; skipped_steps: steps skipped for a
            non-finite gradient; last_grad_norm: the norm the last step
            computed (None without clipping).
    """

    #: The update rule; set by optimizer_class.
    rule: RuleDescription
    #: (group) -> the native hyperparameters of a group, written from the rule.
    _resolve_group: Callable[[Dict[str, Any]], Dict[str, Any]]
    #: The state arrays a parameter's first step starts (the rest the kernel initializes or a
    #: configuration creates on demand).
    _initial_states: Tuple[StateArray, ...]

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any], *, skip_nonfinite: bool = False,
                 max_grad_norm: Any = None, norm_type: Any = 2.0, state_dtype: Any = None,
                 master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0) -> None:
        if not getattr(self.rule, "dense_gradients", True):
            # torch has no tensor for lrcore's row-sparse gradients (lrcore.SparseRows), and p.grad of an
            # nn.Embedding(sparse=True) is a torch.sparse_coo tensor, which the kernels do not take.
            raise TypeError(f"lrcore.torch.{type(self).__name__} is not supported: the rule takes row-sparse "
                            f"gradients only (lrcore.SparseRows), which lrcore.torch does not pass; use "
                            f"lrcore.{self.rule.class_name} with numpy arrays")
        if not isinstance(skip_nonfinite, (bool, np.bool_)):
            raise TypeError(f"skip_nonfinite must be a bool, got {type(skip_nonfinite).__name__}")
        if _is_schedule(max_grad_norm):
            raise TypeError("max_grad_norm must be a number >= 0 or None in lrcore.torch "
                            "(change it between steps to schedule it)")
        self.skip_nonfinite = bool(skip_nonfinite)
        self.max_grad_norm: Any = _check_max_grad_norm(max_grad_norm)
        self.norm_type: float = _check_norm_type(norm_type)
        self._set_precision(state_dtype, master_weights, stochastic_rounding, seed)
        # [step_count, skipped_steps] and [last norm, marker], written by the native step.
        self._counters = np.zeros(2, dtype=np.int64)
        self._grad_norm = np.array([0.0, -1.0])
        self._plans: Optional[List[_GroupPlan]] = None
        self._plan_key: Tuple[Any, ...] = ()
        self._created: Dict[int, torch.Tensor] = {}
        self._loading: Optional[Dict[torch.Tensor, Dict[str, Any]]] = None
        # Per 16-bit parameter with a master copy: its torch version counter when the master last matched it.
        self._master_versions: Dict[torch.Tensor, int] = {}
        super().__init__(params, defaults)
        self._check_precision()

    # ------------------------------------------------------------ precision
    def _set_precision(self, state_dtype: Any, master_weights: Any, stochastic_rounding: Any, seed: Any) -> None:
        """The mixed-precision options, checked before any group is added."""
        try:
            known = state_dtype in _STATE_DTYPES
        except TypeError:  # unhashable
            known = False
        if not known:
            raise ValueError(f"state_dtype must be None, 'float32' or 'bfloat16', got {state_dtype!r}")
        for name, value in (("master_weights", master_weights), ("stochastic_rounding", stochastic_rounding)):
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if master_weights and stochastic_rounding:
            raise ValueError("master_weights and stochastic_rounding exclude each other: a master copy is "
                             "written into its parameter rounded to the nearest")
        self.state_dtype: Optional[str] = None if state_dtype is None else str(_STATE_DTYPES[state_dtype]).split(".")[-1]
        self.master_weights = bool(master_weights)
        self.stochastic_rounding = bool(stochastic_rounding)
        self.seed = int(seed)
        # The dtype of a 16-bit parameter's state; the per-tensor step counters, which stochastic rounding
        # keys by, are kept for every rule then (as "step", torch's name), also those that count none.
        self._sixteen_bit_state = _STATE_DTYPES[state_dtype]
        self._steps_kept = _keeps_step(self.rule) or self.stochastic_rounding
        self._rounding_seed: Optional[int] = self.seed if self.stochastic_rounding else None

    def _check_precision(self) -> None:
        """After the groups are added: the options that need a 16-bit parameter have one."""
        if any(p.dtype in SIXTEEN_BIT_DTYPES for group in self.param_groups for p in group["params"]):
            return
        for name, on in (("master_weights", self.master_weights), ("stochastic_rounding", self.stochastic_rounding),
                         ("state_dtype='bfloat16'", self._sixteen_bit_state is torch.bfloat16)):
            if on:
                dtypes = sorted({str(p.dtype) for group in self.param_groups for p in group["params"]})
                raise ValueError(f"{name} needs a bfloat16 or float16 parameter; the parameters are "
                                 f"{', '.join(dtypes)}")

    def _state_dtype_of(self, param_dtype: torch.dtype) -> torch.dtype:
        """The dtype of the state arrays of a parameter of this dtype."""
        return self._sixteen_bit_state if param_dtype in SIXTEEN_BIT_DTYPES else param_dtype

    def _has_master(self, param: torch.Tensor) -> bool:
        return self.master_weights and param.dtype in SIXTEEN_BIT_DTYPES

    def _make_masters(self, params: Iterable[torch.Tensor]) -> None:
        """A float32 master copy (exact: every 16-bit value is a float32 one) of each 16-bit
        parameter that has none."""
        for p in params:
            if self._has_master(p) and MASTER_WEIGHT not in self.state.get(p, {}):
                self.state[p][MASTER_WEIGHT] = p.detach().to(dtype=torch.float32, copy=True)
                self._master_versions[p] = p._version

    def _refresh_masters(self, plans: List[_GroupPlan]) -> List[Tuple[_GroupPlan, int, Optional[np.ndarray],
                                                                       torch.Tensor]]:
        """The master copies of 16-bit parameters written by something else since (``model.load_state_dict``,
        ``torch.nn.init``, an in-place torch operation: each advances the tensor's version counter; the
        native step does not) are made again from the parameters, unless a parameter still equals its master
        rounded: the value written wins, as it would without a master. The new copies go into the step's
        arguments only; they replace the state's when the step has been applied."""
        versions = self._master_versions
        fresh = []
        for plan in plans:
            masters = plan.masters
            if masters is None:
                continue
            for k, p in enumerate(plan.params):
                if masters[k] is None or versions.get(p) == p._version:
                    continue
                master = self.state[p][MASTER_WEIGHT]
                if torch.equal(master.to(p.dtype), p.detach()):
                    versions[p] = p._version
                    continue
                copy = p.detach().to(dtype=torch.float32, copy=True)
                fresh.append((plan, k, masters[k], copy))
                masters[k] = _array_of(copy, "a master copy")
        return fresh

    # ------------------------------------------------------------------ groups
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Adds a group as torch does, then checks its tensors and hyperparameters; a group that
        fails a check is not added."""
        index = len(self.param_groups)
        gives_mode = isinstance(param_group, dict) and "train_mode" in param_group
        super().add_param_group(param_group)
        try:
            group = self.param_groups[index]
            if self.rule.has_modes and index > 0 and not gives_mode:
                # A group added later joins in the optimizer's mode (its parameters have no z yet,
                # so nothing moves), as lrcore's numpy classes do; the package would start it in eval.
                group["train_mode"] = self.param_groups[0]["train_mode"]
            params = group["params"]
            if not params:
                raise ValueError(f"param_groups[{index}] has no parameters")
            views = [_array_of(p, self._where(index, k, group)) for k, p in enumerate(params)]
            existing = [_array_of(p, "a parameter") for g in self.param_groups[:index] for p in g["params"]]
            try:
                _core.check_parameters(existing + views)
            except (TypeError, ValueError) as error:
                raise self._named_error(error) from None
            self._check_group(group, f"param_groups[{index}]: ")
        except BaseException:
            del self.param_groups[index]
            raise
        self._make_masters(params)
        self._plans = None

    def _check_group(self, group: Dict[str, Any], prefix: str) -> None:
        for name, value in self.rule.fixed.items():
            if group.get(name, value) != value:
                raise ValueError(f"{prefix}{name} is {value!r} for {type(self).__name__}, got {group[name]!r}")
        for name in _IMPLEMENTATION_OPTIONS:
            group.pop(name, None)
        for name in ("capturable", "differentiable"):
            if group.get(name, False):
                raise ValueError(f"{prefix}{name}=True is not supported by lrcore.torch")
        self.rule.native.check_hyperparameters(self._resolve_group(group), prefix)
        if self.rule.group_scalars:
            self.rule.native.check_group_state(self._group_state_of(group, prefix), prefix)
        for h in self.rule.hyperparameters:
            if h.kind == "option":
                value = group[h.name]
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < float("inf"):
                    raise ValueError(f"{prefix}{h.name} must be a finite number >= 0, got {value!r}")

    def _group_state_of(self, group: Dict[str, Any], prefix: str) -> np.ndarray:
        """The group's per-group state (kept in the group dict, as the schedulefree package keeps
        ``k``, ``lr_max``, ``weight_sum``, ``train_mode``) as the float64 array the native step takes."""
        values = []
        for scalar in self.rule.group_scalars:
            if scalar.name not in group:
                raise ValueError(f"{prefix}has no {scalar.name!r} (the rule's per-group state)")
            value = group[scalar.name]
            if isinstance(value, torch.Tensor) and value.numel() == 1:
                value = value.item()
            if not isinstance(value, (bool, int, float, np.integer, np.floating, np.bool_)):
                raise ValueError(f"{prefix}{scalar.name} must be a {scalar.kind}, got {value!r}")
            values.append(float(value))
        return np.array(values, dtype=np.float64)

    def _store_group_state(self, group: Dict[str, Any], array: np.ndarray) -> None:
        for scalar, value in zip(self.rule.group_scalars, array.tolist()):
            group[scalar.name] = scalar.export(value)

    def _where(self, g: int, k: int, group: Optional[Dict[str, Any]] = None) -> str:
        group = self.param_groups[g] if group is None else group
        names = group.get("param_names")
        if names is not None and k < len(names):
            return f"parameter {names[k]!r}"
        return f"param_groups[{g}]['params'][{k}]"

    def _flat_where(self, index: int) -> str:
        for g, group in enumerate(self.param_groups):
            if index < len(group["params"]):
                return self._where(g, index)
            index -= len(group["params"])
        return f"parameter {index}"

    def _named_error(self, error: Exception) -> Exception:
        """A native error names tensors by their index among all parameters (grads[3]); this adds
        which parameter that is."""
        message = str(error)
        lists = ["params", "grads", "master_weights", *(s.list_name for s in self.rule.states),
                 *(s.list_name for s in self.rule.scalars)]
        found = dict.fromkeys(int(i) for i in re.findall(rf"\b(?:{'|'.join(lists)})\[(\d+)\]", message))
        if not found:
            return error
        where = "; ".join(f"[{i}] is {self._flat_where(i)}" for i in found)
        return type(error)(f"{message} ({where})")

    # -------------------------------------------------------------- counters
    @property
    def step_count(self) -> int:
        return int(self._counters[_STEP_COUNT])

    @property
    def skipped_steps(self) -> int:
        return int(self._counters[_SKIPPED_STEPS])

    @property
    def last_grad_norm(self) -> Optional[float]:
        norm, marker = self._grad_norm
        return float(norm) if marker == float(self._counters[0]) + float(self._counters[1]) else None

    # ------------------------------------------------------------------- step
    def _plain_step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._apply()
        return loss

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Performs one step: ``closure`` (if given) is called with grad enabled and its loss
        returned; then every parameter with a gradient is updated in place, in one native call.

        The step is a transaction: the hyperparameters of every group and every
        tensor are checked first, and on a bad one it raises (naming the
        group or the parameter) with nothing modified: no tensor, no state,
        no counter. Parameters whose ``grad`` is None are skipped, as torch
        does. Returns the closure's loss (or None).

        Step hooks (``register_step_pre_hook``, ``register_step_post_hook`` and
        the global ones) and the profiler's record run through torch's own
        wrapper, entered only when one is registered or the profiler is on: it
        costs more than a small step.
        """
        if (self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or _GLOBAL_PRE_HOOKS
                or _GLOBAL_POST_HOOKS or _profiler_enabled()):
            return _hooked_step(self, closure)
        return self._plain_step(closure)

    # torch's Optimizer wraps a subclass's step in its hook-and-profiler wrapper unless it is marked.
    step.hooked = True  # type: ignore[attr-defined]

    def _current_plans(self) -> List[_GroupPlan]:
        """The cached arguments, rebuilt when the groups, their parameter lists or the state changed."""
        groups = self.param_groups
        plans = self._plans
        if plans is not None and self._plan_key[0] is groups and self._plan_key[1] is self.state and len(plans) == len(
                groups):
            for plan, group in zip(plans, groups):
                if plan.group is not group or group["params"] is not plan.params or len(plan.params) != plan.count:
                    break
            else:
                return plans
        plans = self._build_plans()
        self._plans, self._plan_key = plans, (groups, self.state)
        return plans

    def _build_plans(self) -> List[_GroupPlan]:
        rule = self.rule
        plans = []
        offset = 0
        for g, group in enumerate(self.param_groups):
            plan = _GroupPlan(group, offset)
            offset += plan.count
            for name in [s.name for s in rule.states] + [s.name for s in rule.scalars]:
                plan.states[name] = [None] * plan.count
                plan.tensors[name] = [None] * plan.count
            if self.master_weights:
                plan.masters = [None] * plan.count
                plan.states[MASTER_WEIGHT] = plan.masters
            if self._steps_kept:
                plan.steps = np.zeros(plan.count, dtype=np.int64)
                plan.step_buffer = torch.zeros(plan.count, dtype=torch.float32)
                plan.step_view = plan.step_buffer.numpy()
            for k, p in enumerate(plan.params):
                where = self._where(g, k, group)
                plan.views.append(_array_of(p, where))
                plan.pointers.append(p.data_ptr())
                entry = self.state.get(p)
                if plan.masters is not None and self._has_master(p):
                    master = (entry or {}).get(MASTER_WEIGHT)
                    self._check_master(master, p, where)
                    assert master is not None  # (checked: a float32 tensor)
                    plan.masters[k] = _array_of(master, f"the master weight of {where}")
                stepped = _stepped(entry)
                plan.stepped.append(stepped)
                if not stepped:
                    continue
                assert entry is not None
                self._check_entry(entry, p, where)
                for s in rule.states:
                    tensor = entry.get(s.name)
                    if tensor is not None:
                        plan.tensors[s.name][k] = tensor
                        plan.states[s.name][k] = _array_of(tensor, f"state {s.name!r} of {where}")
                for scalar in rule.scalars:
                    # a 0-d float64 tensor (made so when created or loaded); the step writes its value
                    tensor = entry[scalar.name]
                    plan.tensors[scalar.name][k] = tensor
                    plan.states[scalar.name][k] = tensor.numpy()
                if plan.steps is not None:
                    assert plan.steps is not None and plan.step_buffer is not None
                    plan.steps[k] = _step_value(entry.get("step", 0), where)
                    plan.step_buffer[k] = float(plan.steps[k])
                    # torch's layout: a 0-d float32 tensor per parameter, here a view into the group's buffer.
                    entry["step"] = plan.step_buffer[k]
            plans.append(plan)
        return plans

    def _check_entry(self, entry: Dict[str, Any], param: torch.Tensor, where: str) -> None:
        """A parameter's state (saved by lrcore.torch or by torch.optim): torch's names, tensors shaped like it."""
        if not isinstance(entry, dict):
            raise ValueError(f"the state of {where} must be a dict, got {type(entry).__name__}")
        known = {s.name: s for s in self.rule.states}
        scalars = {s.name for s in self.rule.scalars}
        shape = tuple(param.shape)
        state_dtype = self._state_dtype_of(param.dtype)
        for name, value in entry.items():
            if name == "step" and self._steps_kept:
                _step_value(value, where)
                continue
            if name == MASTER_WEIGHT:
                if not self._has_master(param):
                    raise ValueError(f"the state of {where} has a {MASTER_WEIGHT!r}, which only a bfloat16 or "
                                     f"float16 parameter of an optimizer made with master_weights=True keeps "
                                     f"(the parameter is {param.dtype}; master_weights={self.master_weights})")
                self._check_master(value, param, where)
                continue
            if name in scalars:
                _scalar_value(value, f"state {name!r} of {where}")
                continue
            if name not in known:
                raise ValueError(f"the state of {where} has an entry {name!r} that {type(self).__name__} "
                                 f"does not know (its state: {sorted(known) + sorted(scalars)})")
            if value is None:
                continue
            description = known[name]
            if not description.exists_for(shape):
                raise ValueError(f"state {name!r} of {where} must be absent: it is kept only for "
                                 f"{description.applies_to}, and the parameter has shape {shape}")
            expected = description.shape_for(shape)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != expected or value.dtype != state_dtype:
                got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"state {name!r} of {where} must be a {state_dtype} tensor of shape "
                                 f"{expected}, got {got}")
        for s in self.rule.states:
            if s.always and not s.kernel_initialized and s.exists_for(shape) and entry.get(s.name) is None:
                raise ValueError(f"the state of {where} has no {s.name!r}")
        for scalar in self.rule.scalars:
            if entry.get(scalar.name) is None:
                raise ValueError(f"the state of {where} has no {scalar.name!r}")

    def _check_master(self, master: Any, param: torch.Tensor, where: str) -> None:
        if not isinstance(master, torch.Tensor) or master.dtype != torch.float32 or master.shape != param.shape:
            got = f"{master.dtype} {tuple(master.shape)}" if isinstance(master, torch.Tensor) else repr(master)
            raise ValueError(f"the {MASTER_WEIGHT!r} of {where} must be a float32 tensor of shape "
                             f"{tuple(param.shape)}, got {got}")

    def _create_state(self, like: np.ndarray, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
        """The native step's allocator of state a configuration needs (zeros; the kernel fills
        the ones it initializes), shaped like ``like`` or ``shape``: a new tensor, remembered until
        the step commits it."""
        dtype = {4: torch.float32, 8: torch.float64}.get(like.dtype.itemsize, self._sixteen_bit_state)
        tensor = torch.zeros(like.shape if shape is None else tuple(shape), dtype=dtype)
        array = _array_of(tensor, "a new state")
        self._created[id(array)] = tensor
        return array

    def _apply(self) -> bool:
        """The native step over every group, and its bookkeeping."""
        try:
            plans = self._current_plans()
            return self._apply_plans(plans)
        except _Stale:
            self._plans = None
            return self._apply_plans(self._current_plans())

    def _apply_plans(self, plans: List[_GroupPlan]) -> bool:
        # The per-step path: its cost is most of a small step's, so it does only what changes
        # between steps (the gradients, the resolved hyperparameters) and reuses the rest.
        resolve = self._resolve_group
        arguments: List[Tuple[Any, ...]] = []
        new: List[Tuple[_GroupPlan, int]] = []
        alive: List[torch.Tensor] = []  # the gradients stay alive until the step is done
        # Per group, the per-group state array the native step checks and advances (schedule-free).
        group_states: Optional[List[np.ndarray]] = [] if self.rule.group_scalars else None
        for index, plan in enumerate(plans):
            grads: List[Optional[np.ndarray]] = []
            append = grads.append
            k = 0
            grad_refs, grad_arrays, grad_pointers = plan.grad_refs, plan.grad_arrays, plan.grad_pointers
            for p, pointer in zip(plan.params, plan.pointers):
                grad = p.grad
                if grad is None:
                    append(None)
                else:
                    if p.data_ptr() != pointer:
                        raise _Stale  # the parameter's storage was replaced (p.data = ...)
                    alive.append(grad)
                    array = grad_arrays[k]
                    if grad_refs[k]() is not grad or array is None or grad.data_ptr() != grad_pointers[k] \
                            or not grad.is_contiguous():
                        array = self._grad_view(plan, k, grad)
                    append(array)
                    if not plan.stepped[k]:
                        new.append((plan, k))
                k += 1
            if group_states is None:
                arguments.append((resolve(plan.group), plan.views, grads, plan.states, plan.steps))
            else:
                group_state = self._group_state_of(plan.group, f"param_groups[{index}]: ")
                group_states.append(group_state)
                arguments.append((resolve(plan.group), plan.views, grads, plan.states, plan.steps, group_state))
        if new:
            self._start_state(new)
        fresh = self._refresh_masters(plans) if self.master_weights else None
        max_grad_norm = self.max_grad_norm
        rounding_seed = self._rounding_seed
        try:
            if max_grad_norm is None and rounding_seed is None:
                applied = self.rule.native.step(arguments, self._counters, self.skip_nonfinite, self._create_state,
                                                True)
            else:
                applied = self.rule.native.step(arguments, self._counters, self.skip_nonfinite, self._create_state,
                                                True, max_grad_norm, self.norm_type, self._grad_norm, rounding_seed)
        except (TypeError, ValueError) as error:
            self._forget(new)
            self._unrefresh(fresh)
            raise self._named_error(error) from None
        except BaseException:
            self._forget(new)
            self._unrefresh(fresh)
            raise
        if group_states is not None:
            for plan, group_state in zip(plans, group_states):
                self._store_group_state(plan.group, group_state)
        if not applied:
            self._forget(new)
            self._unrefresh(fresh)  # a skipped step changes nothing (the next one looks again)
            return False
        if fresh:
            for plan, k, _, copy in fresh:
                p = plan.params[k]
                self.state[p][MASTER_WEIGHT] = copy
                self._master_versions[p] = p._version
        for plan in plans:
            if plan.step_view is not None:
                plan.step_view[:] = plan.steps
        if self._created:
            self._adopt_created(plans)
        if new:
            self._commit_state(new)
        return True

    def _grad_view(self, plan: _GroupPlan, k: int, grad: torch.Tensor) -> np.ndarray:
        """The view of a gradient not seen before: ``grad.numpy()``. A gradient seen twice in a
        row (``zero_grad(set_to_none=False)`` keeps one tensor per parameter) gets a view of its
        memory that does not hold the tensor, cached, and reused while ``p.grad`` is that
        tensor with that storage: no reference to a gradient outlives a step, so
        ``zero_grad()`` still frees them."""
        if plan.grad_refs[k]() is grad and grad.is_contiguous():
            view = _unowned_view(_array_of(grad, f"the gradient of {self._plan_where(plan, k)}"))
            plan.grad_arrays[k] = view
            plan.grad_pointers[k] = grad.data_ptr()
            return view
        plan.grad_refs[k] = weakref.ref(grad)
        plan.grad_arrays[k] = None
        try:
            array = grad.numpy()
            if array.flags.c_contiguous:
                return array
        except (RuntimeError, TypeError):  # e.g. a gradient that requires grad, or a sparse one
            pass
        return _grad_array(grad, f"the gradient of {self._plan_where(plan, k)}")

    def _start_state(self, new: List[Tuple[_GroupPlan, int]]) -> None:
        """A parameter's first step: its state starts as torch's does (zeros, or an option's value)."""
        for plan, k in new:
            like = plan.params[k]
            shape = tuple(like.shape)
            for state in self._initial_states:
                name = state.name
                if plan.tensors[name][k] is None and state.exists_for(shape):
                    fill = 0.0 if state.initial == "zero" else float(plan.group[state.initial])
                    tensor = torch.full(state.shape_for(shape), fill, dtype=self._state_dtype_of(like.dtype))
                    plan.tensors[name][k] = tensor
                    plan.states[name][k] = _array_of(tensor, "a new state")
            for scalar in self.rule.scalars:
                if plan.tensors[scalar.name][k] is None:
                    tensor = torch.tensor(scalar.initial, dtype=torch.float64)
                    plan.tensors[scalar.name][k] = tensor
                    plan.states[scalar.name][k] = tensor.numpy()

    def _commit_state(self, new: List[Tuple[_GroupPlan, int]]) -> None:
        """After a parameter's first step has been applied: its state enters self.state."""
        state = self.state
        for plan, k in new:
            entry: Dict[str, Any] = {}
            if plan.step_buffer is not None:
                entry["step"] = plan.step_buffer[k]
            for name, tensors in plan.tensors.items():
                tensor = tensors[k]
                if tensor is not None:
                    entry[name] = tensor
            if entry:  # as torch.optim's SGD without momentum, a rule may keep nothing
                kept = state.get(plan.params[k])
                if kept:  # the master copy, made at construction: it stays first, as it was
                    kept.update(entry)
                else:
                    state[plan.params[k]] = entry
            plan.stepped[k] = True

    @staticmethod
    def _unrefresh(fresh: Optional[List[Tuple[_GroupPlan, int, Optional[np.ndarray], torch.Tensor]]]) -> None:
        """A step that failed keeps the master copies it had."""
        for plan, k, previous, _ in fresh or ():
            assert plan.masters is not None
            plan.masters[k] = previous

    def _plan_where(self, plan: _GroupPlan, k: int) -> str:
        g = next((i for i, group in enumerate(self.param_groups) if group is plan.group), 0)
        return self._where(g, k, plan.group)

    def _forget(self, new: List[Tuple[_GroupPlan, int]]) -> None:
        """Drops the state made for parameters whose first step did not happen."""
        for plan, k in new:
            for name in plan.tensors:  # not the master copies, which are not the step's to make
                plan.states[name][k] = None
                plan.tensors[name][k] = None

    def _adopt_created(self, plans: List[_GroupPlan]) -> None:
        """State the native step created (a kernel-initialized buffer, or one a configuration change
        made necessary): the tensors behind the new arrays go into self.state too."""
        created = self._created
        for plan in plans:
            for name, tensors in plan.tensors.items():
                arrays = plan.states[name]
                for k, array in enumerate(arrays):
                    if array is not None and tensors[k] is None:
                        tensor = created[id(array)]
                        tensors[k] = tensor
                        if plan.stepped[k]:
                            self.state.setdefault(plan.params[k], {})[name] = tensor
        created.clear()

    # ------------------------------------------------------------ state_dict
    def state_dict(self) -> Dict[str, Any]:
        """torch's state_dict (``state``: per parameter index torch's entries, ``step`` a 0-d float32
        tensor; ``param_groups``), plus ``"lrcore"``: the step counters and the last clipping norm.
        It holds the live state tensors, as torch's does: copy it (or ``torch.save`` it) to keep it."""
        state_dict = super().state_dict()
        state_dict["lrcore"] = {"step_count": self.step_count, "skipped_steps": self.skipped_steps,
                                "last_grad_norm": self.last_grad_norm}
        return state_dict

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Loads a state_dict of lrcore.torch's or of torch.optim's optimizer of the same rule.

        Everything is checked (torch's checks, then each group's hyperparameters
        and each parameter's state) before the optimizer changes.
        """
        extra = state_dict.get("lrcore") if isinstance(state_dict, dict) else None
        counters, grad_norm = self._counters.copy(), self._grad_norm.copy()
        if extra is not None:
            if not isinstance(extra, dict):
                raise ValueError("state_dict['lrcore'] must be a dict")
            counters = np.array([_count(extra.get("step_count", 0), "step_count"),
                                 _count(extra.get("skipped_steps", 0), "skipped_steps")], dtype=np.int64)
            norm = extra.get("last_grad_norm")
            if norm is not None and (isinstance(norm, bool) or not isinstance(norm, (int, float))):
                raise ValueError(f"state_dict['lrcore']['last_grad_norm'] must be a number or None, got {norm!r}")
            grad_norm = (np.array([0.0, -1.0]) if norm is None
                         else np.array([float(norm), float(counters[0]) + float(counters[1])]))
        self._loading = self._saved_sixteen_bit(state_dict)
        try:
            super().load_state_dict(state_dict)
        finally:
            self._loading = None
        self._counters[:] = counters
        self._grad_norm[:] = grad_norm
        if self.rule.scalars:
            self._restore_scalars(state_dict)

    def _saved_sixteen_bit(self, state_dict: Any) -> Optional[Dict[torch.Tensor, Dict[str, Any]]]:
        """The saved entries of the 16-bit parameters, by parameter, as given: torch's load_state_dict casts
        every floating state tensor to its parameter's dtype, which would round a float32 state or master
        copy to 16 bits; __setstate__ takes them from here instead."""
        try:
            saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
            saved_state = state_dict["state"]
        except (TypeError, KeyError):
            return None  # torch's load_state_dict says what is wrong
        params = [p for group in self.param_groups for p in group["params"]]
        if len(saved_ids) != len(params) or not isinstance(saved_state, dict):
            return None
        return {p: saved_state[i] for i, p in zip(saved_ids, params)
                if p.dtype in SIXTEEN_BIT_DTYPES and isinstance(saved_state.get(i), dict)}

    def _take_saved_sixteen_bit(self) -> None:
        """In a load: the 16-bit parameters' state tensors as saved, in the optimizer's state dtype
        (a bfloat16 or float16 state saved by torch.optim widens exactly to float32), and their masters;
        a 16-bit parameter without a saved master gets one made from its current value."""
        states = {s.name for s in self.rule.states}
        for param, saved in (self._loading or {}).items():
            entry = self.state.get(param)
            if not isinstance(entry, dict):
                continue
            for name, value in saved.items():
                if not isinstance(value, torch.Tensor) or not value.dtype.is_floating_point:
                    continue  # left as torch loaded it, for the checks to judge
                if name in states:
                    entry[name] = value.detach().to(device="cpu", dtype=self._sixteen_bit_state, copy=True)
                elif name == MASTER_WEIGHT and value.dtype == torch.float32:
                    entry[name] = value.detach().to(device="cpu", copy=True)
                    self._master_versions[param] = param._version
        self._make_masters(p for group in self.param_groups for p in group["params"])

    def _restore_scalars(self, state_dict: Dict[str, Any]) -> None:
        """torch's load_state_dict casts every floating state tensor to its parameter's dtype; the
        per-tensor scalars (NAdam's mu_product, ASGD's eta and mu) are float64 here, so they are
        taken again from the state_dict as given (torch.optim's own float32 ones widen exactly)."""
        saved_ids = [i for group in state_dict["param_groups"] for i in group["params"]]
        params = [p for group in self.param_groups for p in group["params"]]
        by_id = dict(zip(saved_ids, params))
        for saved_id, saved in state_dict["state"].items():
            entry = self.state.get(by_id.get(saved_id))  # type: ignore[arg-type]
            if not isinstance(entry, dict) or not isinstance(saved, dict):
                continue
            for scalar in self.rule.scalars:
                if saved.get(scalar.name) is not None:
                    entry[scalar.name] = _scalar_tensor(saved[scalar.name])
        self._plans = None

    def __setstate__(self, state: Dict[str, Any]) -> None:
        # torch's load_state_dict ends here with the new state and groups: check them, and keep
        # the old ones if they fail (nothing is modified then).
        previous: Dict[str, Any] = {name: self.__dict__[name] for name in ("state", "param_groups")
                                    if name in self.__dict__}
        super().__setstate__(state)
        if "_steps_kept" not in self.__dict__:  # unpickled from torch's __getstate__ only
            self._set_precision(None, False, False, 0)
        # (unpickled or deep-copied: no versions known, so each master is compared with its parameter once)
        versions = self.__dict__.setdefault("_master_versions", {})
        previous["_master_versions"] = dict(versions)
        try:
            if self.__dict__.get("_loading") is not None:
                self._take_saved_sixteen_bit()
            for g, group in enumerate(self.param_groups):
                for name, default in self.defaults.items():
                    group.setdefault(name, default)
                self._check_group(group, f"state_dict param_groups[{g}]: ")
                for k, p in enumerate(group["params"]):
                    entry = self.state.get(p)
                    where = self._where(g, k, group)
                    if self._has_master(p):
                        self._check_master((entry or {}).get(MASTER_WEIGHT), p, where)
                    if entry and (_stepped(entry) or not self._has_master(p)):
                        self._check_entry(entry, p, where)
        except BaseException:
            self.__dict__.update(previous)
            raise
        # A saved tensor need not be contiguous (torch.save keeps strides); the step updates
        # contiguous ones in place.
        scalars = {s.name for s in self.rule.scalars}
        for entry in self.state.values():
            if isinstance(entry, dict):
                for name, value in entry.items():
                    if name in scalars:
                        entry[name] = _scalar_tensor(value)  # 0-d float64, whatever torch.optim saved
                    elif name != "step" and isinstance(value, torch.Tensor) and not value.is_contiguous():
                        entry[name] = value.contiguous()
        if "_counters" not in self.__dict__:  # unpickled from torch's __getstate__ only
            self._counters = np.zeros(2, dtype=np.int64)
            self._grad_norm = np.array([0.0, -1.0])
        self._plans = None
        self._plan_key = ()
        self._created = {}

    def __getstate__(self) -> Dict[str, Any]:
        state = super().__getstate__()
        state.update({name: self.__dict__[name] for name in
                      ("skip_nonfinite", "max_grad_norm", "norm_type", "_counters", "_grad_norm", "state_dtype",
                       "master_weights", "stochastic_rounding", "seed", "_sixteen_bit_state", "_steps_kept",
                       "_rounding_seed")})
        return state


def _stepped(entry: Optional[Dict[str, Any]]) -> bool:
    """Whether a parameter's state says it has been stepped: it has more than the master copy that
    master_weights makes at construction."""
    return bool(entry) and any(name != MASTER_WEIGHT for name in entry)  # type: ignore[union-attr]


def _keeps_step(rule: RuleDescription) -> bool:
    """Whether a parameter's state holds ``step``, as torch.optim's does: for a rule that uses step
    numbers, and for one that keeps a state array from the first step (torch's RMSprop counts steps it
    does not use); not for SGD, whose only state is the momentum buffer momentum != 0 needs."""
    # A rule that counts steps per group (schedule-free's k) keeps no per-tensor step, as the package.
    return rule.has_step or (not rule.group_scalars and any(s.always for s in rule.states))


# ------------------------------------------------------------------- modes --
def _switch(optimizer: Optimizer, to_train: bool) -> None:
    """Moves every stepped parameter between y and the average x, in one native call that checks
    everything first; the groups' ``train_mode`` is written after it."""
    rule = optimizer.rule
    groups, group_states = [], []
    for g, group in enumerate(optimizer.param_groups):
        prefix = f"param_groups[{g}]: "
        views: List[np.ndarray] = []
        states: Dict[str, List[Any]] = {s.name: [] for s in rule.states}
        if optimizer.master_weights:
            states[MASTER_WEIGHT] = []  # the mode switch moves a master and rounds it into its parameter
        for k, p in enumerate(group["params"]):
            where = optimizer._where(g, k, group)
            views.append(_array_of(p, where))
            entry = optimizer.state.get(p) or {}
            for name, arrays in states.items():
                tensor = entry.get(name)
                arrays.append(None if tensor is None else _array_of(tensor, f"state {name!r} of {where}"))
        group_state = optimizer._group_state_of(group, prefix)
        group_states.append(group_state)
        groups.append((optimizer._resolve_group(group), views, states, group_state))
    try:
        rule.native.switch_mode(groups, to_train)
    except (TypeError, ValueError) as error:
        raise optimizer._named_error(error) from None
    for group, group_state in zip(optimizer.param_groups, group_states):
        optimizer._store_group_state(group, group_state)


@torch.no_grad()
def _train(self: Optimizer) -> None:
    """Train mode: moves every parameter that has been stepped from the average x to y, where
    gradients are taken (``p = lerp(p, z, 1 - beta)``); nothing when already in train mode.

    As the schedulefree package's optimizers, a new one is in eval mode: call ``train()`` before
    the first step, and ``eval()`` before evaluating the model or saving it. Each group keeps
    its mode in ``param_groups[g]["train_mode"]``.
    """
    _switch(self, True)


@torch.no_grad()
def _eval(self: Optimizer) -> None:
    """Eval mode: moves every parameter that has been stepped from y to the average x, the point to
    evaluate or save (``p = lerp(p, z, 1 - 1/beta)``); nothing when already in eval mode. A step in
    eval mode raises RuntimeError."""
    _switch(self, False)


#: torch's wrapper of a step: hooks, then the step inside a profiler record, then hooks.
_hooked_step = torch.optim.Optimizer.profile_hook_step(Optimizer._plain_step)


def _step_value(value: Any, where: str) -> int:
    """A saved step number (torch keeps a float32 0-d tensor; older checkpoints a number)."""
    number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not (
            0 <= number < 2**63 and float(number).is_integer()):
        raise ValueError(f"the step of {where} must be a whole number >= 0, got {value!r}")
    return int(number)


def _scalar_value(value: Any, where: str) -> float:
    """A saved per-tensor scalar: a 0-d (or one-element) floating tensor, or a number (the native step
    checks its range)."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and value.dtype.is_floating_point:
        return float(value.item())
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else repr(value)
        raise ValueError(f"{where} must be a number (a 0-d floating tensor), got {got}")
    return float(value)


def _scalar_tensor(value: Any) -> torch.Tensor:
    """A per-tensor scalar as lrcore.torch keeps it: a new 0-d float64 tensor (its numpy view is what
    the native step reads and writes)."""
    if isinstance(value, torch.Tensor):
        return value.detach().to(dtype=torch.float64, device="cpu", copy=True).reshape(())
    return torch.tensor(float(value), dtype=torch.float64)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise ValueError(f"state_dict['lrcore'][{name!r}] must be an integer in [0, 2**63 - 1], got {value!r}")
    return value


# ------------------------------------------------------- derived from a rule --
def optimizer_class(rule: RuleDescription) -> type[Optimizer]:
    """The lrcore.torch class of a rule: torch's constructor signature from the description."""
    names = [h.name for h in rule.hyperparameters]
    arguments = ", ".join(f"{name}=_defaults[{name!r}]" for name in names)
    source = (
        f"def __init__(self, params, {arguments}, *, skip_nonfinite=False, max_grad_norm=None, norm_type=2.0,\n"
        f"             state_dtype=None, master_weights=False, stochastic_rounding=False, seed=0,\n"
        f"             foreach=None, fused=None, capturable=False, differentiable=False):\n"
        f"    if capturable or differentiable:\n"
        f"        raise ValueError('capturable and differentiable are not supported by lrcore.torch')\n"
        f"    defaults = {{{', '.join(f'{n!r}: {n}' for n in names)}}}\n"
        f"    defaults.update(_fixed)\n"
        f"    defaults.update(_group_state)\n"
        f"    _Optimizer.__init__(self, params, defaults, skip_nonfinite=skip_nonfinite,\n"
        f"                        max_grad_norm=max_grad_norm, norm_type=norm_type, state_dtype=state_dtype,\n"
        f"                        master_weights=master_weights, stochastic_rounding=stochastic_rounding,\n"
        f"                        seed=seed)\n"
    )
    # The per-group state starts in every group as the schedulefree package starts it (k=0, lr_max=-1.0,
    # weight_sum=0.0, train_mode=False), in the group dict.
    group_state = {g.name: g.export(g.initial) for g in rule.group_scalars}
    namespace: Dict[str, Any] = {"_defaults": rule.defaults, "_fixed": dict(rule.fixed), "_Optimizer": Optimizer,
                                 "_group_state": group_state}
    exec(source, namespace)  # noqa: S102 - the source is built above from the rule description only
    constructor = namespace["__init__"]
    constructor.__qualname__ = f"{rule.class_name}.__init__"
    attributes = {
        "__init__": constructor,
        "__module__": "lrcore.torch",
        "__qualname__": rule.class_name,
        "__doc__": _class_docstring(rule),
        "rule": rule,
        "_resolve_group": staticmethod(_make_resolver(rule)),
        "_initial_states": tuple(s for s in rule.states
                                 if s.always and not s.kernel_initialized and s.initial != "gradient"),
    }
    if rule.has_modes:
        attributes["train"] = _train
        attributes["eval"] = _eval
    return type(rule.class_name, (Optimizer,), attributes)


def _make_resolver(rule: RuleDescription) -> Callable[[Dict[str, Any]], Dict[str, Any]]:
    """group -> the native hyperparameters, as straight-line code (it runs on every step).
    Values go to the native step as they are (a float, an int, a 0-d tensor: it reads any number)."""
    lines = ["def resolve(group):"]
    entries = [f"{name!r}: {value!r}" for name, value in rule.fixed.items()]
    for h in rule.hyperparameters:
        if h.kind == "option":
            continue
        if len(h.native) == 1:
            entries.append(f"{h.native[0]!r}: group[{h.name!r}]")
            continue
        variable = f"_{h.name}"
        lines.append(f"    {variable} = group[{h.name!r}]")
        lines.append(f"    if type({variable}) not in (tuple, list) or len({variable}) != {len(h.native)}:")
        lines.append(f"        raise TypeError(f'{h.name} must be a pair ({', '.join(h.native)}), "
                     f"got {{{variable}!r}}')")
        entries += [f"{native!r}: {variable}[{k}]" for k, native in enumerate(h.native)]
    lines.append(f"    return {{{', '.join(entries)}}}")
    namespace: Dict[str, Any] = {}
    exec("\n".join(lines) + "\n", namespace)  # noqa: S102 - the source is built here from the rule only
    resolve: Callable[[Dict[str, Any]], Dict[str, Any]] = namespace["resolve"]
    return resolve


def _class_docstring(rule: RuleDescription) -> str:
    lines = [rule.summary.replace("(torch.optim.", "(a drop-in for torch.optim.", 1), "",
             f"lrcore's {rule.class_name} for torch CPU tensors; the formula is in "
             f":func:`lrcore.functional.{rule.name}`.", "", "Args:",
             "    params: ``model.parameters()``, ``model.named_parameters()`` or parameter groups."]
    for h in rule.hyperparameters:
        kind = {"number": "number", "flag": "bool", "option": "number"}[h.kind]
        lines.append(f"    {h.name}: {h.doc} ({kind}; {h.valid}; default {h.default!r}).")
    lines += ["    skip_nonfinite, max_grad_norm, norm_type, state_dtype, master_weights, stochastic_rounding, seed,",
              "        foreach, fused: see :class:`lrcore.torch.Optimizer`.",
              "", "State per parameter (torch's names): " + ", ".join(
                  (["``step``"] if _keeps_step(rule) else [])
                  + [f"``{s.name}``" + (f" (when {s.needed_when})" if s.needed_when else "")
                     + (f" ({s.applies_to})" if s.applies_to else "") for s in rule.states]
                  + [f"``{s.name}`` (a 0-d float64 tensor, from {s.initial!r})" for s in rule.scalars])
              + "; with master_weights, a 16-bit parameter's float32 ``master_weight``"
              + ("" if _keeps_step(rule) else "; with stochastic_rounding, ``step`` (the key of the random bits)")
              + "."]
    if rule.group_scalars:
        lines += ["", "State per group, in the group dict (as the schedulefree package): "
                  + ", ".join(f"``{g.name}``" for g in rule.group_scalars) + "."]
    if rule.has_modes:
        lines += ["", "A new optimizer is in eval mode: call ``train()`` before stepping and ``eval()`` before "
                  "evaluating or saving (see :meth:`train`)."]
    return "\n".join(lines) + "\n"

