"""The optimizer base class: parameter groups, hyperparameter schedules, state and checkpoints.

A subclass names its rule (``class Adam(Optimizer, rule=RULES["adam"])``); its
constructor, docstring, hyperparameters and state arrays all come from that
description (see :mod:`lrcore._rules`). A step resolves every group's
hyperparameters (schedules evaluated at the step count) and hands all groups
to the rule's native step, which checks everything once, then writes.
"""

from __future__ import annotations

import copy
import numbers
import threading
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._rules import RuleDescription, StateArray
from .._dtypes import bfloat16, is_16_bit, rounding_seed
from ..functional import state_like

__all__ = ["Optimizer", "OptimizerSnapshot"]

_STEP_COUNT, _SKIPPED_STEPS = 0, 1
#: Counters are int64; the native step refuses to go past this.
_MAX_COUNT = 2**63 - 1


def _is_schedule(value: Any) -> bool:
    return callable(value) and not isinstance(value, (numbers.Number, np.ndarray))


def _named_pairs(items: List[Any]) -> bool:
    """Whether ``items`` are (name, array) pairs, as ``named_parameters()`` yields them."""
    first = items[0]
    return isinstance(first, tuple) and len(first) == 2 and isinstance(first[0], str)


class Optimizer:
    """Base class of lrcore's optimizers (torch.optim-like).

    Args:
        params: a list of numpy arrays, a list of ``(name, array)`` pairs, or a
            list of parameter groups: dicts ``{"params": [arrays or pairs],
            **hyperparameter_overrides}``. With names, :meth:`step` takes the
            gradients as a mapping from name to gradient.
        defaults: the hyperparameters of every group that does not override them.
        skip_nonfinite: check every gradient before each step; when any
            element is NaN or Inf the whole step is skipped (see :meth:`step`).
        max_grad_norm: global-norm clipping fused into the step (a number >= 0
            or a schedule; ``None``, the default, is off). Each step computes the
            norm of all gradients of all groups and scales every gradient by
            ``max_norm / (total + 1e-6)`` when that is < 1, inside the update
            (the gradient arrays are not written): bitwise the same as
            :func:`lrcore.clip_grad_norm` followed by a step. See :meth:`step`.
        norm_type: p of the norm for ``max_grad_norm`` (a number > 0, or ``inf``
            / ``"inf"``; default 2).
        state_dtype: the state dtype of 16-bit (bfloat16, float16) parameters:
            ``"float32"`` (the default, also for None) or ``"bfloat16"``;
            float32/float64 parameters keep state of their own dtype.
        master_weights: keep a float32 master copy of each 16-bit parameter
            (state ``master_weight``, made from the parameter here): the rule
            steps the master as the float32 rule would and writes it, rounded
            to nearest, into the parameter.
        stochastic_rounding, seed: round every 16-bit store (parameters
            without a master, bfloat16 state) stochastically, with random bits
            keyed by ``seed``, each tensor's position and step, never by the
            thread count or instruction set. Excludes ``master_weights``; both
            need a 16-bit parameter. See docs/mixed_precision.md.

    Attributes:
        param_groups: list of dicts, one per group; hyperparameters may be
            edited between steps (a number or a schedule). Named groups also
            hold ``"param_names"``.
        step_count: the number of steps taken; schedules are evaluated at it.
        last_hyperparameters: per group, the native hyperparameter values the
            last step used (schedules resolved).
        skip_nonfinite: whether steps with a non-finite gradient are skipped.
        skipped_steps: how many steps were skipped for non-finite gradients.
        max_grad_norm, norm_type: the clipping settings (may be changed between steps).
        last_grad_norm: the total gradient norm the last step computed (before
            clipping), or None before any step and when that step did not clip.
        state_dtype, master_weights, stochastic_rounding, seed: the mixed-precision settings.
    """

    #: The update rule; set by ``class X(Optimizer, rule=...)``.
    rule: RuleDescription

    def __init_subclass__(cls, rule: Optional[RuleDescription] = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if rule is not None:
            cls.rule = rule
            cls.__init__ = _make_constructor(rule)  # type: ignore[method-assign]
            cls._resolve_group = staticmethod(_make_resolver(rule))
            cls.__doc__ = _class_docstring(rule)
            if rule.has_modes:
                cls.train = _train  # type: ignore[attr-defined]
                cls.eval = _eval  # type: ignore[attr-defined]
                cls.train_mode = property(_train_mode)  # type: ignore[attr-defined]

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any], skip_nonfinite: bool = False,
                 max_grad_norm: Any = None, norm_type: Any = 2.0, state_dtype: Any = None,
                 master_weights: bool = False, stochastic_rounding: bool = False, seed: int = 0) -> None:
        if not isinstance(skip_nonfinite, (bool, np.bool_)):
            raise TypeError(f"skip_nonfinite must be a bool, got {type(skip_nonfinite).__name__}")
        # Mixed precision (16-bit parameters, float32 math): see docs/mixed_precision.md.
        #: The state dtype of 16-bit parameters: "float32" (default) or "bfloat16".
        self.state_dtype: str = _check_state_dtype(state_dtype)
        if not isinstance(master_weights, (bool, np.bool_)):
            raise TypeError(f"master_weights must be a bool, got {type(master_weights).__name__}")
        #: Whether each 16-bit parameter has a float32 master copy (state "master_weight").
        self.master_weights: bool = bool(master_weights)
        rounding_seed(stochastic_rounding, seed)  # their types
        #: Whether 16-bit stores round stochastically (keyed by ``seed``, each tensor's step and position).
        self.stochastic_rounding: bool = bool(stochastic_rounding)
        self.seed: int = int(seed)
        if self.master_weights and self.stochastic_rounding:
            raise ValueError("master_weights and stochastic_rounding exclude each other: a parameter with a "
                             "float32 master copy takes it rounded to the nearest")
        self.skip_nonfinite: bool = bool(skip_nonfinite)
        #: Global-norm clipping: None (off), a number >= 0 or a schedule of the step count.
        self.max_grad_norm: Any = _check_max_grad_norm(max_grad_norm)
        #: p of the clipping norm (> 0, or inf).
        self.norm_type: float = _check_norm_type(norm_type)
        # [total norm of the last step, 1.0 when it clipped], written by the native
        # step together with the counters.
        self._grad_norm = np.array([0.0, -1.0])  # [norm, marker]: see last_grad_norm
        self._step_lock = threading.Lock()
        self.defaults: Dict[str, Any] = dict(defaults)
        self.param_groups: List[Dict[str, Any]] = []
        # Per group: state name -> list of arrays (None until created), and the per-tensor step counts.
        self._states: List[Dict[str, List[Optional[np.ndarray]]]] = []
        self._steps: List[np.ndarray] = []
        # Per group, for a rule with per-group state (schedule-free): its float64 array of
        # group scalars, which the native step checks and advances with the counters.
        self._group_states: List[np.ndarray] = []
        # [step_count, skipped_steps], incremented by the native step together with the
        # per-tensor counts, so no interruption can make them disagree.
        self._counters = np.zeros(2, dtype=np.int64)
        self._counter_view = self._counters.data  # the fastest way to read a counter
        self._last_hyperparameters: List[Dict[str, Any]] = []
        self._attempt: Optional[Tuple[int, List[Dict[str, Any]]]] = None
        self._named: Optional[bool] = None
        self._num_params = 0
        if isinstance(params, np.ndarray):
            raise TypeError("params must be a list of arrays or of parameter groups, not a single array")
        if isinstance(params, (dict, str, bytes)) or not hasattr(params, "__iter__"):
            raise TypeError(
                f"params must be a list of arrays or of parameter groups, got {type(params).__name__}"
            )
        params = list(params)
        if len(params) == 0:
            raise ValueError("params is empty: the optimizer has nothing to update")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        for group in groups:
            self.add_param_group(group)
        if not any(is_16_bit(p.dtype) for g in self.param_groups for p in g["params"]):
            for name, on in (("master_weights", self.master_weights), ("stochastic_rounding",
                                                                      self.stochastic_rounding),
                             ('state_dtype="bfloat16"', self.state_dtype == "bfloat16")):
                if on:
                    raise ValueError(f"{name} applies to 16-bit parameters (bfloat16 or float16), and every "
                                     f"parameter is float32 or float64")

    # ------------------------------------------------------------------ groups
    def add_param_group(self, group: Dict[str, Any]) -> None:
        """Adds a parameter group (a dict with "params" and optional overrides)."""
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError('a parameter group must be a dict with a "params" entry')
        index = len(self.param_groups)
        arrays = group["params"]
        if isinstance(arrays, np.ndarray):
            arrays = [arrays]
        if isinstance(arrays, (dict, str, bytes)) or not hasattr(arrays, "__iter__"):
            raise TypeError(f'param_groups[{index}]["params"] must be a list of arrays, got {type(arrays).__name__}')
        arrays = list(arrays)
        if not arrays:
            raise ValueError(f"param_groups[{index}] has no parameters")
        unknown = set(group) - set(self.defaults) - {"params", "param_names"}
        if unknown:
            raise TypeError(f"param_groups[{index}]: unknown hyperparameter(s) {sorted(unknown)}")
        names = self._split_names(arrays, group.get("param_names"), index)
        if names is not None:
            arrays = [array for _, array in arrays] if _named_pairs(arrays) else arrays
        existing = [p for g in self.param_groups for p in g["params"]]
        _core.check_parameters(existing + arrays)  # dtype, layout, writeable, no two sharing memory
        new_group = {**self.defaults, **{k: v for k, v in group.items() if k not in ("params", "param_names")}}
        new_group["params"] = arrays
        if names is not None:
            new_group["param_names"] = names
        self.rule.native.check_hyperparameters(self._resolve(new_group, self.step_count),
                                               f"param_groups[{index}]: ")
        self._check_options(new_group, index)
        self._states.append(self._new_state(new_group))
        self._steps.append(np.zeros(len(arrays), dtype=np.int64))
        if self.rule.group_scalars:
            group_state = np.array([g.initial for g in self.rule.group_scalars], dtype=np.float64)
            if self._group_states and self.rule.has_modes:
                # A group added later joins in the optimizer's mode (its parameters have no z
                # yet, so no switch is needed), where the package would start it in eval mode.
                mode = [g.name for g in self.rule.group_scalars].index("train_mode")
                group_state[mode] = self._group_states[0][mode]
            self._group_states.append(group_state)
        self.param_groups.append(new_group)
        self._num_params += len(arrays)

    def _split_names(self, arrays: List[Any], given: Any, index: int) -> Optional[List[str]]:
        """The group's parameter names (from pairs or "param_names"), or None; checks they are new and unique."""
        names: Optional[List[str]] = None
        if _named_pairs(arrays):
            if not all(isinstance(a, tuple) and len(a) == 2 and isinstance(a[0], str) for a in arrays):
                raise TypeError(f'param_groups[{index}]["params"] mixes (name, array) pairs with other entries')
            names = [name for name, _ in arrays]
        elif given is not None:
            names = list(given)
            if len(names) != len(arrays) or not all(isinstance(n, str) for n in names):
                raise TypeError(f'param_groups[{index}]["param_names"] must be one string per parameter')
        named = names is not None
        if self._named is not None and named != self._named:
            raise TypeError("either every parameter group names its parameters or none does")
        self._named = named
        if names is None:
            return None
        seen = {n for g in self.param_groups for n in g.get("param_names", ())}
        for name in names:
            if name in seen:
                raise ValueError(f"parameter name {name!r} appears twice")
            seen.add(name)
        return names

    def _check_options(self, group: Dict[str, Any], index: int) -> None:
        for h in self.rule.hyperparameters:
            if h.kind != "option":
                continue
            # Typed float for the comparison below; any other type is refused by the isinstance tests first.
            value: float = group[h.name]
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < float("inf"):
                raise ValueError(f"param_groups[{index}]: {h.name} must be a finite number >= 0, got {value!r}")

    def _new_state(self, group: Dict[str, Any]) -> Dict[str, List[Optional[np.ndarray]]]:
        """The state lists of a new group: arrays every configuration needs now, None for the others;
        with master_weights, the float32 copies of its 16-bit parameters."""
        state: Dict[str, List[Optional[np.ndarray]]] = {}
        for s in self.rule.states:
            if s.always and not s.kernel_initialized:
                fill = 0.0 if s.initial == "zero" else float(group[s.initial])
                state[s.name] = [_new_state_array(s, p, fill, self._state_dtype_of(p)) for p in group["params"]]
            else:
                state[s.name] = [None] * len(group["params"])
        for scalar in self.rule.scalars:
            state[scalar.name] = [scalar.new() for _ in group["params"]]
        if self.master_weights:
            state[MASTER_WEIGHT] = [_master_copy(p) for p in group["params"]]
        return state

    def _state_dtype_of(self, param: np.ndarray) -> Any:
        """The dtype of ``param``'s state arrays: its own, or for a 16-bit parameter the optimizer's state_dtype."""
        if not is_16_bit(param.dtype):
            return param.dtype
        return np.dtype(np.float32) if self.state_dtype == "float32" else bfloat16()

    def _create_state(self, param: np.ndarray, *, shape: Optional[Tuple[int, ...]] = None) -> np.ndarray:
        """The native step's allocator of state arrays it has to create (in the state dtype)."""
        return state_like(param, shape=shape, dtype=self._state_dtype_of(param))

    #: (group, t) -> the group's native hyperparameters at step t, written from the rule (see _make_resolver).
    _resolve_group: Callable[[Dict[str, Any], int], Dict[str, Any]]

    def _resolve(self, group: Dict[str, Any], t: int) -> Dict[str, Any]:
        """The group's native hyperparameters at step t: schedules evaluated (the native step checks values)."""
        return self._resolve_group(group, t)

    # ------------------------------------------------------------------- step
    def step(self, grads: Any) -> bool:
        """Applies one update to every parameter, in place.

        A step is a transaction: every group's hyperparameters and every
        array are checked first (natively, once), and nothing is written,
        created or counted unless all of it is valid. With
        ``skip_nonfinite=True`` every gradient is checked too; if any element
        is NaN or Inf the whole step is skipped: nothing is written,
        ``step_count`` stays (so schedules do not advance) and
        ``skipped_steps`` is incremented.

        With ``max_grad_norm`` set (its schedule evaluated at ``step_count``),
        after the checks one read pass computes the ``norm_type`` norm of all
        gradients of all groups (as :func:`lrcore.global_norm`), stored in
        ``last_grad_norm``; the kernels then multiply each gradient element by
        the coefficient of :func:`lrcore.clip_grad_norm` as their first
        operation. That pass replaces the separate non-finite check: with
        ``skip_nonfinite=True`` a non-finite norm skips the step, which also
        happens when every gradient is finite but the sum of their powers
        overflows a double (e.g. float64 gradients around 1e200 with p = 2).
        With ``skip_nonfinite=False`` a non-finite norm leaves the gradients
        unscaled (coefficient 1), as :func:`lrcore.clip_grad_norm` does.

        Thread safety: steps of one optimizer are serialised by a lock, so two
        threads calling ``step`` on the same optimizer apply their updates one
        after the other (in an unspecified order). Different optimizers step
        concurrently; the native kernels run without the GIL.

        Args:
            grads: one gradient per parameter, in the order the parameters
                were given (groups flattened in order); or, when the
                parameters were given with names, a mapping from every name to
                its gradient. ``None`` skips that parameter for this step. A
                gradient is an array like its parameter or, for the rules
                that take one, an :class:`lrcore.SparseRows` (row-sparse).

        Returns:
            True when the update was applied, False when it was skipped for a
            non-finite gradient.

        Raises:
            TypeError, ValueError: a gradient does not match its parameter, a
                name is missing or unknown, or a hyperparameter (or a
                schedule's value) is invalid. Nothing is modified then.
        """
        with self._step_lock:
            t = self._counter_view[_STEP_COUNT]
            attempt = self._attempt
            if attempt is not None and attempt[0] == t:
                self._last_hyperparameters = attempt[1]
            param_groups = self.param_groups
            resolve = self._resolve_group
            if len(param_groups) == 1 and type(grads) is list and len(grads) == self._num_params:
                group = param_groups[0]
                values = resolve(group, t)
                groups = [(values, group["params"], grads, self._states[0], self._steps[0])]
                self._attempt = (t + 1, [values])
            else:
                split = self._split_gradients(grads)
                groups = [(resolve(group, t), group["params"], split[index], self._states[index], self._steps[index])
                          for index, group in enumerate(param_groups)]
                self._attempt = (t + 1, [g[0] for g in groups])
            if self._group_states:
                groups = [group + (group_state,)  # type: ignore[misc]  # 6-tuples: the rule takes group state
                          for group, group_state in zip(groups, self._group_states)]
            # The attempt is recorded before the native step: last_hyperparameters reads it
            # once step_count has moved, which the native step does as its very last write.
            max_grad_norm = self.max_grad_norm
            seed = self.seed if self.stochastic_rounding else None
            if max_grad_norm is None:
                return self.rule.native.step(groups, self._counters, self.skip_nonfinite, self._create_state, True,
                                             rounding_seed=seed)
            if type(max_grad_norm) is not float and _is_schedule(max_grad_norm):
                max_grad_norm = max_grad_norm(t)
            return self.rule.native.step(groups, self._counters, self.skip_nonfinite, self._create_state, True,
                                         max_grad_norm, self.norm_type, self._grad_norm, seed)

    def _split_gradients(self, grads: Any) -> List[Any]:
        """One gradient list per group, from a flat list or (for named parameters) a mapping."""
        groups = self.param_groups
        if isinstance(grads, Mapping):
            if not self._named:
                raise TypeError("grads must be a list of arrays (one per parameter): the parameters have no names, "
                                "so gradients cannot be given by name")
            split = []
            for group in groups:
                try:
                    split.append([grads[name] for name in group["param_names"]])
                except KeyError as missing:
                    raise ValueError(f"grads has no gradient for parameter {missing.args[0]!r}") from None
            if len(grads) != self._num_params:
                known = {n for g in groups for n in g["param_names"]}
                unknown = sorted(str(k) for k in grads if k not in known)
                raise ValueError(f"grads names unknown parameter(s) {unknown}")
            return split
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays (one per parameter), got {type(grads).__name__}")
        if len(grads) != self._num_params:
            raise ValueError(f"grads has {len(grads)} entries but the optimizer has {self._num_params} parameters")
        if len(groups) == 1:
            return [grads]
        sliced: List[Any] = []
        offset = 0
        for group in groups:
            count = len(group["params"])
            sliced.append(grads[offset:offset + count])
            offset += count
        return sliced

    # ------------------------------------------------------------- counters
    @property
    def step_count(self) -> int:
        return int(self._counters[_STEP_COUNT])

    @step_count.setter
    def step_count(self, value: int) -> None:
        self._counters[_STEP_COUNT] = _count("step_count", value)

    @property
    def skipped_steps(self) -> int:
        return int(self._counters[_SKIPPED_STEPS])

    @skipped_steps.setter
    def skipped_steps(self, value: int) -> None:
        self._counters[_SKIPPED_STEPS] = _count("skipped_steps", value)

    @property
    def last_grad_norm(self) -> Optional[float]:
        """The total gradient norm of the last step (before clipping), also of a skipped one;
        None before any step and when the last step had clipping off."""
        # The native step writes [norm, step_count + skipped_steps] when it clips: the norm is the
        # last step's while no step without clipping has come since.
        norm, marker = self._grad_norm
        view = self._counter_view
        return float(norm) if marker == float(view[_STEP_COUNT]) + float(view[_SKIPPED_STEPS]) else None

    @property
    def last_hyperparameters(self) -> List[Dict[str, Any]]:
        attempt = self._attempt
        values = attempt[1] if attempt is not None and attempt[0] == self.step_count else self._last_hyperparameters
        return [dict(v) for v in values]

    @last_hyperparameters.setter
    def last_hyperparameters(self, values: List[Dict[str, Any]]) -> None:
        self._attempt = None
        self._last_hyperparameters = values

    def get_last_lr(self) -> List[float]:
        """The learning rate each group used in the last step (as torch schedulers report).

        Before the first step, the learning rate the first step will use; right
        after loading a state, the learning rate of the last step the saved
        optimizer took (as torch's schedulers restore their last value).
        """
        attempt = self._attempt
        values = attempt[1] if attempt is not None and attempt[0] == self.step_count else self._last_hyperparameters
        if not values:
            t = max(self.step_count - 1, 0)
            return [float(self._resolve(group, t)["lr"]) for group in self.param_groups]
        return [values_of_group["lr"] for values_of_group in values]

    def __getstate__(self) -> Dict[str, Any]:
        # The step lock cannot be copied or pickled; a copy gets its own.
        state = self.__dict__.copy()
        state.pop("_step_lock", None)
        state.pop("_counter_view", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._step_lock = threading.Lock()
        self._counter_view = self._counters.data

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's whole state as a plain dict of numbers and numpy arrays (copies).

        Layout (torch-like): ``{"state": {index: {"step": int, <array name>: array}},
        "param_groups": [{hyperparameters..., "params": [indices]}], "step_count": int,
        "skipped_steps": int, "last_hyperparameters": [{name: value}], "max_grad_norm": ...,
        "norm_type": float, "last_grad_norm": float or None}`` (last_hyperparameters: the
        values the last step used, so that ``get_last_lr()`` is the same after loading). Hyperparameters
        (and ``max_grad_norm``) that are schedules are stored
        by their state (``{"schedule_state": ...}``) when they have one, else as
        ``None``. Parameters never stepped have no entry, as in torch.
        """
        with self._step_lock:
            return self._state_dict()

    def _state_dict(self) -> Dict[str, Any]:
        state: Dict[int, Dict[str, Any]] = {}
        groups = []
        index = 0
        for group, group_state, steps in zip(self.param_groups, self._states, self._steps):
            indices = []
            for k in range(len(group["params"])):
                if steps[k] != 0:
                    entry: Dict[str, Any] = {"step": int(steps[k])}
                    for name, arrays in group_state.items():
                        array = arrays[k]
                        if array is not None:
                            entry[name] = array.copy()
                    state[index] = entry
                indices.append(index)
                index += 1
            saved = {name: _export_hyperparameter(value) for name, value in group.items()
                     if name not in ("params", "param_names")}
            if "param_names" in group:
                saved["param_names"] = list(group["param_names"])
            saved["params"] = indices
            groups.append(saved)
        result = {"state": state, "param_groups": groups, "step_count": self.step_count,
                  "skipped_steps": self.skipped_steps, "last_hyperparameters": self.last_hyperparameters,
                  "max_grad_norm": _export_hyperparameter(self.max_grad_norm), "norm_type": self.norm_type,
                  "last_grad_norm": self.last_grad_norm}
        if self.rule.group_scalars:
            result["group_states"] = [
                {g.name: g.export(value) for g, value in zip(self.rule.group_scalars, group_state)}
                for group_state in self._group_states
            ]
        return result

    def load_state_dict(self, state_dict: Dict[str, Any], *,
                        params: Optional[Sequence[np.ndarray]] = None) -> None:
        """Restores a state saved by :meth:`state_dict` into this optimizer.

        The optimizer must have the same groups and parameter shapes and
        dtypes; everything is checked before anything is changed. Numeric
        hyperparameters are restored; hyperparameters that are schedules keep
        this optimizer's schedule objects and have their state restored.

        Args:
            state_dict: a dict from :meth:`state_dict`.
            params: optionally, values for every parameter (groups flattened),
                copied into the parameter arrays under the same lock, after
                every check.
        """
        with self._step_lock:
            self._load_state_dict(state_dict, params)

    def _load_state_dict(self, state_dict: Dict[str, Any], params: Optional[Sequence[np.ndarray]] = None) -> None:
        # Every check first, with no side effect (schedules are not evaluated:
        # evaluating one may change its state); then apply.
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError('state_dict must be a dict with "state" and "param_groups"')
        saved_groups = state_dict["param_groups"]
        if not isinstance(saved_groups, (list, tuple)) or not all(isinstance(g, dict) for g in saved_groups):
            raise ValueError("state_dict param_groups must be a list of dicts")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} parameter groups but the optimizer has {len(self.param_groups)}"
            )
        step_count = _count("step_count", state_dict.get("step_count", 0))
        skipped_steps = _count("skipped_steps", state_dict.get("skipped_steps", 0))
        last = self._check_last_hyperparameters(state_dict.get("last_hyperparameters", []))
        # Clipping settings (absent from state_dicts older than them: then kept as they are).
        has_clipping = "max_grad_norm" in state_dict
        saved_max_grad_norm = state_dict.get("max_grad_norm")
        if has_clipping:
            try:
                _check_max_grad_norm(_imported_value(self.max_grad_norm, saved_max_grad_norm))
            except TypeError as error:
                raise ValueError(f"state_dict {error}") from None
        try:
            norm_type = _check_norm_type(state_dict.get("norm_type", self.norm_type))
        except TypeError as error:
            raise ValueError(f"state_dict {error}") from None
        saved_norm = state_dict.get("last_grad_norm")
        if saved_norm is not None and (isinstance(saved_norm, bool) or not isinstance(saved_norm, numbers.Real)):
            raise ValueError(f"state_dict last_grad_norm must be a number or None, got {saved_norm!r}")
        grad_norm = (np.array([0.0, -1.0]) if saved_norm is None
                     else np.array([float(saved_norm), float(step_count) + float(skipped_steps)]))
        saved_state = state_dict["state"]
        if not isinstance(saved_state, dict):
            raise ValueError("state_dict state must be a dict from parameter index to its state")
        plans = []
        listed = set()
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            keys = saved.get("params")
            if not isinstance(keys, (list, tuple)) or not all(
                    type(key) is int or (isinstance(key, str) and key.isdecimal()) for key in keys):
                raise ValueError(f"state_dict param_groups[{g}]['params'] must be a list of parameter indices")
            if len(keys) != len(group["params"]):
                raise ValueError(
                    f"state_dict param_groups[{g}] has {len(keys)} parameters, "
                    f"the optimizer's has {len(group['params'])}"
                )
            for k, param in enumerate(group["params"]):
                key = keys[k]
                if str(key) in listed:
                    raise ValueError(f"state_dict lists parameter {key} twice")
                listed.add(str(key))
                entry = saved_state.get(key, saved_state.get(str(key)))
                if entry is not None:
                    self._check_param_state(entry, param, f"state[{key}]")
                plans.append((g, k, entry))
            for name in saved:
                if name not in ("params", "param_names") and name not in group:
                    raise ValueError(f"state_dict param_groups[{g}] has unknown hyperparameter {name!r}")
            saved_names = saved.get("param_names")
            if saved_names is not None and "param_names" in group and list(saved_names) != group["param_names"]:
                raise ValueError(f"state_dict param_groups[{g}] names its parameters {list(saved_names)!r}, "
                                 f"the optimizer's are {group['param_names']!r}")
            # The values this group would step with, checked as a step checks them.
            candidate = dict(group)
            for name, value in saved.items():
                if name not in ("params", "param_names"):
                    candidate[name] = _imported_value(group[name], value)
            try:
                self.rule.native.check_hyperparameters(self._values_to_check(candidate),
                                                       f"state_dict param_groups[{g}]: ")
                self._check_options(candidate, g)
            except TypeError as error:
                raise ValueError(str(error)) from None
        group_states = self._check_group_states(state_dict)
        unlisted = sorted(str(key) for key in saved_state if str(key) not in listed)
        if unlisted:
            raise ValueError(f"state_dict has state for parameter(s) {unlisted} that no group lists")
        arrays = [p for group in self.param_groups for p in group["params"]]
        if params is not None:
            if len(params) != len(arrays):
                raise ValueError(f"params has {len(params)} arrays but the optimizer has {len(arrays)} parameters")
            for index, (value, array) in enumerate(zip(params, arrays)):
                if not isinstance(value, np.ndarray) or value.shape != array.shape or value.dtype != array.dtype:
                    raise ValueError(f"params[{index}] must be a {array.dtype} array of shape {array.shape}")
                if not array.flags.writeable:
                    raise ValueError(f"params[{index}] of the optimizer is read-only; it cannot be restored")
        # Everything checked: apply. A schedule refusing its state is the one
        # failure left possible here; then everything is put back.
        before = self._state_dict()
        before_groups = [dict(group) for group in self.param_groups]
        before_max_grad_norm = self.max_grad_norm
        try:
            for group, saved in zip(self.param_groups, saved_groups):
                for name, value in saved.items():
                    if name in ("params", "param_names"):
                        continue
                    group[name] = _import_hyperparameter(group[name], value)
            if has_clipping:
                self.max_grad_norm = _import_hyperparameter(self.max_grad_norm, saved_max_grad_norm)
        except BaseException:
            self.max_grad_norm = before_max_grad_norm
            if "max_grad_norm" in before and _is_schedule(before_max_grad_norm):
                _import_hyperparameter(before_max_grad_norm, before["max_grad_norm"])
            for group, previous in zip(self.param_groups, before_groups):
                group.clear()
                group.update(previous)
            for group, saved in zip(self.param_groups, before["param_groups"]):
                for name, value in saved.items():
                    if name not in ("params", "param_names"):
                        _import_hyperparameter(group[name], value)
            raise
        for g, k, entry in plans:
            self._import_param_state(g, k, entry)
        for target, values in zip(self._group_states, group_states):
            target[:] = values
        self._counters[:] = (step_count, skipped_steps)
        self.norm_type = norm_type
        self._grad_norm[:] = grad_norm
        self.last_hyperparameters = last
        if params is not None:
            for value, array in zip(params, arrays):
                np.copyto(array, value)

    def _check_group_states(self, state_dict: Dict[str, Any]) -> List[np.ndarray]:
        """The saved per-group state of a rule that keeps one, checked as a step checks it."""
        scalars = self.rule.group_scalars
        if not scalars:
            if "group_states" in state_dict:
                raise ValueError(f"state_dict has group_states but {self.rule.class_name} keeps no per-group state")
            return []
        saved = state_dict.get("group_states")
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.param_groups):
            raise ValueError(f"state_dict group_states must be a list of one dict per parameter group "
                             f"({len(self.param_groups)}), got {type(saved).__name__}")
        names = [g.name for g in scalars]
        arrays = []
        for index, entry in enumerate(saved):
            if not isinstance(entry, dict) or sorted(entry) != sorted(names):
                raise ValueError(f"state_dict group_states[{index}] must be a dict with the entries {names}")
            values = []
            for g in scalars:
                value = entry[g.name]
                if g.kind == "flag":
                    ok = isinstance(value, (bool, np.bool_))
                elif g.kind == "count":
                    ok = isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))
                else:
                    ok = isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))
                if not ok:
                    raise ValueError(f"state_dict group_states[{index}][{g.name!r}] must be a {g.kind}, "
                                     f"got {value!r}")
                values.append(float(value) if g.kind != "count" or abs(int(value)) < 2**63 else float("inf"))
            array = np.array(values, dtype=np.float64)
            self.rule.native.check_group_state(array, f"state_dict group_states[{index}]: ")
            arrays.append(array)
        return arrays

    def _values_to_check(self, group: Dict[str, Any]) -> Dict[str, Any]:
        """The group's native hyperparameters with every schedule replaced by its rule's default
        (a valid value): what a load can check without evaluating, and so changing, a schedule."""
        checked = dict(group)
        for h in self.rule.hyperparameters:
            value = group[h.name]
            if h.kind == "option":
                continue
            if len(h.native) == 1:
                checked[h.name] = h.default if _is_schedule(value) else value
            elif isinstance(value, (tuple, list)) and len(value) == len(h.native):
                checked[h.name] = tuple(d if _is_schedule(v) else v for v, d in zip(value, h.default))
        return self._resolve(checked, 0)

    def _check_last_hyperparameters(self, values: Any) -> List[Dict[str, Any]]:
        """The saved per-group values of the last step: empty, or one dict per group with a numeric lr."""
        if not isinstance(values, (list, tuple)):
            raise ValueError("state_dict last_hyperparameters must be a list")
        if not values:
            return []
        if len(values) != len(self.param_groups) or not all(
                isinstance(v, dict) and isinstance(v.get("lr"), numbers.Real) and not isinstance(v.get("lr"), bool)
                for v in values):
            raise ValueError("state_dict last_hyperparameters must hold one dict with a numeric lr per group")
        return [dict(v) for v in values]

    def _check_param_state(self, entry: Dict[str, Any], param: np.ndarray, where: str) -> None:
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a dict")
        step = entry.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or not 0 <= int(step) <= _MAX_COUNT:
            raise ValueError(f"{where}['step'] must be an integer in [0, 2**63 - 1], got {step!r}")
        shapes = {s.name: s.shape_for(param.shape) for s in self.rule.states}
        scalars = {s.name for s in self.rule.scalars}
        for name, value in entry.items():
            if name == "step":
                continue
            if name == MASTER_WEIGHT:
                if not (self.master_weights and is_16_bit(param.dtype)):
                    raise ValueError(f"{where} has a {MASTER_WEIGHT!r}, but only the 16-bit parameters of an "
                                     f"optimizer with master_weights=True have one")
                if value is not None and (not isinstance(value, np.ndarray) or value.shape != param.shape
                                          or value.dtype != np.float32):
                    got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                    raise ValueError(f"{where}[{MASTER_WEIGHT!r}] must be a float32 array of shape {param.shape}, "
                                     f"got {got}")
                continue
            if name in scalars:
                if value is None:
                    continue
                # A float per tensor: a 0-d array (lrcore's, or a torch tensor's .numpy()) or a number.
                number = value[()] if isinstance(value, np.ndarray) and value.shape == () else value
                if (isinstance(number, (bool, np.bool_)) or not isinstance(number, (numbers.Real, np.floating))
                        or not np.isfinite(float(number))):
                    got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else repr(value)
                    raise ValueError(f"{where}[{name!r}] must be a finite number (a 0-d float64 array), got {got}")
                continue
            if name not in shapes:
                raise ValueError(f"{where} has unknown entry {name!r}")
            if value is None:
                continue
            description = next(s for s in self.rule.states if s.name == name)
            if not description.exists_for(param.shape):
                raise ValueError(f"{where}[{name!r}] must be None: it is kept only for {description.applies_to}, "
                                 f"and the parameter has shape {param.shape}")
            shape = description.shape_for(param.shape)
            dtype = self._state_dtype_of(param)
            if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != dtype:
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"{where}[{name!r}] must be a {dtype} array of shape {shape}, got {got}")

    def _import_param_state(self, g: int, k: int, entry: Optional[Dict[str, Any]]) -> None:
        group, state = self.param_groups[g], self._states[g]
        param = group["params"][k]
        self._steps[g][k] = 0 if entry is None else int(entry.get("step", 0))
        for s in self.rule.states:
            value = None if entry is None else entry.get(s.name)
            arrays = state[s.name]
            if value is None:
                # Not saved: as a new optimizer has it.
                if s.always and not s.kernel_initialized:
                    fill = 0.0 if s.initial == "zero" else float(group[s.initial])
                    arrays[k] = _new_state_array(s, param, fill, self._state_dtype_of(param))
                else:
                    arrays[k] = None
            else:
                target = arrays[k]
                if target is None:
                    target = arrays[k] = self._create_state(param, shape=s.shape_for(param.shape))
                np.copyto(target, value)
        if MASTER_WEIGHT in state:
            # Not saved (a parameter never stepped): made from the parameter, as at construction.
            value = None if entry is None else entry.get(MASTER_WEIGHT)
            master = state[MASTER_WEIGHT][k]
            if value is None:
                state[MASTER_WEIGHT][k] = _master_copy(param)
            elif master is not None:
                np.copyto(master, value)
        for scalar in self.rule.scalars:
            value = None if entry is None else entry.get(scalar.name)
            if value is None:  # not saved: as a new optimizer has it
                state[scalar.name][k] = scalar.new()
            else:
                state[scalar.name][k] = np.array(float(value[()] if isinstance(value, np.ndarray) else value))

    # -------------------------------------------------------------- snapshot
    def snapshot(self, *, params: bool = False) -> "OptimizerSnapshot":
        """A copy of everything a step changes, to put back later with :meth:`OptimizerSnapshot.restore`.

        Args:
            params: also copy the parameter arrays (a range test or a
                rollback needs them; a checkpoint may store them).
        """
        with self._step_lock:
            return OptimizerSnapshot(self, params)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for name in sorted(k for k in group if k not in ("params", "param_names")):
                lines.append(f"    {name}: {group[name]!r}")
        lines.append(")")
        return "\n".join(lines)


class OptimizerSnapshot:
    """The state of an optimizer at one moment (see :meth:`Optimizer.snapshot`).

    Attributes:
        state_dict: the optimizer's :meth:`~Optimizer.state_dict` then.
        params: copies of the parameters, flattened over the groups (None
            unless taken with ``params=True``).
    """

    def __init__(self, optimizer: Optimizer, params: bool) -> None:
        self._optimizer = optimizer
        self.state_dict: Dict[str, Any] = optimizer._state_dict()
        # The hyperparameter objects themselves (numbers, schedules, tuples):
        # load_state_dict restores their values and schedule state, these their identity.
        self._groups = [{k: v for k, v in g.items() if k not in ("params", "param_names")}
                        for g in optimizer.param_groups]
        self._last_hyperparameters = optimizer.last_hyperparameters
        self.params: Optional[List[np.ndarray]] = (
            [p.copy() for g in optimizer.param_groups for p in g["params"]] if params else None
        )

    def restore(self) -> None:
        """Puts the optimizer (and, when copied, its parameters) back as they were."""
        optimizer = self._optimizer
        with optimizer._step_lock:
            self._restore_groups()
            optimizer._load_state_dict(self.state_dict, self.params)
            self._restore_groups()
            optimizer.last_hyperparameters = self._last_hyperparameters

    def _restore_groups(self) -> None:
        for group, saved in zip(self._optimizer.param_groups, self._groups):
            for name in [n for n in group if n not in ("params", "param_names") and n not in saved]:
                del group[name]
            group.update(saved)


def _new_state_array(state: StateArray, param: np.ndarray, fill: float, dtype: Any) -> Optional[np.ndarray]:
    """A new state array of ``dtype`` for ``param`` (its own shape when it is not the parameter's), or
    None when parameters of its shape do not have this state (Adafactor's vectors have no ``row_var``)."""
    if not state.exists_for(param.shape):
        return None
    return state_like(param, fill, shape=state.shape_for(param.shape), dtype=dtype)


#: The state entry of a 16-bit parameter's float32 master copy (optimizers with master_weights=True).
MASTER_WEIGHT = "master_weight"


def _master_copy(param: np.ndarray) -> Optional[np.ndarray]:
    """A float32 copy of a 16-bit parameter (aligned like it), or None for a float32/float64 one."""
    if not is_16_bit(param.dtype):
        return None
    master = state_like(param, dtype=np.float32)
    np.copyto(master, param.astype(np.float32))
    return master


def _check_state_dtype(value: Any) -> str:
    """state_dtype as its name: None or "float32" gives "float32"; "bfloat16" (or the dtype) "bfloat16"."""
    if value is None:
        return "float32"
    try:
        name = np.dtype(value).name if not isinstance(value, str) else value
    except TypeError:
        name = None
    if name not in ("float32", "bfloat16"):
        raise ValueError(f'state_dtype must be None, "float32" or "bfloat16", got {value!r}')
    return name


def _check_max_grad_norm(value: Any) -> Any:
    """max_grad_norm as given, after its checks: None, a schedule, or a number >= 0 (inf allowed)."""
    if value is None or _is_schedule(value):
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"max_grad_norm must be a number >= 0, a schedule or None, got {type(value).__name__}")
    if not float(value) >= 0.0:
        raise ValueError(f"max_grad_norm must be a number >= 0 (inf disables clipping) or None, got {value!r}")
    return value


def _check_norm_type(value: Any) -> float:
    """norm_type as a float: a number > 0 or inf ("inf" accepted)."""
    if isinstance(value, str) and value.lower() == "inf":
        return float("inf")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"norm_type must be a number > 0 or inf, got {type(value).__name__}")
    if not float(value) > 0.0:
        raise ValueError(f"norm_type must be a number > 0 or inf, got {value!r}")
    return float(value)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) <= _MAX_COUNT:
        raise ValueError(f"{name} must be an integer in [0, 2**63 - 1], got {value!r}")
    return int(value)


