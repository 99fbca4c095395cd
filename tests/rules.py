"""The update rules under test, described once for every test module.

Each rule maps to: the lrcore optimizer class, its functional and reference
functions, how to build fresh state for the functional form, and a set of
option combinations that between them exercise every branch of the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np

import lrcore
from lrcore import functional, reference


@dataclass(frozen=True)
class Rule:
    name: str
    optimizer: type
    configs: List[Dict[str, Any]]
    torch_name: str

    def functional_call(self, module, params, grads, state, config) -> None:
        """One step of the rule through `module` (lrcore.functional or lrcore.reference)."""
        kwargs = dict(config)
        name = self.name
        if name == "sgd":
            module.sgd(params, grads, state["momentum_buffers"], **kwargs)
        elif name == "adagrad":
            kwargs.pop("initial_accumulator_value", None)
            module.adagrad(params, grads, state["state_sums"], state["steps"], **kwargs)
        elif name == "rmsprop":
            module.rmsprop(params, grads, state["square_avgs"], state["steps"], state["grad_avgs"],
                           state["momentum_buffers"], **kwargs)
        else:
            betas = kwargs.pop("betas", (0.9, 0.999))
            call = module.adam if name == "adam" else module.adamw
            call(params, grads, state["exp_avgs"], state["exp_avg_sqs"], state["steps"], state["max_exp_avg_sqs"],
                 beta1=betas[0], beta2=betas[1], **kwargs)

    def new_state(self, params, config) -> Dict[str, Any]:
        zeros = lambda: [np.zeros_like(p) for p in params]  # noqa: E731
        steps = np.zeros(len(params), dtype=np.int64)
        if self.name == "sgd":
            return {"momentum_buffers": [None] * len(params)}
        if self.name == "adagrad":
            init = config.get("initial_accumulator_value", 0.0)
            return {"state_sums": [np.full_like(p, init) for p in params], "steps": steps}
        if self.name == "rmsprop":
            return {"square_avgs": zeros(), "steps": steps,
                    "grad_avgs": zeros() if config.get("centered") else None,
                    "momentum_buffers": zeros() if config.get("momentum", 0) > 0 else None}
        return {"exp_avgs": zeros(), "exp_avg_sqs": zeros(), "steps": steps,
                "max_exp_avg_sqs": zeros() if config.get("amsgrad") else None}


RULES = [
    Rule("sgd", lrcore.SGD, [
        dict(lr=0.05),
        dict(lr=0.05, momentum=0.9),
        dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01),
        dict(lr=0.05, momentum=0.9, nesterov=True),
        dict(lr=0.05, momentum=0.5, nesterov=True, weight_decay=0.1, maximize=True),
        dict(lr=0.05, weight_decay=0.05, maximize=True),
    ], "SGD"),
    Rule("adagrad", lrcore.Adagrad, [
        dict(lr=0.05),
        dict(lr=0.05, lr_decay=0.01, weight_decay=0.05),
        dict(lr=0.05, initial_accumulator_value=0.1, eps=1e-6, maximize=True),
    ], "Adagrad"),
    Rule("rmsprop", lrcore.RMSprop, [
        dict(lr=0.01),
        dict(lr=0.01, centered=True),
        dict(lr=0.01, momentum=0.9),
        dict(lr=0.01, centered=True, momentum=0.5, weight_decay=0.01),
        dict(lr=0.01, alpha=0.45, centered=True, maximize=True),  # lerp weight 0.55: the other lerp form
    ], "RMSprop"),
    Rule("adam", lrcore.Adam, [
        dict(lr=0.01),
        dict(lr=0.01, amsgrad=True),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, betas=(0.3, 0.9), amsgrad=True, maximize=True),  # lerp weight 0.7
    ], "Adam"),
    Rule("adamw", lrcore.AdamW, [
        dict(lr=0.01),
        dict(lr=0.01, amsgrad=True, weight_decay=0.1),
        dict(lr=0.01, betas=(0.8, 0.99), maximize=True),
    ], "AdamW"),
]

RULE_CASES = [(rule, config) for rule in RULES for config in rule.configs]
RULE_IDS = [f"{rule.name}-" + "-".join(f"{k}={v}" for k, v in config.items()) for rule, config in RULE_CASES]

SIZES = [1, 7, 17, 1023, 4097, 100003]
DTYPES = [np.float32, np.float64]


def make_gradients(rng: np.random.Generator, shapes, dtype, steps: int) -> List[List[np.ndarray]]:
    """Fresh, non-zero gradients for each step."""
    return [[rng.standard_normal(shape).astype(dtype) + dtype(0.1) for shape in shapes] for _ in range(steps)]


