"""The update rules under test, described once for every test module.

Each rule maps to: the lrcore optimizer class, its functional and reference
functions, how to build fresh state for the functional form, and a set of
option combinations that between them exercise every branch of the kernel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

import lrcore


@dataclass(frozen=True)
class Rule:
    name: str
    optimizer: type
    configs: List[Dict[str, Any]]
    torch_name: Optional[str]  # None: torch.optim has no such rule

    @property
    def description(self):
        return self.optimizer.rule

    def native_values(self, config) -> Dict[str, Any]:
        """The native hyperparameters of a class configuration (betas split, defaults filled in)."""
        description = self.description
        values = dict(description.fixed)
        for h in description.hyperparameters:
            value = config.get(h.name, h.default)
            if len(h.native) > 1:
                values.update(zip(h.native, value))
            elif h.native:
                values[h.native[0]] = value
        return values

    def torch_optimizer(self, params, **config):
        """The reference implementation's optimizer over torch tensors (single-tensor path), ready to
        step: torch.optim's class, or for ``torch_name = "schedulefree.<class>"`` the schedulefree
        package's, put in train mode (skips the test when that package is not installed)."""
        import pytest
        import torch

        if self.torch_name.startswith("schedulefree."):
            schedulefree = pytest.importorskip("schedulefree", reason="schedulefree is not installed")
            optimizer = getattr(schedulefree, self.torch_name.split(".", 1)[1])(params, foreach=False, **config)
            optimizer.train()
            return optimizer
        return getattr(torch.optim, self.torch_name)(params, foreach=False, **config)

    def functional_call(self, module, params, grads, state, config) -> None:
        """One step of the rule through `module` (lrcore.functional or lrcore.reference), by its description."""
        description = self.description
        values = self.native_values(config)
        values = {k: v for k, v in values.items() if k not in description.fixed}
        arguments = [state.get(name) for name in description.functional_arguments]
        getattr(module, description.name)(params, grads, *arguments, **values)

    def new_state(self, params, config) -> Dict[str, Any]:
        """Fresh state in the functional layout: what the configuration needs, as the optimizer creates it."""
        description = self.description
        needed = set(description.native.needed_states(self.native_values(config)))
        state: Dict[str, Any] = {}
        for s in description.states:
            if s.name not in needed:
                state[s.list_name] = None
            elif s.kernel_initialized:
                state[s.list_name] = [None] * len(params)
            else:
                fill = 0.0 if s.initial == "zero" else config.get(s.initial, 0.0)
                # Shaped by its parameter (Adafactor's row_var: last dimension 1; a per-row state: one
                # value per row), None where it has none.
                state[s.list_name] = [np.full(s.shape_for(p.shape), fill, dtype=p.dtype) if s.exists_for(p.shape)
                                      else None for p in params]
        for scalar in description.scalars:
            state[scalar.list_name] = [scalar.new() for _ in params]
        if "steps" in description.functional_arguments:
            state["steps"] = np.zeros(len(params), dtype=np.int64)
        if "group_state" in description.functional_arguments:
            # In train mode, as the optimizers of these tests start (see _Training).
            group_state = lrcore.functional.new_group_state(description.name)
            if description.has_modes:
                group_state[[g.name for g in description.group_scalars].index("train_mode")] = 1.0
            state["group_state"] = group_state
        return state


# The schedule-free optimizers start in eval mode (as the schedulefree package's do) and refuse
# to step there; the test modules that iterate over RULES step them right away, so they get
# them already switched to train mode (a no-op on fresh parameters). Module-level classes, so
# that they pickle.
class TrainingScheduleFreeAdamW(lrcore.ScheduleFreeAdamW):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.train()