def _export_hyperparameter(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_export_hyperparameter(v) for v in value)
    if _is_schedule(value):
        state = getattr(value, "state_dict", None)
        return {"schedule_state": copy.deepcopy(state()) if callable(state) else None}
    return value


def _imported_value(current: Any, saved: Any) -> Any:
    """What _import_hyperparameter would make of ``saved``, without touching any schedule."""
    if isinstance(saved, (tuple, list)) and isinstance(current, (tuple, list)) and len(saved) == len(current):
        return tuple(_imported_value(c, s) for c, s in zip(current, saved))
    if isinstance(saved, dict) and "schedule_state" in saved:
        if not _is_schedule(current):
            raise ValueError("state_dict holds a schedule where the optimizer has a number; "
                             "construct the optimizer with the same schedules before loading")
        return current
    return saved


def _import_hyperparameter(current: Any, saved: Any) -> Any:
    if isinstance(saved, (tuple, list)) and isinstance(current, (tuple, list)) and len(saved) == len(current):
        return tuple(_import_hyperparameter(c, s) for c, s in zip(current, saved))
    if isinstance(saved, dict) and "schedule_state" in saved:
        if not _is_schedule(current):
            raise ValueError("state_dict holds a schedule where the optimizer has a number; "
                             "construct the optimizer with the same schedules before loading")
        if saved["schedule_state"] is not None and hasattr(current, "load_state_dict"):
            current.load_state_dict(copy.deepcopy(saved["schedule_state"]))
        return current
    return saved


