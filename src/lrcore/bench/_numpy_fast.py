"""The benchmark rules in numpy without temporaries: every operation writes into preallocated scratch.

:mod:`lrcore.reference` is simple on purpose and allocates a new array for
almost every operation. This is the fairest numpy baseline: the same
operations in the same order and precision (so bitwise the same results),
each with ``out=``. It covers the configurations in :data:`RULES` only, and
the benchmark verifies it against the reference like every contender.
"""

from __future__ import annotations

import math
from typing import Callable, Dict, Sequence, Tuple

import numpy as np

from ._rules import Rule, State

__all__ = ["FastNumpyStep"]


class FastNumpyStep:
    """``step(params, grads, state)`` for one rule, with two scratch arrays sized for the largest parameter."""

    def __init__(self, rule: Rule, params: Sequence[np.ndarray]) -> None:
        largest = max(p.size for p in params)
        dtype = params[0].dtype
        self._scratch = (np.empty(largest, dtype), np.empty(largest, dtype))
        self._rule = rule
        self._step: Callable[[Sequence[np.ndarray], Sequence[np.ndarray], State], None] = {
            "sgd": self._sgd, "momentum": self._momentum, "adagrad": self._adagrad,
            "rmsprop": self._rmsprop, "adam": self._adam, "adamw": self._adam,
            "nadam": self._nadam, "radam": self._radam, "adamax": self._adamax, "lion": self._lion,
            "schedule_free_adamw": self._schedule_free, "schedule_free_sgd": self._schedule_free,
        }[rule.name]

    def __call__(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        self._step(params, grads, state)

    def _scratch_like(self, p: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        a, b = self._scratch
        return a[:p.size].reshape(p.shape), b[:p.size].reshape(p.shape)

    def _sgd(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        lr = self._rule.hyperparameters["lr"]
        for p, g in zip(params, grads):
            t, _ = self._scratch_like(p)
            np.multiply(g, p.dtype.type(-lr), out=t)
            p += t

    def _momentum(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        buffers = state["momentum_buffers"]
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            t, _ = self._scratch_like(p)
            if buffers[i] is None:
                buffers[i] = g.copy()
            else:
                buffers[i] *= dt(hp["momentum"])
                buffers[i] += g  # (1 - dampening) * g with dampening 0: exact
            np.multiply(buffers[i], dt(-hp["lr"]), out=t)
            p += t

    def _adagrad(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, lr_decay, eps = hp["lr"], hp.get("lr_decay", 0.0), hp.get("eps", 1e-10)
        steps, sums = state["steps"], state["state_sums"]
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            steps[i] += 1
            clr = lr / (1 + (int(steps[i]) - 1) * lr_decay)
            a, b = self._scratch_like(p)
            np.multiply(g, g, out=a)
            sums[i] += a
            np.sqrt(sums[i], out=a)
            a += dt(eps)
            np.multiply(g, dt(-clr), out=b)
            b /= a
            p += b

    def _rmsprop(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, alpha, eps = hp["lr"], hp["alpha"], hp.get("eps", 1e-8)
        steps, square_avgs = state["steps"], state["square_avgs"]
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            steps[i] += 1
            v = square_avgs[i]
            a, b = self._scratch_like(p)
            v *= dt(alpha)
            np.multiply(g, dt(1 - alpha), out=a)
            a *= g
            v += a
            np.sqrt(v, out=a)
            a += dt(eps)
            np.multiply(g, dt(-lr), out=b)
            b /= a
            p += b

    def _adam(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, beta1, beta2, eps = hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
        weight_decay = hp.get("weight_decay", 0.0)
        decoupled = self._rule.name == "adamw"
        assert decoupled or weight_decay == 0.0, "L2 weight decay is not part of the benchmark's Adam"
        assert abs(1 - beta1) < 0.5, "the reference's lerp takes its other branch"
        steps, exp_avgs, exp_avg_sqs = state["steps"], state["exp_avgs"], state["exp_avg_sqs"]
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            steps[i] += 1
            t = int(steps[i])
            m, v = exp_avgs[i], exp_avg_sqs[i]
            a, b = self._scratch_like(p)
            if decoupled and weight_decay != 0:
                p *= dt(1 - lr * weight_decay)
            np.subtract(g, m, out=a)          # m = lerp(m, g, 1 - beta1)
            a *= dt(1 - beta1)
            m += a
            v *= dt(beta2)
            np.multiply(g, dt(1 - beta2), out=a)
            a *= g
            v += a
            step_size = lr / (1 - beta1 ** t)
            bias_correction2_sqrt = (1 - beta2 ** t) ** 0.5
            np.sqrt(v, out=a)
            a /= dt(bias_correction2_sqrt)
            a += dt(eps)
            np.multiply(m, dt(-step_size), out=b)
            b /= a
            p += b

    def _moments(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, a: np.ndarray) -> None:
        """m = lerp(m, g, 1 - beta1) and v = beta2 * v + (1 - beta2) * g * g, with ``a`` as scratch."""
        hp = self._rule.hyperparameters
        dt = p.dtype.type
        assert abs(1 - hp["beta1"]) < 0.5, "the reference's lerp takes its other branch"
        np.subtract(g, m, out=a)
        a *= dt(1 - hp["beta1"])
        m += a
        v *= dt(hp["beta2"])
        np.multiply(g, dt(1 - hp["beta2"]), out=a)
        a *= g
        v += a

    def _nadam(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, beta1, beta2, eps = hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
        momentum_decay = hp.get("momentum_decay", 4e-3)
        steps, exp_avgs, exp_avg_sqs, mu_products = (state["steps"], state["exp_avgs"], state["exp_avg_sqs"],
                                                     state["mu_products"])
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            steps[i] += 1
            t = int(steps[i])
            mu = beta1 * (1.0 - 0.5 * float(0.96 ** (float(t) * momentum_decay)))
            mu_next = beta1 * (1.0 - 0.5 * float(0.96 ** (float(t + 1) * momentum_decay)))
            product = float(mu_products[i]) * mu
            m, v = exp_avgs[i], exp_avg_sqs[i]
            a, b = self._scratch_like(p)
            self._moments(p, g, m, v, a)
            np.divide(v, dt(1 - beta2 ** t), out=a)
            np.sqrt(a, out=a)
            a += dt(eps)
            np.multiply(g, dt((-lr * (1.0 - mu)) / (1.0 - product)), out=b)
            b /= a
            p += b
            np.multiply(m, dt((-lr * mu_next) / (1.0 - product * mu_next)), out=b)
            b /= a
            p += b
            mu_products[i][()] = product

    def _radam(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, beta1, beta2, eps = hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
        steps, exp_avgs, exp_avg_sqs = state["steps"], state["exp_avgs"], state["exp_avg_sqs"]
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            steps[i] += 1
            t = int(steps[i])
            m, v = exp_avgs[i], exp_avg_sqs[i]
            a, b = self._scratch_like(p)
            self._moments(p, g, m, v, a)
            beta2_power = beta2 ** float(t)
            bias_correction2 = 1 - beta2_power
            rho_inf = 2 / (1 - beta2) - 1
            rho_t = rho_inf - 2 * float(t) * beta2_power / bias_correction2
            np.divide(m, dt(1 - beta1 ** t), out=b)
            b *= dt(lr)
            if rho_t > 5:
                rectification = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
                np.sqrt(v, out=a)
                a += dt(eps)
                np.divide(dt(1), a, out=a)
                a *= dt(math.sqrt(bias_correction2))
                b *= a
                b *= dt(rectification)
            p -= b

    def _adamax(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, beta1, beta2, eps = hp["lr"], hp["beta1"], hp["beta2"], hp["eps"]
        assert abs(1 - beta1) < 0.5, "the reference's lerp takes its other branch"
        steps, exp_avgs, exp_infs = state["steps"], state["exp_avgs"], state["exp_infs"]
        for i, (p, g) in enumerate(zip(params, grads)):
            dt = p.dtype.type
            steps[i] += 1
            m, u = exp_avgs[i], exp_infs[i]
            a, b = self._scratch_like(p)
            np.subtract(g, m, out=a)
            a *= dt(1 - beta1)
            m += a
            u *= dt(beta2)
            np.abs(g, out=a)
            a += dt(eps)
            np.maximum(u, a, out=u)
            np.multiply(m, dt(-(lr / (1 - beta1 ** int(steps[i])))), out=b)
            b /= u
            p += b

    def _lion(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        hp = self._rule.hyperparameters
        lr, beta1, beta2 = hp["lr"], hp["beta1"], hp["beta2"]
        assert hp.get("weight_decay", 0.0) == 0.0, "weight decay is not part of the benchmark's Lion"
        for p, g, m in zip(params, grads, state["exp_avgs"]):
            dt = p.dtype.type
            a, b = self._scratch_like(p)
            np.multiply(m, dt(beta1), out=a)
            np.multiply(g, dt(1 - beta1), out=b)
            a += b
            np.sign(a, out=a)
            a *= dt(lr)
            p -= a
            m *= dt(beta2)
            np.multiply(g, dt(1 - beta2), out=b)
            m += b

    def _schedule_free(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: State) -> None:
        from ..reference import _schedule_free_group

        hp = self._rule.hyperparameters
        adamw = self._rule.name == "schedule_free_adamw"
        assert hp.get("weight_decay", 0.0) == 0.0, "weight decay is not part of the benchmark's schedule-free rules"
        lr, ckp1, k = _schedule_free_group(state["group_state"], hp["lr"], hp.get("warmup_steps", 0),
                                           hp.get("r", 0.0), hp.get("weight_lr_power", 2.0))
        beta = hp["beta1"] if adamw else hp["momentum"]
        zs = state["zs"]
        for i, (y, g) in enumerate(zip(params, grads)):
            dt = y.dtype.type
            if zs[i] is None:
                zs[i] = y.copy()
            z = zs[i]
            a, b = self._scratch_like(y)
            if adamw:
                beta2 = hp["beta2"]
                v = state["exp_avg_sqs"][i]
                v *= dt(beta2)
                np.multiply(g, dt(1 - beta2), out=a)
                a *= g
                v += a
                np.divide(v, dt(1 - beta2 ** (k + 1)), out=a)
                np.sqrt(a, out=a)
                a += dt(hp["eps"])
                np.divide(g, a, out=a)            # the normalized gradient u
            else:
                np.copyto(a, g)
            np.subtract(z, y, out=b)           # y = lerp(y, z, ckp1), torch's two-sided form
            if abs(ckp1) < 0.5:
                b *= dt(ckp1)
                y += b
            else:
                b *= dt(1) - dt(ckp1)
                np.subtract(z, b, out=y)
            np.multiply(a, dt(lr * (beta * (1 - ckp1) - 1)), out=b)
            y += b
            a *= dt(-lr)
            z += a
