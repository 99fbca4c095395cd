"""Plain numpy implementations of every update rule: the reference lrcore's kernels are tested against.

Same signatures and semantics as :mod:`lrcore.functional` (in place, ``None``
gradients skip a tensor, ``steps`` counters incremented), written with
idiomatic numpy one operation at a time in each array's own dtype, with the
per-step constants computed in double precision and rounded to that dtype, as
the kernels do. They are slow and simple on purpose; the benchmark uses them
as the numpy baseline.
"""

from __future__ import annotations

import math
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd", "nadam", "radam", "adamax", "lion",
           "schedule_free_adamw", "schedule_free_adamw_eval", "schedule_free_adamw_train",
           "schedule_free_sgd", "schedule_free_sgd_eval", "schedule_free_sgd_train",
           "sparse_adam", "rowwise_adagrad", "coalesce"]


def _gradient(param: np.ndarray, grad: np.ndarray, maximize: bool, weight_decay: float) -> np.ndarray:
    g = -grad if maximize else grad.copy()
    if weight_decay != 0:
        g += param.dtype.type(weight_decay) * param
    return g


def _lerp_(start: np.ndarray, end: np.ndarray, weight: float) -> None:
    """start <- lerp(start, end, weight) in torch's two-sided form."""
    w = start.dtype.type(weight)
    if abs(weight) < 0.5:
        start += w * (end - start)
    else:
        start[...] = end - (end - start) * (start.dtype.type(1) - w)