# ------------------------------------------------------------------- modes --
def _switch(optimizer: Optimizer, train: bool) -> None:
    with optimizer._step_lock:
        t = optimizer.step_count
        groups = [(optimizer._resolve(group, t), group["params"], state, group_state)
                  for group, state, group_state in zip(optimizer.param_groups, optimizer._states,
                                                       optimizer._group_states)]
        optimizer.rule.native.switch_mode(groups, train)


def _train(self: Optimizer) -> None:
    """Train mode: moves every parameter (that has been stepped) from the average x to y, where
    gradients are taken: ``p = lerp(p, z, 1 - beta)``. Nothing when already in train mode.

    A new optimizer is in eval mode, as the schedulefree package's: call ``train()`` before the
    first :meth:`step`, and ``eval()`` before evaluating the model or saving it. ``beta`` (beta1 or
    momentum) is the group's value at ``step_count``. Everything is checked before any parameter moves.
    """
    _switch(self, True)


def _eval(self: Optimizer) -> None:
    """Eval mode: moves every parameter (that has been stepped) from y to the average x, the point to
    evaluate or save: ``p = lerp(p, z, 1 - 1/beta)``. Nothing when already in eval mode; a step in
    eval mode raises RuntimeError."""
    _switch(self, False)


def _train_mode(self: Optimizer) -> bool:
    """Whether the parameters hold y (train mode, steps allowed) rather than the average x."""
    mode = [g.name for g in self.rule.group_scalars].index("train_mode")
    return bool(self._group_states[0][mode])


