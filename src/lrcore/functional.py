"""The update rules as functions: one optimizer step over lists of arrays, in place.

This is the layer for frameworks that keep their own state. Every function
takes parallel lists (one entry per tensor): parameters, gradients and the
rule's state arrays, all C-contiguous numpy arrays of one dtype per tensor
(float32 or float64; tensors may differ). A ``None`` gradient skips that
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

The functions are made from the rule descriptions in :mod:`lrcore._rules`;
each one's docstring states its formula (``s = -1`` when maximizing, else 1;
``t`` is the tensor's 1-based step number).
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

import numpy as np

from ._rules import RULES, RuleDescription

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd", "state_like", "sparse_adam", "rowwise_adagrad",
           "row_state_like"]

_CACHE_LINE = 64


def state_like(param: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A new C-contiguous array shaped and typed like ``param``, filled with ``fill``: the way to
    allocate optimizer state for these functions (the optimizer classes use it).

    Its address has the same offset within a cache line as ``param``'s. The
    kernels align their vector loop on the parameter, so with matching offsets
    every state access is aligned too (numpy's large arrays start 16 bytes into
    a page; a misaligned 64-byte access touches two cache lines).
    """
    raw = np.empty(param.nbytes + _CACHE_LINE, dtype=np.uint8)
    offset = (param.ctypes.data - raw.ctypes.data) % _CACHE_LINE
    array = raw[offset:offset + param.nbytes].view(param.dtype).reshape(param.shape)
    array.fill(fill)
    return array


def row_state_like(param: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A new array of ``param``'s dtype with one value per row of ``param`` (shape ``param.shape[:1]``),
    filled with ``fill``: the state of rules that keep one value per row (row-wise AdaGrad's ``sum``)."""
    return np.full(param.shape[:1], fill, dtype=param.dtype)


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
        state = next(s for s in rule.states if s.list_name == name)
        when = f"; required when {state.needed_when}" if state.needed_when else ""
        start = {"zero": "start at zero", "gradient": "None entries start as the gradient on their first use"}.get(
            state.initial, f"start at {state.initial}")
        shape = "; one value per row, see :func:`row_state_like`" if state.per_row else ""
        lines.append(f"    {name}: the ``{state.name}`` arrays ({start}{when}{shape}).")
    for h in rule.hyperparameters:
        if h.kind == "option":
            continue
        for native in h.native:
            lines.append(f"    {native}: {h.doc} ({h.valid}).")
    return "\n".join(lines) + "\n"


def _make_function(rule: RuleDescription) -> Callable[..., None]:
    """Writes the rule's function with a real signature (as dataclasses write their __init__)."""
    positional: List[str] = []
    state_entries: List[str] = []
    optional = False
    for name in rule.functional_arguments:
        state = next((s for s in rule.states if s.list_name == name), None)
        required = state.always if state is not None else rule.has_step
        if required and optional:
            raise RuntimeError(f"{rule.name}: required argument {name} follows an optional one")
        optional = optional or not required
        positional.append(name if required else f"{name}=None")
        if state is not None:
            state_entries.append(f"{state.name!r}: {name}")
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
    steps = "steps" if "steps" in rule.functional_arguments else "None"
    source = (
        f"def {rule.name}(params, grads, {', '.join(positional + ['*'] + keywords)}):\n"
        f"    _step([({{{', '.join(values)}}}, params, grads, {{{', '.join(state_entries)}}}, {steps})],\n"
        f"          None, False, _state_like)\n"
    )
    namespace: Dict[str, Any] = {"_defaults": defaults, "_step": rule.native.step, "_state_like": state_like}
    exec(source, namespace)  # noqa: S102 - the source is built above from the rule descriptions only
    function = namespace[rule.name]
    function.__doc__ = _docstring(rule)
    function.__module__ = __name__
    function.__qualname__ = rule.name
    return function


sgd = _make_function(RULES["sgd"])
adagrad = _make_function(RULES["adagrad"])
rmsprop = _make_function(RULES["rmsprop"])
adam = _make_function(RULES["adam"])
adamw = _make_function(RULES["adamw"])
sparse_adam = _make_function(RULES["sparse_adam"])
rowwise_adagrad = _make_function(RULES["rowwise_adagrad"])