def coalesce(grad: Any) -> Tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a row-sparse gradient (:class:`lrcore.SparseRows`), ascending, and each row's
    values summed in the order given (the first value row, plus each duplicate in turn).

    Returns:
        (rows, values): int64 rows and the summed values, shape ``(len(rows), *values.shape[1:])``.
    """
    indices = np.asarray(grad.indices).astype(np.int64)
    values = np.asarray(grad.values)
    order = np.argsort(indices, kind="stable")
    rows, starts, counts = np.unique(indices[order], return_index=True, return_counts=True)
    summed = values[order[starts]].copy()
    for k in range(1, int(counts.max()) if len(counts) else 0):
        more = counts > k
        summed[more] = summed[more] + values[order[starts[more] + k]]
    return rows, summed


def _sparse(grad: Any) -> bool:
    return not isinstance(grad, np.ndarray)


def sgd(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
        momentum_buffers: Optional[List[Optional[np.ndarray]]] = None, *, lr: float = 1e-3,
        momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0, nesterov: bool = False,
        maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.sgd`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        if _sparse(grad):
            if momentum != 0 or weight_decay != 0:
                raise ValueError("momentum and weight_decay must be 0 with row-sparse gradients")
            rows, g = coalesce(grad)
            p[rows] = p[rows] + dt(-lr) * (-g if maximize else g)
            continue
        g = _gradient(p, grad, maximize, weight_decay)
        if momentum != 0:
            assert momentum_buffers is not None
            buf = momentum_buffers[i]
            if buf is None:
                buf = g.copy()
                momentum_buffers[i] = buf
            else:
                buf *= dt(momentum)
                buf += dt(1 - dampening) * g
            g = g + dt(momentum) * buf if nesterov else buf
        p += dt(-lr) * g


def adagrad(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
            state_sums: Sequence[np.ndarray], steps: np.ndarray, *, lr: float = 1e-2, lr_decay: float = 0.0,
            weight_decay: float = 0.0, eps: float = 1e-10, maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.adagrad`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        clr = lr / (1 + (int(steps[i]) - 1) * lr_decay)
        if _sparse(grad):
            if weight_decay != 0:
                raise ValueError("weight_decay must be 0 with row-sparse gradients")
            rows, g = coalesce(grad)
            g = -g if maximize else g
            total = state_sums[i][rows] + g * g
            state_sums[i][rows] = total
            p[rows] = p[rows] + dt(-clr) * (g / (np.sqrt(total) + dt(eps)))
            continue
        g = _gradient(p, grad, maximize, weight_decay)
        state_sums[i] += g * g
        std = np.sqrt(state_sums[i]) + dt(eps)
        p += dt(-clr) * g / std


def rmsprop(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
            square_avgs: Sequence[np.ndarray], steps: np.ndarray,
            grad_avgs: Optional[Sequence[np.ndarray]] = None,
            momentum_buffers: Optional[Sequence[np.ndarray]] = None, *, lr: float = 1e-2, alpha: float = 0.99,
            eps: float = 1e-8, weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False,
            maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.rmsprop`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        g = _gradient(p, grad, maximize, weight_decay)
        v = square_avgs[i]
        v *= dt(alpha)
        v += dt(1 - alpha) * g * g
        if centered:
            assert grad_avgs is not None
            a = grad_avgs[i]
            _lerp_(a, g, 1 - alpha)
            root = np.sqrt(v - a * a)
        else:
            root = np.sqrt(v)
        root += dt(eps)
        if momentum > 0:
            assert momentum_buffers is not None
            buf = momentum_buffers[i]
            buf *= dt(momentum)
            buf += g / root
            p += dt(-lr) * buf
        else:
            p += dt(-lr) * g / root


def _adam(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray],
          exp_avg_sqs: Sequence[np.ndarray], steps: np.ndarray, max_exp_avg_sqs: Optional[Sequence[np.ndarray]],
          lr: float, beta1: float, beta2: float, eps: float, weight_decay: float, amsgrad: bool, maximize: bool,
          decoupled: bool) -> None:
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        t = int(steps[i])
        if decoupled:
            g = -grad if maximize else grad.copy()
            if weight_decay != 0:
                p *= dt(1 - lr * weight_decay)
        else:
            g = _gradient(p, grad, maximize, weight_decay)
        m, v = exp_avgs[i], exp_avg_sqs[i]
        _lerp_(m, g, 1 - beta1)
        v *= dt(beta2)
        v += dt(1 - beta2) * g * g
        if amsgrad:
            assert max_exp_avg_sqs is not None
            np.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
            v = max_exp_avg_sqs[i]
        step_size = lr / (1 - beta1 ** t)
        bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
        denom = np.sqrt(v) / dt(bias_correction2_sqrt) + dt(eps)
        p += dt(-step_size) * m / denom


def adam(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray],
         exp_avg_sqs: Sequence[np.ndarray], steps: np.ndarray,
         max_exp_avg_sqs: Optional[Sequence[np.ndarray]] = None, *, lr: float = 1e-3, beta1: float = 0.9,
         beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False,
         maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.adam`."""
    _adam(params, grads, exp_avgs, exp_avg_sqs, steps, max_exp_avg_sqs, lr, beta1, beta2, eps, weight_decay,
          amsgrad, maximize, decoupled=False)


