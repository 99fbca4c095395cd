"""The benchmark rules in numpy without temporaries: every operation writes into preallocated scratch.

:mod:`lrcore.reference` is simple on purpose and allocates a new array for
almost every operation. This is the fairest numpy baseline: the same
operations in the same order and precision (so bitwise the same results),
each with ``out=``. It covers the configurations in :data:`RULES` only, and
the benchmark verifies it against the reference like every contender.
"""

from __future__ import annotations

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