# ------------------------------------------------------- derived from a rule --
def _make_constructor(rule: RuleDescription) -> Callable[..., None]:
    """The class's __init__ with torch's signature, written from the description."""
    names = [h.name for h in rule.hyperparameters]
    arguments = ", ".join(f"{name}=_defaults[{name!r}]" for name in names)
    source = (
        f"def __init__(self, params, {arguments}, *, skip_nonfinite=False, max_grad_norm=None, norm_type=2.0,\n"
        f"             state_dtype=None, master_weights=False, stochastic_rounding=False, seed=0):\n"
        f"    _Optimizer.__init__(self, params, {{{', '.join(f'{n!r}: {n}' for n in names)}}},\n"
        f"                        skip_nonfinite=skip_nonfinite, max_grad_norm=max_grad_norm,\n"
        f"                        norm_type=norm_type, state_dtype=state_dtype, master_weights=master_weights,\n"
        f"                        stochastic_rounding=stochastic_rounding, seed=seed)\n"
    )
    namespace: Dict[str, Any] = {"_defaults": rule.defaults, "_Optimizer": Optimizer}
    exec(source, namespace)  # noqa: S102 - the source is built above from the rule description only
    constructor: Callable[..., None] = namespace["__init__"]
    constructor.__qualname__ = f"{rule.class_name}.__init__"
    return constructor