def adamw(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray],
          exp_avg_sqs: Sequence[np.ndarray], steps: np.ndarray,
          max_exp_avg_sqs: Optional[Sequence[np.ndarray]] = None, *, lr: float = 1e-3, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
          maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.adamw`."""
    _adam(params, grads, exp_avgs, exp_avg_sqs, steps, max_exp_avg_sqs, lr, beta1, beta2, eps, weight_decay,
          amsgrad, maximize, decoupled=True)


def _decayed_gradient(p: np.ndarray, grad: np.ndarray, maximize: bool, lr: float, weight_decay: float,
                      decoupled: bool) -> np.ndarray:
    """The gradient after maximize and weight decay; decoupled decay shrinks p in place instead."""
    if decoupled:
        if weight_decay != 0:
            p *= p.dtype.type(1 - lr * weight_decay)
        return -grad if maximize else grad.copy()
    return _gradient(p, grad, maximize, weight_decay)


def _nadam_momentum(beta1: float, momentum_decay: float, t: int) -> float:
    return beta1 * (1.0 - 0.5 * float(0.96 ** (float(t) * momentum_decay)))


def nadam(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray],
          exp_avg_sqs: Sequence[np.ndarray], mu_products: List[Optional[np.ndarray]], steps: np.ndarray, *,
          lr: float = 2e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0,
          momentum_decay: float = 4e-3, decoupled_weight_decay: bool = False, maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.nadam` (``mu_products``: 0-d float64 arrays, None entries created at 1)."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        t = int(steps[i])
        mu_product = mu_products[i]
        if mu_product is None:
            mu_product = mu_products[i] = np.array(1.0)
        g = _decayed_gradient(p, grad, maximize, lr, weight_decay, decoupled_weight_decay)
        mu = _nadam_momentum(beta1, momentum_decay, t)
        mu_next = _nadam_momentum(beta1, momentum_decay, t + 1)
        product = float(mu_product) * mu
        product_next = product * mu_next
        m, v = exp_avgs[i], exp_avg_sqs[i]
        _lerp_(m, g, 1 - beta1)
        v *= dt(beta2)
        v += dt(1 - beta2) * g * g
        denom = np.sqrt(v / dt(1 - beta2 ** t)) + dt(eps)
        p += dt((-lr * (1.0 - mu)) / (1.0 - product)) * g / denom
        p += dt((-lr * mu_next) / (1.0 - product_next)) * m / denom
        mu_product[()] = product


def radam(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray],
          exp_avg_sqs: Sequence[np.ndarray], steps: np.ndarray, *, lr: float = 1e-3, beta1: float = 0.9,
          beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, decoupled_weight_decay: bool = False,
          maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.radam`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        t = int(steps[i])
        g = _decayed_gradient(p, grad, maximize, lr, weight_decay, decoupled_weight_decay)
        m, v = exp_avgs[i], exp_avg_sqs[i]
        _lerp_(m, g, 1 - beta1)
        v *= dt(beta2)
        v += dt(1 - beta2) * g * g
        bias_correction1 = 1 - beta1 ** t
        beta2_power = beta2 ** float(t)
        bias_correction2 = 1 - beta2_power
        rho_inf = 2 / (1 - beta2) - 1
        rho_t = rho_inf - 2 * float(t) * beta2_power / bias_correction2
        update = m / dt(bias_correction1) * dt(lr)
        if rho_t > 5:
            rectification = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            adaptive = dt(1) / (np.sqrt(v) + dt(eps)) * dt(math.sqrt(bias_correction2))
            update = update * adaptive * dt(rectification)
        p -= update


def adamax(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray],
           exp_infs: Sequence[np.ndarray], steps: np.ndarray, *, lr: float = 2e-3, beta1: float = 0.9,
           beta2: float = 0.999, eps: float = 1e-8, weight_decay: float = 0.0, maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.adamax`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        g = _gradient(p, grad, maximize, weight_decay)
        m, u = exp_avgs[i], exp_infs[i]
        _lerp_(m, g, 1 - beta1)
        np.maximum(u * dt(beta2), np.abs(g) + dt(eps), out=u)
        clr = lr / (1 - beta1 ** int(steps[i]))
        p += dt(-clr) * m / u


