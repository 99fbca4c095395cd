"""The optimizer base class: parameter groups, hyperparameter schedules, state and checkpoints.

Subclasses describe one update rule: its defaults, which hyperparameters are
numeric (and so may be schedules), the state arrays it keeps per parameter,
and how one group's step calls the native kernel. Everything else lives here.
"""

from __future__ import annotations

import copy
import numbers
import threading
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from ..functional import state_like

__all__ = ["Optimizer"]

_SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _is_schedule(value: Any) -> bool:
    return callable(value) and not isinstance(value, (numbers.Number, np.ndarray))


def _value_at(raw: Any, t: int, where: str, name: str) -> float:
    """A numeric hyperparameter's value at step t (raw is a number or a schedule)."""
    value = raw(t) if _is_schedule(raw) else raw
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        kind = "the schedule's value" if _is_schedule(raw) else "the value"
        raise TypeError(f"{where}: {name} must be a number or a schedule; {kind} is {type(value).__name__}")
    return float(value)


def _check_parameter(array: Any, name: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(array).__name__}")
    if array.dtype not in _SUPPORTED_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {array.dtype}")
    if not array.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if not array.flags.writeable:
        raise ValueError(f"{name} is read-only; lrcore updates parameters in place")
    return array


class Optimizer:
    """Base class of lrcore's optimizers (torch.optim-like).

    Args:
        params: a list of numpy arrays, or a list of parameter groups: dicts
            ``{"params": [arrays], **hyperparameter_overrides}``.
        defaults: the hyperparameters of every group that does not override them.
        skip_nonfinite: check every gradient before each step; when any
            element is NaN or Inf the whole step is skipped (see :meth:`step`).

    Attributes:
        param_groups: list of dicts, one per group; hyperparameters may be
            edited between steps (a number or a schedule).
        step_count: the number of steps taken; schedules are evaluated at it.
        last_hyperparameters: per group, the numeric hyperparameter values the
            last step used (schedules resolved).
        skip_nonfinite: whether steps with a non-finite gradient are skipped.
        skipped_steps: how many steps were skipped for non-finite gradients.
    """

    #: hyperparameters that are numbers (or schedules); "betas" is a pair of them.
    _numeric_hyperparameters: Tuple[str, ...] = ()
    #: hyperparameters that are flags.
    _flag_hyperparameters: Tuple[str, ...] = ("maximize",)
    #: state arrays kept per parameter, in the order they are reported.
    _state_names: Tuple[str, ...] = ()

    def __init__(self, params: Iterable[Any], defaults: Dict[str, Any], skip_nonfinite: bool = False) -> None:
        if not isinstance(skip_nonfinite, (bool, np.bool_)):
            raise TypeError(f"skip_nonfinite must be a bool, got {type(skip_nonfinite).__name__}")
        self.skip_nonfinite = bool(skip_nonfinite)
        self.skipped_steps = 0
        self._step_lock = threading.Lock()
        self.defaults = dict(defaults)
        self.param_groups: List[Dict[str, Any]] = []
        self._group_states: List[Dict[str, Any]] = []
        self.step_count = 0
        self.last_hyperparameters: List[Dict[str, float]] = []
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
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise TypeError(f"param_groups[{index}]: unknown hyperparameter(s) {sorted(unknown)}")
        checked = [
            _check_parameter(a, f"params[{self._num_params + k}]") for k, a in enumerate(arrays)
        ]
        existing = [p for g in self.param_groups for p in g["params"]]
        for k, array in enumerate(checked):
            for other in existing + checked[:k]:
                if np.shares_memory(array, other):
                    raise ValueError(
                        f"params[{self._num_params + k}] shares memory with another parameter; "
                        "each parameter must appear once"
                    )
        new_group = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}}
        new_group["params"] = checked
        self._check_hyperparameters(new_group, f"param_groups[{index}]")
        self.param_groups.append(new_group)
        self._group_states.append(self._new_state(new_group, checked))
        self._num_params += len(checked)

    def _check_hyperparameters(self, group: Dict[str, Any], where: str) -> None:
        """Resolves the group's hyperparameters at the current step and validates them natively."""
        self._validate(self._resolve(group, self.step_count, where))

    def _resolve(self, group: Dict[str, Any], t: int, where: str) -> Dict[str, Any]:
        """The group's hyperparameter values at step t: schedules evaluated, numbers and flags checked."""
        values: Dict[str, Any] = {}
        for name in self._numeric_hyperparameters:
            raw = group[name]
            if name == "betas":
                if not isinstance(raw, (tuple, list)) or len(raw) != 2:
                    raise TypeError(f"{where}: betas must be a pair (beta1, beta2)")
                beta1, beta2 = raw
                values["beta1"] = beta1 if type(beta1) is float else _value_at(beta1, t, where, "betas[0]")
                values["beta2"] = beta2 if type(beta2) is float else _value_at(beta2, t, where, "betas[1]")
            elif type(raw) is float:  # the common case, kept cheap
                values[name] = raw
            else:
                values[name] = _value_at(raw, t, where, name)
        for name in self._flag_hyperparameters:
            flag = group[name]
            if flag is not True and flag is not False:
                if not isinstance(flag, np.bool_):
                    raise TypeError(f"{where}: {name} must be a bool, got {type(flag).__name__}")
                flag = bool(flag)
            values[name] = flag
        return values

    # ------------------------------------------------------------------- step
    def step(self, grads: Sequence[Optional[np.ndarray]]) -> bool:
        """Applies one update to every parameter, in place.

        With ``skip_nonfinite=True`` every gradient is checked first (natively,
        after the usual argument checks); if any element is NaN or Inf the whole
        step is skipped: nothing is written, ``step_count`` stays (so schedules
        do not advance) and ``skipped_steps`` is incremented.

        Thread safety: steps of one optimizer are serialised by a lock, so two
        threads calling ``step`` on the same optimizer apply their updates one
        after the other (in an unspecified order). Different optimizers step
        concurrently; the native kernels run without the GIL.

        Args:
            grads: one gradient per parameter, in the order the parameters
                were given (groups flattened in order); ``None`` skips that
                parameter for this step.

        Returns:
            True when the update was applied, False when it was skipped for a
            non-finite gradient.

        Raises:
            TypeError, ValueError: a gradient does not match its parameter, or
                a hyperparameter (or a schedule's value) is invalid. Nothing is
                modified then.
        """
        with self._step_lock:
            return self._locked_step(grads)

    def _locked_step(self, grads: Sequence[Optional[np.ndarray]]) -> bool:
        if isinstance(grads, np.ndarray) or not isinstance(grads, (list, tuple)):
            raise TypeError(f"grads must be a list of arrays (one per parameter), got {type(grads).__name__}")
        if len(grads) != self._num_params:
            raise ValueError(f"grads has {len(grads)} entries but the optimizer has {self._num_params} parameters")
        t = self.step_count
        groups = self.param_groups
        if len(groups) == 1 and not self.skip_nonfinite:
            values = [self._resolve(groups[0], t, "param_groups[0]")]
            slices = [grads]
        else:
            # Check every group before the first one is written.
            values = []
            slices = []
            offset = 0
            for index, group in enumerate(groups):
                resolved = self._resolve(group, t, f"param_groups[{index}]")
                self._validate(resolved)
                count = len(group["params"])
                group_grads = list(grads[offset:offset + count])
                _core.check_gradients(group["params"], group_grads, offset)
                values.append(resolved)
                slices.append(group_grads)
                offset += count
            if self.skip_nonfinite and not _core.gradients.all_finite(grads):
                self.skipped_steps += 1
                return False
        for group, state, resolved, group_grads in zip(groups, self._group_states, values, slices):
            self._prepare_state(group, state, resolved)
            self._step_group(group, state, group_grads, resolved)
        self.last_hyperparameters = values
        self.step_count = t + 1
        return True

    def __getstate__(self) -> Dict[str, Any]:
        # The step lock cannot be copied or pickled; a copy gets its own.
        state = self.__dict__.copy()
        state.pop("_step_lock", None)
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._step_lock = threading.Lock()

    def get_last_lr(self) -> List[float]:
        """The learning rate each group used in the last step (as torch schedulers report)."""
        return [values["lr"] for values in self.last_hyperparameters]

    # ---------------------------------------------------------- to implement
    def _validate(self, values: Dict[str, Any]) -> None:
        raise NotImplementedError

    def _new_state(self, group: Dict[str, Any], params: List[np.ndarray]) -> Dict[str, Any]:
        raise NotImplementedError

    def _prepare_state(self, group: Dict[str, Any], state: Dict[str, Any], values: Dict[str, Any]) -> None:
        """Creates optional state arrays a hyperparameter change has made necessary."""

    def _step_group(self, group: Dict[str, Any], state: Dict[str, Any], grads: Sequence[Any],
                    values: Dict[str, Any]) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ checkpoint
    def state_dict(self) -> Dict[str, Any]:
        """The optimizer's state as a plain dict of numbers and numpy arrays (copies).

        Layout (torch-like): ``{"state": {index: {"step": int, <array name>: array}},
        "param_groups": [{hyperparameters..., "params": [indices]}], "step_count": int}``.
        Hyperparameters that are schedules are stored by their state
        (``{"schedule_state": ...}``) when they have one, else as ``None``.
        """
        state: Dict[int, Dict[str, Any]] = {}
        groups = []
        index = 0
        for group, group_state in zip(self.param_groups, self._group_states):
            indices = []
            for k in range(len(group["params"])):
                entry = self._export_param_state(group_state, k)
                if entry is not None:
                    state[index] = entry
                indices.append(index)
                index += 1
            saved = {}
            for name, value in group.items():
                if name == "params":
                    continue
                saved[name] = _export_hyperparameter(value)
            saved["params"] = indices
            groups.append(saved)
        return {"state": state, "param_groups": groups, "step_count": self.step_count}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restores a state saved by :meth:`state_dict` into this optimizer.

        The optimizer must have the same groups and parameter shapes and
        dtypes; everything is checked before anything is changed. Numeric
        hyperparameters are restored; hyperparameters that are schedules keep
        this optimizer's schedule objects and have their state restored.
        """
        if not isinstance(state_dict, dict) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError('state_dict must be a dict with "state" and "param_groups"')
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"state_dict has {len(saved_groups)} parameter groups but the optimizer has {len(self.param_groups)}"
            )
        saved_state = state_dict["state"]
        index = 0
        plans = []
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    f"state_dict param_groups[{g}] has {len(saved['params'])} parameters, "
                    f"the optimizer's has {len(group['params'])}"
                )
            for k, param in enumerate(group["params"]):
                key = saved["params"][k]
                entry = saved_state.get(key, saved_state.get(str(key)))
                if entry is not None:
                    self._check_param_state(entry, param, f"state[{key}]")
                plans.append((g, k, entry))
                index += 1
            for name in saved:
                if name != "params" and name not in group:
                    raise ValueError(f"state_dict param_groups[{g}] has unknown hyperparameter {name!r}")
        # Everything checked: apply.
        for g, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            for name, value in saved.items():
                if name == "params":
                    continue
                group[name] = _import_hyperparameter(group[name], value)
        for g, k, entry in plans:
            self._import_param_state(self.param_groups[g], self._group_states[g], k, entry)
        self.step_count = int(state_dict.get("step_count", 0))

    def _export_param_state(self, state: Dict[str, Any], k: int) -> Optional[Dict[str, Any]]:
        steps = state["steps"]
        if steps[k] == 0:  # never stepped: no state yet, as in torch
            return None
        entry: Dict[str, Any] = {"step": int(steps[k])}
        for name in self._state_names:
            arrays = state.get(name + "s")
            if arrays is not None and arrays[k] is not None:
                entry[name] = arrays[k].copy()
            elif arrays is not None:
                entry[name] = None
        return entry

    def _check_param_state(self, entry: Dict[str, Any], param: np.ndarray, where: str) -> None:
        if not isinstance(entry, dict):
            raise ValueError(f"{where} must be a dict")
        step = entry.get("step", 0)
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
            raise ValueError(f"{where}['step'] must be an integer >= 0, got {step!r}")
        for name, value in entry.items():
            if name == "step" or value is None:
                continue
            if name not in self._state_names:
                raise ValueError(f"{where} has unknown entry {name!r}")
            if not isinstance(value, np.ndarray) or value.shape != param.shape or value.dtype != param.dtype:
                got = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else type(value).__name__
                raise ValueError(f"{where}[{name!r}] must be a {param.dtype} array of shape {param.shape}, got {got}")

    def _import_param_state(self, group: Dict[str, Any], state: Dict[str, Any], k: int,
                            entry: Optional[Dict[str, Any]]) -> None:
        param = group["params"][k]
        state["steps"][k] = 0 if entry is None else int(entry.get("step", 0))
        for name in self._state_names:
            key = name + "s"
            value = None if entry is None else entry.get(name)
            if value is None:
                if state.get(key) is not None:
                    fresh = self._initial_state_array(group, name, param)
                    state[key][k] = fresh
                continue
            if state.get(key) is None:
                state[key] = [self._initial_state_array(group, name, p) for p in group["params"]]
            target = state[key][k]
            if target is None:
                fresh = state_like(param)
                np.copyto(fresh, value)
                state[key][k] = fresh
            else:
                np.copyto(target, value)

    def _initial_state_array(self, group: Dict[str, Any], name: str, param: np.ndarray) -> Optional[np.ndarray]:
        return state_like(param)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for index, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {index}")
            for name in sorted(k for k in group if k != "params"):
                lines.append(f"    {name}: {group[name]!r}")
        lines.append(")")
        return "\n".join(lines)


def _export_hyperparameter(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return tuple(_export_hyperparameter(v) for v in value)
    if _is_schedule(value):
        state = getattr(value, "state_dict", None)
        return {"schedule_state": copy.deepcopy(state()) if callable(state) else None}
    return value


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