def _make_resolver(rule: RuleDescription) -> Callable[[Dict[str, Any], int], Dict[str, Any]]:
    """(group, t) -> native hyperparameters, as straight-line code: on every step of every group,
    so a loop over the description would cost more than the rest of a small step."""
    lines = ["def resolve(group, t):"]
    entries = [f"{name!r}: {value!r}" for name, value in rule.fixed.items()]
    for h in rule.hyperparameters:
        if h.kind == "option":
            continue
        variable = f"_{h.name}"
        lines.append(f"    {variable} = group[{h.name!r}]")
        if h.kind == "flag":
            entries.append(f"{h.native[0]!r}: {variable}")
        elif len(h.native) == 1:
            lines.append(f"    if type({variable}) is not float and _is_schedule({variable}):")
            lines.append(f"        {variable} = {variable}(t)")
            entries.append(f"{h.native[0]!r}: {variable}")
        else:
            lines.append(f"    if type({variable}) not in (tuple, list) or len({variable}) != {len(h.native)}:")
            lines.append(f"        raise TypeError(f'{h.name} must be a pair ({', '.join(h.native)}), "
                         f"got {{{variable}!r}}')")
            for k, native in enumerate(h.native):
                item = f"{variable}_{k}"
                lines.append(f"    {item} = {variable}[{k}]")
                lines.append(f"    if type({item}) is not float and _is_schedule({item}):")
                lines.append(f"        {item} = {item}(t)")
                entries.append(f"{native!r}: {item}")
    lines.append(f"    return {{{', '.join(entries)}}}")
    namespace: Dict[str, Any] = {"_is_schedule": _is_schedule}
    exec("\n".join(lines) + "\n", namespace)  # noqa: S102 - the source is built here from the rule only
    resolve: Callable[[Dict[str, Any], int], Dict[str, Any]] = namespace["resolve"]
    return resolve