class TrainingScheduleFreeSGD(lrcore.ScheduleFreeSGD):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.train()


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
    # Factored for parameters of 2 or more dimensions, unfactored for vectors: the test
    # modules' shapes include both (1-D sizes, (2, 3), (3, 4), (3, 5, 7), (3, 1, 5), ...).
    Rule("adafactor", lrcore.Adafactor, [
        dict(lr=0.01),
        dict(lr=0.05, weight_decay=0.1),
        dict(lr=0.01, eps=(1e-6, 1e-3), maximize=True),
        dict(lr=0.02, beta2_decay=-0.5, d=1.5, eps=(None, 1e-2), weight_decay=0.01, maximize=True),
    ], "Adafactor"),
    Rule("nadam", lrcore.NAdam, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True),
        dict(lr=0.01, betas=(0.3, 0.9), momentum_decay=0.01, maximize=True),  # lerp weight 0.7
    ], "NAdam"),
    Rule("radam", lrcore.RAdam, [
        dict(lr=0.01),  # un-adapted for steps 1-5 (rho_t <= 5), rectified after
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
        dict(lr=0.01, betas=(0.3, 0.5)),  # rho_inf = 3: never rectified; lerp weight 0.7
    ], "RAdam"),
    Rule("adamax", lrcore.Adamax, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, betas=(0.3, 0.9), eps=1e-3, maximize=True),  # lerp weight 0.7
    ], "Adamax"),
    Rule("lion", lrcore.Lion, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.1),
        dict(lr=0.01, betas=(0.5, 0.9), maximize=True),
    ], None),
    Rule("adadelta", lrcore.Adadelta, [
        dict(lr=1.0),
        dict(lr=0.5, rho=0.95, weight_decay=0.1),
        dict(lr=1.0, rho=0.0, eps=1e-4, maximize=True),
        dict(lr=0.1, rho=1.0, weight_decay=0.01, maximize=True),  # rho's closed upper end
    ], "Adadelta"),
    Rule("rprop", lrcore.Rprop, [
        dict(lr=0.01),
        dict(lr=0.01, etas=(0.3, 1.5), step_sizes=(1e-3, 0.02)),  # both ends of the clamp reached
        dict(lr=0.05, etas=(0.9, 1.05), step_sizes=(0.0, 1.0), maximize=True),
    ], "Rprop"),
    Rule("asgd", lrcore.ASGD, [
        dict(lr=0.01),  # t0 = 1e6: mu stays 1, so ax is a copy of the parameter
        dict(lr=0.05, lambd=0.01, alpha=0.5, t0=20.0, weight_decay=0.1),  # averaging from step 22
        dict(lr=0.02, t0=0.0, maximize=True),  # averaging from step 2
        dict(lr=0.01, lambd=0.0, alpha=1.0, t0=3.5, weight_decay=0.01, maximize=True),
    ], "ASGD"),
    Rule("schedule_free_adamw", TrainingScheduleFreeAdamW, [
        dict(lr=0.01),
        dict(lr=0.01, weight_decay=0.05, warmup_steps=10),
        dict(lr=0.01, betas=(0.3, 0.99), r=0.5, weight_lr_power=1.0),  # eval lerp weight -2.3: the other form
        dict(lr=0.02, warmup_steps=3, weight_lr_power=0.0, eps=1e-6),
    ], "schedulefree.AdamWScheduleFree"),
    Rule("schedule_free_sgd", TrainingScheduleFreeSGD, [
        dict(lr=0.05),
        dict(lr=0.05, momentum=0.5, weight_decay=0.01, warmup_steps=7),
        dict(lr=0.1, momentum=0.3, r=1.0, weight_lr_power=0.0),
    ], "schedulefree.SGDScheduleFree"),
]

#: Parameter shapes that reach every path of a rule whose state depends on the shape:
#: a scalar, vectors, matrices (one row, one column) and stacks of matrices.
PARAMETER_SHAPES = [(), (1,), (53,), (1, 9), (9, 1), (37, 53), (3, 19, 21), (2, 2, 3, 5)]

#: The rules for tables (row-sparse gradients, per-row state), tested in test_sparse_rows.py: SparseAdam
#: takes no dense gradient and torch has no row-wise AdaGrad, so the dense test modules above do not run them.
ROW_RULES = [
    Rule("sparse_adam", lrcore.SparseAdam, [
        dict(lr=0.01),
        dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, maximize=True),
    ], "SparseAdam"),
    Rule("rowwise_adagrad", lrcore.RowWiseAdagrad, [
        dict(lr=0.05),
        dict(lr=0.05, weight_decay=0.1, eps=1e-6, maximize=True),
    ], ""),
]

RULE_CASES = [(rule, config) for rule in RULES for config in rule.configs]
RULE_IDS = [f"{rule.name}-" + "-".join(f"{k}={v}" for k, v in config.items()) for rule, config in RULE_CASES]
# The cases torch.optim can check (Lion is not in torch.optim).
TORCH_RULE_CASES = [(rule, config) for rule, config in RULE_CASES if rule.torch_name is not None]
TORCH_RULE_IDS = [i for (rule, _), i in zip(RULE_CASES, RULE_IDS) if rule.torch_name is not None]

SIZES = [1, 7, 17, 1023, 4097, 100003]
DTYPES = [np.float32, np.float64]


def make_gradients(rng: np.random.Generator, shapes, dtype, steps: int) -> List[List[np.ndarray]]:
    """Fresh, non-zero gradients for each step."""
    return [[rng.standard_normal(shape).astype(dtype) + dtype(0.1) for shape in shapes] for _ in range(steps)]