def lion(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], exp_avgs: Sequence[np.ndarray], *,
         lr: float = 1e-4, beta1: float = 0.9, beta2: float = 0.99, weight_decay: float = 0.0,
         maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.lion` (np.sign: sign(0) = 0, a NaN stays NaN)."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        g = -grad if maximize else grad
        m = exp_avgs[i]
        direction = dt(beta1) * m + dt(1 - beta1) * g
        if weight_decay != 0:
            p *= dt(1 - lr * weight_decay)
        p -= dt(lr) * np.sign(direction)
        m[...] = dt(beta2) * m + dt(1 - beta2) * g
def _schedule_free_group(group_state: np.ndarray, lr: float, warmup_steps: float, r: float,
                         weight_lr_power: float) -> Tuple[float, float, int]:
    """The package's per-group bookkeeping: advances group_state [k, lr_max, weight_sum, train_mode]
    and returns (warmup-scaled lr, ckp1, k before the step)."""
    k, lr_max, weight_sum, train_mode = group_state
    if train_mode != 1.0:
        raise RuntimeError("the optimizer is in eval mode")
    k = int(k)
    lr = lr * ((k + 1) / warmup_steps if k < warmup_steps else 1.0)
    lr_max = max(lr, float(lr_max))
    weight = ((k + 1) ** r) * (lr_max ** weight_lr_power)
    weight_sum = float(weight_sum) + weight
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0
    group_state[:3] = (k + 1, lr_max, weight_sum)
    return lr, ckp1, k


def _schedule_free_z(zs: List[Optional[np.ndarray]], i: int, y: np.ndarray) -> np.ndarray:
    if zs[i] is None:
        zs[i] = y.copy()
    z = zs[i]
    assert z is not None
    return z


def schedule_free_adamw(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
                        zs: List[Optional[np.ndarray]], exp_avg_sqs: Sequence[np.ndarray], group_state: np.ndarray,
                        *, lr: float = 0.0025, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                        weight_decay: float = 0.0, warmup_steps: float = 0, r: float = 0.0,
                        weight_lr_power: float = 2.0) -> None:
    """Reference of :func:`lrcore.functional.schedule_free_adamw`."""
    lr, ckp1, k = _schedule_free_group(group_state, lr, warmup_steps, r, weight_lr_power)
    bias_correction2 = 1 - beta2 ** (k + 1)
    for i, (y, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = y.dtype.type
        z = _schedule_free_z(zs, i, y)
        v = exp_avg_sqs[i]
        v *= dt(beta2)
        v += dt(1 - beta2) * grad * grad
        denom = np.sqrt(v / dt(bias_correction2)) + dt(eps)
        u = grad / denom
        if weight_decay != 0:
            u += dt(weight_decay) * y
        _lerp_(y, z, ckp1)
        y += dt(lr * (beta1 * (1 - ckp1) - 1)) * u
        z += dt(-lr) * u


def schedule_free_sgd(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
                      zs: List[Optional[np.ndarray]], group_state: np.ndarray, *, lr: float = 1.0,
                      momentum: float = 0.9, weight_decay: float = 0.0, warmup_steps: float = 0, r: float = 0.0,
                      weight_lr_power: float = 2.0) -> None:
    """Reference of :func:`lrcore.functional.schedule_free_sgd`."""
    lr, ckp1, _ = _schedule_free_group(group_state, lr, warmup_steps, r, weight_lr_power)
    for i, (y, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = y.dtype.type
        z = _schedule_free_z(zs, i, y)
        u = grad.copy()
        if weight_decay != 0:
            u += dt(weight_decay) * y
        _lerp_(y, z, ckp1)
        y += dt(lr * (momentum * (1 - ckp1) - 1)) * u
        z += dt(-lr) * u


def _schedule_free_switch(params: Sequence[np.ndarray], zs: Sequence[Optional[np.ndarray]],
                          group_state: np.ndarray, beta: float, train: bool) -> None:
    if bool(group_state[3]) == train:
        return
    for p, z in zip(params, zs):
        if z is not None:
            _lerp_(p, z, 1 - beta if train else 1 - 1 / beta)
    group_state[3] = 1.0 if train else 0.0


def schedule_free_adamw_train(params: Sequence[np.ndarray], zs: Sequence[Optional[np.ndarray]],
                              group_state: np.ndarray, *, beta1: float = 0.9, **_: float) -> None:
    """Reference of :func:`lrcore.functional.schedule_free_adamw_train`."""
    _schedule_free_switch(params, zs, group_state, beta1, True)


def schedule_free_adamw_eval(params: Sequence[np.ndarray], zs: Sequence[Optional[np.ndarray]],
                             group_state: np.ndarray, *, beta1: float = 0.9, **_: float) -> None:
    """Reference of :func:`lrcore.functional.schedule_free_adamw_eval`."""
    _schedule_free_switch(params, zs, group_state, beta1, False)


def schedule_free_sgd_train(params: Sequence[np.ndarray], zs: Sequence[Optional[np.ndarray]],
                            group_state: np.ndarray, *, momentum: float = 0.9, **_: float) -> None:
    """Reference of :func:`lrcore.functional.schedule_free_sgd_train`."""
    _schedule_free_switch(params, zs, group_state, momentum, True)


def schedule_free_sgd_eval(params: Sequence[np.ndarray], zs: Sequence[Optional[np.ndarray]],
                           group_state: np.ndarray, *, momentum: float = 0.9, **_: float) -> None:
    """Reference of :func:`lrcore.functional.schedule_free_sgd_eval`."""
    _schedule_free_switch(params, zs, group_state, momentum, False)

def sparse_adam(params: Sequence[np.ndarray], grads: Sequence[Any], exp_avgs: Sequence[np.ndarray],
                exp_avg_sqs: Sequence[np.ndarray], steps: np.ndarray, *, lr: float = 1e-3, beta1: float = 0.9,
                beta2: float = 0.999, eps: float = 1e-8, maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.sparse_adam` (row-sparse gradients only)."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        t = int(steps[i])
        rows, g = coalesce(grad)
        g = -g if maximize else g
        m = exp_avgs[i][rows]
        v = exp_avg_sqs[i][rows]
        m = m + (g - m) * dt(1 - beta1)
        v = v + (g * g - v) * dt(1 - beta2)
        exp_avgs[i][rows] = m
        exp_avg_sqs[i][rows] = v
        step_size = lr * (1 - beta2 ** t) ** 0.5 / (1 - beta1 ** t)
        p[rows] = p[rows] + dt(-step_size) * (m / (np.sqrt(v) + dt(eps)))