def _class_docstring(rule: RuleDescription) -> str:
    lines = [rule.summary, "", f"The formula is in :func:`lrcore.functional.{rule.name}`.", "", "Args:",
             "    params: arrays, (name, array) pairs or parameter groups (see :class:`Optimizer`)."]
    for h in rule.hyperparameters:
        kind = {"number": "number or schedule", "flag": "bool", "option": "number"}[h.kind]
        lines.append(f"    {h.name}: {h.doc} ({kind}; {h.valid}; default {h.default!r}).")
    lines.append("    skip_nonfinite: skip the whole step when a gradient has a NaN or Inf "
                 "(see :meth:`Optimizer.step`).")
    lines.append("    max_grad_norm: clip the global norm of all gradients to this, fused into the step "
                 "(number >= 0 or schedule; default None, off); ``opt.last_grad_norm`` is the norm "
                 "(see :meth:`Optimizer.step`).")
    lines.append("    norm_type: p of that norm (number > 0 or inf; default 2.0).")
    lines.append("    state_dtype: the state dtype of 16-bit (bfloat16, float16) parameters: \"float32\" "
                 "(default) or \"bfloat16\"; other parameters keep their own (see docs/mixed_precision.md).")
    lines.append("    master_weights: keep a float32 master copy of each 16-bit parameter, stepped as float32 "
                 "and written back rounded to nearest (state ``master_weight``; default False).")
    lines.append("    stochastic_rounding: round 16-bit stores (parameters without a master, bfloat16 state) "
                 "stochastically (default False).")
    lines.append("    seed: the stochastic rounding's seed (int; default 0).")
    states = ", ".join([f"``{s.name}``" + (f" (when {s.needed_when})" if s.needed_when else "")
                        + (" (one value per row)" if s.per_row else "") for s in rule.states]
                       + [f"``{s.name}`` (a float64, from {s.initial!r})" for s in rule.scalars])
    lines += ["", f"State per parameter: {states or 'none'}."]
    if rule.sparse_gradients:
        kinds = "arrays or row-sparse gradients" if rule.dense_gradients else "row-sparse gradients only"
        lines += ["", f"Gradients: {kinds} (:class:`lrcore.SparseRows`; see the README's \"Embedding tables\")."]
    return "\n".join(lines) + "\n"
