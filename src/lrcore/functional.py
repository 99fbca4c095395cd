"""The update rules as functions: one optimizer step over lists of arrays, in place.

This is the layer for frameworks that keep their own state. Every function
takes parallel lists (one entry per tensor): parameters, gradients and the
rule's state arrays, all C-contiguous numpy arrays of one dtype per tensor
(float32 or float64; tensors may differ), or 16-bit parameters (bfloat16 from
``ml_dtypes``, or float16) stepped with float32 math: their gradients in their
own dtype or float32, their state arrays all float32 (the default of
:func:`state_like`) or all bfloat16, and optionally a float32 master copy each
(``master_weights``); see docs/mixed_precision.md. A ``None`` gradient skips that
tensor: nothing of it is read or written and its step counter stays.
Everything is checked before anything is written; a bad argument raises
``TypeError`` or ``ValueError`` naming it and leaves every array untouched.
The whole list is one native call, run without the GIL.

``steps`` is an int64 array with one counter per tensor: the number of steps
already applied to it. Each call increments the counters of the tensors it
updates and uses the new value (so start from zeros).

State lists that only some configurations need (e.g. ``max_exp_avg_sqs`` with
AMSGrad) may hold ``None`` entries: the step creates those arrays in the list
(with :func:`state_like`) once every check has passed.

A rule with per-group state (the schedule-free rules) also takes
``group_state``, a float64 array with one element per group scalar (made by
:func:`new_group_state`), which each call advances; its schedule-free
parameters hold y, where gradients are taken, and ``<name>_train`` /
``<name>_eval`` move them between y and the average x in place (a new group
state is in eval mode, as the package's optimizers start: call the train
function first).

The functions are made from the rule descriptions in :mod:`lrcore._rules`;
each one's docstring states its formula (``s = -1`` when maximizing, else 1;
``t`` is the tensor's 1-based step number).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ._dtypes import bfloat16, is_16_bit, rounding_seed
from ._rules import RULES, RuleDescription

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd", "state_like", "nadam", "radam", "adamax", "lion", "adadelta",
           "rprop", "asgd", "adafactor",
           "schedule_free_adamw", "schedule_free_adamw_train", "schedule_free_adamw_eval",
           "schedule_free_sgd", "schedule_free_sgd_train", "schedule_free_sgd_eval", "new_group_state",
           "sparse_adam", "rowwise_adagrad", "row_state_like"]

_CACHE_LINE = 64


def state_like(param: np.ndarray, fill: float = 0.0, *, shape: Optional[Tuple[int, ...]] = None,
               dtype: Any = None) -> np.ndarray:
    """A new C-contiguous array shaped like ``param``, filled with ``fill``: the way to
    allocate optimizer state for these functions (the optimizer classes use it).

    Its dtype is ``dtype``, or by default the state dtype of ``param``: its own
    for float32 and float64, float32 for a 16-bit parameter (bfloat16 or
    float16, whose math is float32; ``dtype="bfloat16"`` halves that state).

    Its address is placed so that the element where ``param`` is vector-aligned
    is aligned in it too (the same offset within a cache line for the same
    dtype, scaled by the ratio of the element sizes otherwise). The kernels
    align their vector loop on the parameter, so every state access is aligned
    too (numpy's large arrays start 16 bytes into a page; a misaligned 64-byte
    access touches two cache lines).

    ``shape`` gives a state array another shape than its parameter's (Adafactor's
    ``row_var`` and ``col_var``, see :meth:`lrcore._rules.StateArray.shape_for`).
    """
    shape = param.shape if shape is None else tuple(shape)
    if dtype is None:
        dtype = np.float32 if is_16_bit(param.dtype) else param.dtype
    dtype = bfloat16() if isinstance(dtype, str) and dtype == "bfloat16" else np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + _CACHE_LINE, dtype=np.uint8)
    wanted = (param.ctypes.data % _CACHE_LINE) * dtype.itemsize // param.dtype.itemsize
    offset = (wanted - raw.ctypes.data) % _CACHE_LINE
    array = raw[offset:offset + nbytes].view(dtype).reshape(shape)
    array.fill(fill)
    return array


def row_state_like(param: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A new array of ``param``'s dtype with one value per row of ``param`` (shape ``param.shape[:1]``),
    filled with ``fill``: the state of rules that keep one value per row (row-wise AdaGrad's ``sum``)."""
    return np.full(param.shape[:1], fill, dtype=param.dtype)