def _mean_squares(g: np.ndarray) -> np.ndarray:
    """Each row's mean of squares, in the kernels' order: element j goes to accumulator j % A (A = 64 bytes
    of the dtype), each accumulator adds in order from 0, then the A are added in index order."""
    count, length = g.shape
    width = 64 // g.dtype.itemsize
    padded = np.zeros((count, -(-length // width) * width), dtype=g.dtype)
    padded[:, :length] = g * g
    partial = np.zeros((count, width), dtype=g.dtype)
    for k in range(0, padded.shape[1], width):
        partial = partial + padded[:, k:k + width]
    total = partial[:, 0].copy()
    for a in range(1, width):
        total = total + partial[:, a]
    mean: np.ndarray = total / g.dtype.type(length)
    return mean


def rowwise_adagrad(params: Sequence[np.ndarray], grads: Sequence[Any], state_sums: Sequence[np.ndarray], *,
                    lr: float = 1e-2, eps: float = 1e-10, weight_decay: float = 0.0,
                    maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.rowwise_adagrad` (dense or row-sparse gradients)."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None or p.size == 0:
            continue
        dt = p.dtype.type
        table = p.reshape(p.shape[0] if p.ndim else 1, -1)
        sums = state_sums[i].reshape(-1)
        if _sparse(grad):
            rows, g = coalesce(grad)
            g = g.reshape(len(rows), -1)
        else:
            rows, g = np.arange(table.shape[0]), grad.reshape(table.shape)
        g = -g if maximize else g
        if weight_decay != 0:
            g = g + dt(weight_decay) * table[rows]
        total = sums[rows] + _mean_squares(g)
        sums[rows] = total
        multiplier = dt(-lr) / (np.sqrt(total) + dt(eps))
        table[rows] = table[rows] + multiplier[:, None] * g
