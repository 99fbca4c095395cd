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

__all__ = ["adagrad", "adam", "adamw", "rmsprop", "sgd", "nadam", "radam", "adamax", "lion", "adadelta", "rprop", "asgd",
           "schedule_free_adamw", "schedule_free_adamw_eval", "schedule_free_adamw_train",
           "schedule_free_sgd", "schedule_free_sgd_eval", "schedule_free_sgd_train", "adafactor",
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


# ---------------------------------------------------------------- Adafactor --
# The kernels' reduction order (cpp/src/kernels/factored_rules.hpp and
# cpp/src/adafactor_step.cpp), which this reference follows exactly so that
# the two agree bitwise: a sum along a row goes into 16 partial sums of the
# dtype (element i into partial i % 16, each in increasing order from +0.0),
# added in the tree ((a0 + a1) + (a2 + a3)) + ...; a column sum adds the rows of
# each of min(8, rows) blocks of rows in order from zero (block k holds rows
# [k * rows // K, (k + 1) * rows // K)), then the blocks in order; sums over
# rows (of a row's sum of p*p or u*u, and of row_var for its mean) are in
# double, in row order. A vector's rows are segments of 4096 elements.
_PARTIALS = 16
_COLUMN_BLOCKS = 8
_VECTOR_SEGMENT = 4096


def _row_sums(terms: np.ndarray) -> np.ndarray:
    """Each row's sum of a (rows, n) array, in the kernels' fixed order (padding adds +0.0, which changes nothing)."""
    rows, n = terms.shape
    blocks = -(-n // _PARTIALS)
    padded = np.zeros((rows, blocks * _PARTIALS), dtype=terms.dtype)
    padded[:, :n] = terms
    padded = padded.reshape(rows, blocks, _PARTIALS)
    acc = np.zeros((rows, _PARTIALS), dtype=terms.dtype)
    for j in range(blocks):
        acc = acc + padded[:, j, :]
    while acc.shape[1] > 1:
        acc = acc[:, 0::2] + acc[:, 1::2]
    return acc[:, 0]


def _ordered_sum(values: np.ndarray) -> float:
    """The sum in double, in order (np.cumsum adds sequentially)."""
    return float(np.cumsum(values.astype(np.float64))[-1])


def adafactor(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
              row_vars: Sequence[Optional[np.ndarray]], col_vars: Sequence[Optional[np.ndarray]],
              variances: Sequence[Optional[np.ndarray]], steps: np.ndarray, *, lr: float = 1e-2,
              beta2_decay: float = -0.8, eps1: Optional[float] = None, eps2: float = 1e-3, d: float = 1.0,
              weight_decay: float = 0.0, maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.adafactor`, reducing in the kernels' order (see above)."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        steps[i] += 1
        if p.size == 0:
            continue
        T = p.dtype.type
        t = float(steps[i])
        weight = t ** beta2_decay
        rho = min(lr, 1 / (t ** 0.5))
        e1 = float(np.finfo(p.dtype).eps) if eps1 is None else eps1
        g = -grad if maximize else grad.copy()
        root_size = p.size ** 0.5
        if p.ndim >= 2:
            columns, rows = p.shape[-1], p.shape[-2]
            matrices = p.size // (rows * columns)
            param_rows = _row_sums((p * p).reshape(-1, columns))
            square = (g * g).reshape(matrices, rows, columns)
            row_grad = _row_sums(square.reshape(-1, columns)).reshape(matrices, rows)
            blocks = min(_COLUMN_BLOCKS, rows)
            column_sum = np.zeros((matrices, columns), dtype=p.dtype)
            for b in range(blocks):
                acc = np.zeros((matrices, columns), dtype=p.dtype)
                for r in range(b * rows // blocks, (b + 1) * rows // blocks):
                    acc = acc + square[:, r, :]
                column_sum = acc if b == 0 else column_sum + acc
            row_state, col_state = row_vars[i], col_vars[i]
            assert row_state is not None and col_state is not None, "a matrix needs row_var and col_var"
            row_var = row_state.reshape(matrices, rows)
            col_var = col_state.reshape(matrices, columns)
            _lerp_(col_var, column_sum / T(rows), weight)
            _lerp_(row_var, row_grad / T(columns), weight)
            means = np.array([T(_ordered_sum(row_var[m]) / rows) for m in range(matrices)], dtype=p.dtype)
            means = np.maximum(means, T(e1))
            estimate = (row_var[:, :, None] * col_var[:, None, :]) / means[:, None, None]
            update = (T(1) / np.sqrt(np.maximum(estimate, T(e1 * e1)))) * g.reshape(matrices, rows, columns)
            update = update.reshape(p.shape)
            update_rows = _row_sums((update * update).reshape(-1, columns))
        else:
            variance = variances[i]
            assert variance is not None, "a vector needs variance"
            _lerp_(variance, g * g, weight)
            update = (T(1) / np.sqrt(np.maximum(variance, T(e1 * e1)))) * g
            segments = -(-p.size // _VECTOR_SEGMENT)

            def segment_sums(x: np.ndarray) -> np.ndarray:
                padded = np.zeros(segments * _VECTOR_SEGMENT, dtype=p.dtype)
                padded[:p.size] = x.reshape(-1)
                return _row_sums(padded.reshape(segments, _VECTOR_SEGMENT))

            param_rows = segment_sums(p * p)
            update_rows = segment_sums(update * update)
        param_norm = float(T(np.sqrt(_ordered_sum(param_rows))))
        alpha = max(eps2, param_norm / root_size) * rho
        update_norm = float(T(np.sqrt(_ordered_sum(update_rows))))
        clipping = max(1.0, update_norm / (root_size * d))
        if weight_decay != 0:
            p *= T(1 - lr * weight_decay)
        p += T(-alpha / clipping) * update


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


def adadelta(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]],
             square_avgs: Sequence[np.ndarray], acc_deltas: Sequence[np.ndarray],
             steps: Optional[np.ndarray] = None, *, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
             weight_decay: float = 0.0, maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.adadelta`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        if steps is not None:
            steps[i] += 1
        g = _gradient(p, grad, maximize, weight_decay)
        v, u = square_avgs[i], acc_deltas[i]
        v *= dt(rho)
        v += dt(1 - rho) * g * g
        std = np.sqrt(v + dt(eps))
        delta = np.sqrt(u + dt(eps)) / std * g
        u *= dt(rho)
        u += dt(1 - rho) * delta * delta
        p += dt(-lr) * delta


def _torch_sign(x: np.ndarray) -> np.ndarray:
    """torch.sign: 1, -1, or +0 for both zeros and for NaN (np.sign keeps NaN)."""
    one, zero = x.dtype.type(1), x.dtype.type(0)
    sign: np.ndarray = np.where(x > 0, one, zero) - np.where(x < 0, one, zero)
    return sign


def rprop(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], prevs: Sequence[np.ndarray],
          step_sizes: List[Optional[np.ndarray]], steps: Optional[np.ndarray] = None, *, lr: float = 1e-2,
          etaminus: float = 0.5, etaplus: float = 1.2, step_size_min: float = 1e-6, step_size_max: float = 50.0,
          maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.rprop`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        if steps is not None:
            steps[i] += 1
        if step_sizes[i] is None:
            step_sizes[i] = np.full_like(p, dt(lr))
        step_size = step_sizes[i]
        assert step_size is not None
        g = np.negative(grad) if maximize else grad.copy()  # an array also for a 0-d gradient
        g = np.asarray(g)
        product = g * prevs[i]
        factor = np.where(product > 0, dt(etaplus), np.where(product < 0, dt(etaminus), dt(1)))
        step_size *= factor
        # torch.clamp keeps NaN; np.clip's min/max would too, but say it explicitly.
        np.copyto(step_size, np.where(np.isnan(step_size), step_size,
                                      np.minimum(np.maximum(step_size, dt(step_size_min)), dt(step_size_max))))
        g[product < 0] = 0
        p += dt(-1) * _torch_sign(g) * step_size
        prevs[i][...] = g


def asgd(params: Sequence[np.ndarray], grads: Sequence[Optional[np.ndarray]], axs: Sequence[np.ndarray],
         mus: List[Optional[np.ndarray]], etas: List[Optional[np.ndarray]], steps: np.ndarray, *,
         lr: float = 1e-2, lambd: float = 1e-4, alpha: float = 0.75, t0: float = 1e6, weight_decay: float = 0.0,
         maximize: bool = False) -> None:
    """Reference of :func:`lrcore.functional.asgd`."""
    for i, (p, grad) in enumerate(zip(params, grads)):
        if grad is None:
            continue
        dt = p.dtype.type
        steps[i] += 1
        t = int(steps[i])
        for values in (etas, mus):
            if values[i] is None:
                values[i] = np.array(np.nan)
        eta_array, mu_array = etas[i], mus[i]
        assert eta_array is not None and mu_array is not None
        eta, mu = float(eta_array), float(mu_array)
        if np.isnan(eta):  # not set yet: as torch creates it, or as the previous step would have left it
            eta = lr if t == 1 else lr / ((1 + lambd * lr * (t - 1)) ** alpha)
        if np.isnan(mu):
            mu = 1.0 if t == 1 else 1 / max(1.0, (t - 1) - t0)
        g = _gradient(p, grad, maximize, weight_decay)
        p *= dt(1 - lambd * eta)
        p += dt(-eta) * g
        if mu != 1:
            axs[i] += (p - axs[i]) * dt(mu)
        else:
            axs[i][...] = p
        eta_array[()] = lr / ((1 + lambd * lr * t) ** alpha)
        mu_array[()] = 1 / max(1.0, t - t0)


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