_MIXED_PRECISION_ARGS = """    master_weights: for 16-bit parameters, one float32 array shaped like each (or None): the rule
        steps it exactly as the float32 rule would and writes it, rounded to nearest, into the
        parameter (see docs/mixed_precision.md); float32/float64 parameters take None.
    stochastic_rounding: round every 16-bit store (parameters without a master, bfloat16 state)
        stochastically instead of to nearest even; needs ``steps``.
    seed: the stochastic rounding's seed (an int): results depend on it, never on threads or ISA."""

_STEPS_KEYWORD = """    steps: int64 counters, one per tensor, incremented for each tensor updated (default None:
        the rule needs no step numbers, but stochastic rounding keys its random bits by them)."""


def _docstring(rule: RuleDescription) -> str:
    formula = "\n".join("    " + line for line in rule.formula.splitlines())
    lines = [rule.summary, "", "::", "", formula, "", "Args:",
             "    params: parameter arrays, updated in place.",
             "    grads: one gradient per parameter (or ``None`` to skip it)"
             + (", each an array or an :class:`lrcore.SparseRows`." if rule.sparse_gradients and rule.dense_gradients
                else ", each an :class:`lrcore.SparseRows`." if rule.sparse_gradients else ".")]
    for name in rule.functional_arguments:
        if name == "steps":
            lines.append("    steps: int64 counters, one per tensor, incremented for each tensor updated.")
            continue
        scalar = next((s for s in rule.scalars if s.list_name == name), None)
        if scalar is not None:
            lines.append(f"    {name}: the ``{scalar.name}`` values, one 0-d float64 array per tensor, updated in "
                         f"place (``None`` entries of a list are created at {scalar.initial!r}).")
            continue
        if name == "group_state":
            scalars = ", ".join(g.name for g in rule.group_scalars)
            lines.append(f"    group_state: float64 array [{scalars}] (from new_group_state), advanced by each call.")
            continue
        state = next(s for s in rule.states if s.list_name == name)
        when = f"; required when {state.needed_when}" if state.needed_when else ""
        if state.applies_to:
            when += f"; for {state.applies_to}, None for the others"
        if state.shape != "param":
            dimension = "last" if state.shape == "rows" else "second-to-last"
            when += f"; shaped like the parameter with its {dimension} dimension 1"
        if state.kernel_initialized:
            start = "None entries start as " + {"gradient": "the gradient", "param": "a copy of the parameter"}.get(
                state.initial, state.initial)
            start += " on their first use"
        else:
            start = "start at zero" if state.initial == "zero" else f"start at {state.initial}"
        shape = "; one value per row, see :func:`row_state_like`" if state.per_row else ""
        lines.append(f"    {name}: the ``{state.name}`` arrays ({start}{when}{shape}).")
    for h in rule.hyperparameters:
        if h.kind == "option":
            continue
        for native in h.native:
            lines.append(f"    {native}: {h.doc} ({h.valid}).")
    lines.append(_MIXED_PRECISION_ARGS)
    if "steps" not in rule.functional_arguments:
        lines.append(_STEPS_KEYWORD)
    return "\n".join(lines) + "\n"


def _make_function(rule: RuleDescription) -> Callable[..., None]:
    """Writes the rule's function with a real signature (as dataclasses write their __init__)."""
    positional: List[str] = []
    state_entries: List[str] = []
    optional = False
    for name in rule.functional_arguments:
        state = next((s for s in rule.states if s.list_name == name), None)
        scalar = next((s for s in rule.scalars if s.list_name == name), None)
        required = state.always if state is not None else (scalar is not None or rule.has_step
                                                           or name == "group_state")
        if required and optional:
            raise RuntimeError(f"{rule.name}: required argument {name} follows an optional one")
        optional = optional or not required
        positional.append(name if required else f"{name}=None")
        if state is not None or scalar is not None:
            state_entries.append(f"{(state or scalar).name!r}: {name}")
    keywords: List[str] = []
    values: List[str] = []
    defaults: Dict[str, Any] = {}
    for h in rule.hyperparameters:
        if h.kind == "option":
            continue
        native_defaults = h.default if len(h.native) > 1 else (h.default,)
        for native, default in zip(h.native, native_defaults):
            defaults[native] = default
            keywords.append(f"{native}=_defaults[{native!r}]")
            values.append(f"{native!r}: {native}")
    values.extend(f"{name!r}: {value!r}" for name, value in rule.fixed.items())
    group_state = ", group_state" if rule.group_scalars else ""
    state_entries.append("'master_weight': master_weights")
    keywords += ["master_weights=None", "stochastic_rounding=False", "seed=0"]
    if "steps" not in rule.functional_arguments:
        # The rule needs no step numbers, but stochastic rounding keys its random bits by them.
        keywords.append("steps=None")
    source = (
        f"def {rule.name}(params, grads, {', '.join(positional + ['*'] + keywords)}):\n"
        f"    _seed = _rounding_seed(stochastic_rounding, seed)\n"
        f"    _step([({{{', '.join(values)}}}, params, grads, {{{', '.join(state_entries)}}}, steps{group_state})],\n"
        f"          None, False, _state_like, rounding_seed=_seed)\n"
    )
    namespace: Dict[str, Any] = {"_defaults": defaults, "_step": rule.native.step, "_state_like": state_like,
                                 "_rounding_seed": rounding_seed}
    exec(source, namespace)  # noqa: S102 - the source is built above from the rule descriptions only
    function = namespace[rule.name]
    function.__doc__ = _docstring(rule)
    function.__module__ = __name__
    function.__qualname__ = rule.name
    return function


