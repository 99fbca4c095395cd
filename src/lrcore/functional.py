"""The update rules as functions: one optimizer step over lists of arrays, in place.

This is the layer the optimizer classes call, public for frameworks that keep
their own state. Every function takes parallel lists (one entry per tensor):
parameters, gradients and the rule's state arrays, all C-contiguous numpy
arrays of one dtype per tensor (float32 or float64; tensors may differ). A
``None`` gradient skips that tensor: nothing of it is read or written and its
step counter stays. Everything is checked before anything is written; a bad
argument raises ``TypeError`` or ``ValueError`` naming it and leaves every
array untouched. The whole list is one native call, run without the GIL.

``steps`` is an int64 array with one counter per tensor: the number of steps
already applied to it. Each call increments the counters of the tensors it
updates and uses the new value (so start from zeros).

The formulas are those of torch.optim's single-tensor implementations; each
function's docstring states its own.
"""

from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from . import _core

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd", "state_like"]

ArrayList = Sequence[np.ndarray]
GradList = Sequence[Optional[np.ndarray]]


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


def sgd(
    params: ArrayList,
    grads: GradList,
    momentum_buffers: Optional[List[Optional[np.ndarray]]] = None,
    *,
    lr: float = 1e-3,
    momentum: float = 0.0,
    dampening: float = 0.0,
    weight_decay: float = 0.0,
    nesterov: bool = False,
    maximize: bool = False,
) -> None:
    """Stochastic gradient descent with optional (Nesterov) momentum.

    With ``s = -1`` when maximizing and ``+1`` otherwise::

        g = s * grad + weight_decay * p
        b = g                                   (first momentum step)
        b = momentum * b + (1 - dampening) * g  (later steps)
        p = p - lr * (g + momentum * b)         (nesterov)
        p = p - lr * b                          (momentum != 0)
        p = p - lr * g                          (momentum == 0)

    Args:
        params: parameter arrays, updated in place.
        grads: one gradient per parameter (or ``None`` to skip it).
        momentum_buffers: required when ``momentum != 0``: a list with one
            entry per parameter; ``None`` entries are replaced by new arrays
            on their first momentum step.
    """
    _core.sgd_step(
        params, grads, momentum_buffers, None, lr=lr, momentum=momentum, dampening=dampening,
        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
    )


def adagrad(
    params: ArrayList,
    grads: GradList,
    state_sums: ArrayList,
    steps: np.ndarray,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> None:
    """AdaGrad.

    At step ``t`` (1-based, per tensor)::

        g   = s * grad + weight_decay * p
        clr = lr / (1 + (t - 1) * lr_decay)
        sum = sum + g * g
        p   = p - clr * g / (sqrt(sum) + eps)

    ``state_sums`` start at ``initial_accumulator_value`` (0 by default).
    """
    _core.adagrad_step(
        params, grads, state_sums, steps, lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
        eps=eps, maximize=maximize,
    )


def rmsprop(
    params: ArrayList,
    grads: GradList,
    square_avgs: ArrayList,
    steps: np.ndarray,
    grad_avgs: Optional[ArrayList] = None,
    momentum_buffers: Optional[ArrayList] = None,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> None:
    """RMSprop.

    ::

        g = s * grad + weight_decay * p
        v = alpha * v + (1 - alpha) * g * g
        a = lerp(a, g, 1 - alpha);  r = sqrt(v - a * a) + eps    (centered)
        r = sqrt(v) + eps                                        (otherwise)
        b = momentum * b + g / r;   p = p - lr * b                (momentum > 0)
        p = p - lr * g / r                                       (otherwise)

    ``grad_avgs`` is required when centered and ``momentum_buffers`` when
    ``momentum > 0``; all state starts at zero.
    """
    _core.rmsprop_step(
        params, grads, square_avgs, grad_avgs, momentum_buffers, steps, lr=lr, alpha=alpha,
        eps=eps, weight_decay=weight_decay, momentum=momentum, centered=centered,
        maximize=maximize,
    )


def adam(
    params: ArrayList,
    grads: GradList,
    exp_avgs: ArrayList,
    exp_avg_sqs: ArrayList,
    steps: np.ndarray,
    max_exp_avg_sqs: Optional[ArrayList] = None,
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None:
    """Adam, with the L2 penalty added to the gradient.

    At step ``t`` (1-based, per tensor)::

        g = s * grad + weight_decay * p
        m = lerp(m, g, 1 - beta1)
        v = beta2 * v + (1 - beta2) * g * g
        v_max = max(v_max, v), used instead of v below          (amsgrad)
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    ``max_exp_avg_sqs`` is required when ``amsgrad``; all state starts at zero.
    """
    _core.adam_step(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr=lr, beta1=beta1,
        beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
        decoupled_weight_decay=False,
    )


def adamw(
    params: ArrayList,
    grads: GradList,
    exp_avgs: ArrayList,
    exp_avg_sqs: ArrayList,
    steps: np.ndarray,
    max_exp_avg_sqs: Optional[ArrayList] = None,
    *,
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> None:
    """AdamW: Adam with decoupled weight decay.

    The parameter first shrinks, ``p = p * (1 - lr * weight_decay)``, then
    takes the Adam step of :func:`adam` with no L2 term in the gradient.
    """
    _core.adam_step(
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, lr=lr, beta1=beta1,
        beta2=beta2, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize,
        decoupled_weight_decay=True,
    )