def _make_mode_function(rule: RuleDescription, train: bool) -> Callable[..., None]:
    """``<rule>_train`` / ``<rule>_eval``: the rule's mode switch over one group, with the step's keywords."""
    keywords: List[str] = []
    values: List[str] = []
    defaults: Dict[str, Any] = {}
    for h in rule.hyperparameters:
        native_defaults = h.default if len(h.native) > 1 else (h.default,)
        for native, default in zip(h.native, native_defaults):
            defaults[native] = default
            keywords.append(f"{native}=_defaults[{native!r}]")
            values.append(f"{native!r}: {native}")
    values.extend(f"{name!r}: {value!r}" for name, value in rule.fixed.items())
    mode_state = rule.states[0]
    name = f"{rule.name}_{'train' if train else 'eval'}"
    source = (
        f"def {name}(params, {mode_state.list_name}, group_state, *, {', '.join(keywords)}):\n"
        f"    _switch([({{{', '.join(values)}}}, params, {{{mode_state.name!r}: {mode_state.list_name}}}, "
        f"group_state)], {train})\n"
    )
    namespace: Dict[str, Any] = {"_defaults": defaults, "_switch": rule.native.switch_mode}
    exec(source, namespace)  # noqa: S102 - the source is built above from the rule descriptions only
    function = namespace[name]
    point = "y (where gradients are taken)" if train else "the average x (to evaluate)"
    function.__doc__ = (
        f"Moves the parameters of one {rule.name} group to {point}, in place; nothing when "
        f"``group_state`` is already in {'train' if train else 'eval'} mode. Parameters whose "
        f"``{mode_state.list_name}`` entry is None (never stepped) stay.\n\n::\n\n"
        + "\n".join("    " + line for line in rule.formula.splitlines()[-2:]) + "\n"
    )
    function.__module__ = __name__
    function.__qualname__ = name
    return function


def new_group_state(rule: str) -> np.ndarray:
    """A new group's state for the rule named ``rule`` (e.g. ``"schedule_free_adamw"``): a float64 array
    of its group scalars at their initial values ([k, lr_max, weight_sum, train_mode] = [0, -1, 0, 0])."""
    description = RULES.get(rule)
    if description is None or not description.group_scalars:
        raise ValueError(f"rule must name a rule with per-group state, got {rule!r}")
    return np.array([g.initial for g in description.group_scalars], dtype=np.float64)


sgd = _make_function(RULES["sgd"])
adagrad = _make_function(RULES["adagrad"])
rmsprop = _make_function(RULES["rmsprop"])
adam = _make_function(RULES["adam"])
adamw = _make_function(RULES["adamw"])
adafactor = _make_function(RULES["adafactor"])
nadam = _make_function(RULES["nadam"])
radam = _make_function(RULES["radam"])
adamax = _make_function(RULES["adamax"])
lion = _make_function(RULES["lion"])
adadelta = _make_function(RULES["adadelta"])
rprop = _make_function(RULES["rprop"])
asgd = _make_function(RULES["asgd"])
schedule_free_adamw = _make_function(RULES["schedule_free_adamw"])
schedule_free_adamw_train = _make_mode_function(RULES["schedule_free_adamw"], True)
schedule_free_adamw_eval = _make_mode_function(RULES["schedule_free_adamw"], False)
schedule_free_sgd = _make_function(RULES["schedule_free_sgd"])
schedule_free_sgd_train = _make_mode_function(RULES["schedule_free_sgd"], True)
schedule_free_sgd_eval = _make_mode_function(RULES["schedule_free_sgd"], False)
sparse_adam = _make_function(RULES["sparse_adam"])
rowwise_adagrad = _make_function(RULES["rowwise_adagrad"])
