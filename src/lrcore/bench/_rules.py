"""The update rules the benchmark runs, each in one fixed configuration.

A rule knows (from its description) how to create its state, how to call lrcore's functional API and
the numpy reference with it, which arrays the memory roof must stream to move
the same bytes, and how torch.optim (and DeepSpeed) spell the same update.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from .._rules import RULES as DESCRIPTIONS
from .._rules import RuleDescription
from ..functional import state_like

__all__ = ["RULES", "Rule", "State", "parse_rules"]

#: A rule's state: ``"steps"`` (int64 counters, when the rule has them) and
#: one list of arrays per state name, as lrcore.functional takes them.
State = Dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """One update rule in the configuration the benchmark times.

    What the rule's state is, and how its functional call takes it, comes
    from the rule's description (:mod:`lrcore._rules`); this adds the
    configuration and how other libraries spell the same update.

    Attributes:
        name: the ``--rules`` token.
        title: human-readable configuration.
        function: name of the rule (in :mod:`lrcore.functional` and :mod:`lrcore.reference`).
        hyperparameters: keyword arguments of the functional call.
        torch_class: name of the torch.optim class computing the same update (None: torch has none).
        torch_arguments: its keyword arguments.
        deepspeed_adamw_mode: for DeepSpeedCPUAdam (Adam rules only): its adamw_mode flag.
        schedulefree_class: for the schedule-free rules, the schedulefree package's class (torch.optim
            has none; ``torch_class`` then names it too, and the torch contenders report it missing).
    """

    name: str
    title: str
    function: str
    hyperparameters: Mapping[str, Any]
    torch_class: Optional[str]
    torch_arguments: Mapping[str, Any]
    deepspeed_adamw_mode: Optional[bool] = None
    schedulefree_class: Optional[str] = None

    @property
    def description(self) -> RuleDescription:
        return DESCRIPTIONS[self.function]

    @property
    def state_names(self) -> Tuple[str, ...]:
        """The state lists this configuration reads and writes, in the functional call's order; each
        array of them is read and written once per step (with the parameter and the gradient they
        make the step's memory traffic)."""
        description = self.description
        native = {**{name: description.defaults[h.name][k] if len(h.native) > 1 else description.defaults[h.name]
                     for h in description.hyperparameters for k, name in enumerate(h.native)},
                  **description.fixed, **self.hyperparameters}
        needed = set(description.native.needed_states(native))
        return tuple(s.list_name for name in description.functional_arguments
                     for s in description.states if s.list_name == name and s.name in needed)

    @property
    def scalar_names(self) -> Tuple[str, ...]:
        """The per-tensor scalar lists (0-d float64 arrays), in the functional call's order, after the
        state lists and before the step counters; they move no memory worth counting."""
        description = self.description
        return tuple(s.list_name for name in description.functional_arguments
                     for s in description.scalars if s.list_name == name)

    @property
    def has_steps(self) -> bool:
        """Whether the functional call takes per-tensor step counters."""
        return "steps" in self.description.functional_arguments

    @property
    def created_on_first_step(self) -> Tuple[str, ...]:
        """State lists whose entries start as None and are created by the first step."""
        return tuple(s.list_name for s in self.description.states if s.kernel_initialized)

    @property
    def streamed_state_names(self) -> Tuple[str, ...]:
        """The state lists with one element per parameter element for every parameter: the ones whose
        traffic counts per element (Adafactor's row and column statistics are O(rows + columns))."""
        states = {s.list_name: s for s in self.description.states}
        return tuple(name for name in self.state_names
                     if states[name].shape == "param" and states[name].dims == "any")

    def bytes_per_element(self, itemsize: int) -> int:
        """Bytes one step must move per element: read the gradient, read and write the parameter and each
        state array shaped like it."""
        return (1 + 2 * (1 + len(self.streamed_state_names))) * itemsize

    def new_state(self, params: Sequence[np.ndarray], state_dtype: Any = None) -> State:
        """Fresh state, as the optimizer classes create it (zeros, or None for lazily created buffers and
        for parameters that have no such state), each array in its own shape; ``state_dtype`` as
        :func:`lrcore.functional.state_like` takes it (None: the parameter's state dtype)."""
        states = {s.list_name: s for s in self.description.states}
        state: State = {}
        for name in self.state_names:
            if name in self.created_on_first_step:
                state[name] = [None] * len(params)
            else:
                s = states[name]
                state[name] = [state_like(p, shape=s.shape_for(p.shape), dtype=state_dtype)
                               if s.exists_for(p.shape) else None for p in params]
        for scalar in self.description.scalars:
            state[scalar.list_name] = [scalar.new() for _ in params]
        if self.has_steps:
            state["steps"] = np.zeros(len(params), dtype=np.int64)
        if self.description.group_scalars:
            # The per-group state, in train mode (the parameters hold y) when the rule has modes.
            group_state = np.array([g.initial for g in self.description.group_scalars], dtype=np.float64)
            if self.description.has_modes:
                group_state[[g.name for g in self.description.group_scalars].index("train_mode")] = 1.0
            state["group_state"] = group_state
        return state


RULES: Dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("sgd", "SGD lr=1e-2", "sgd", {"lr": 1e-2}, "SGD", {"lr": 1e-2}),
        Rule("momentum", "SGD lr=1e-2 momentum=0.9", "sgd", {"lr": 1e-2, "momentum": 0.9}, "SGD",
             {"lr": 1e-2, "momentum": 0.9}),
        Rule("adagrad", "AdaGrad lr=1e-2", "adagrad", {"lr": 1e-2}, "Adagrad", {"lr": 1e-2}),
        Rule("rmsprop", "RMSprop lr=1e-2 alpha=0.99", "rmsprop", {"lr": 1e-2, "alpha": 0.99}, "RMSprop",
             {"lr": 1e-2, "alpha": 0.99}),
        Rule("adam", "Adam lr=1e-3 betas=(0.9, 0.999)", "adam",
             {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "Adam",
             {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}, deepspeed_adamw_mode=False),
        Rule("adamw", "AdamW lr=1e-3 weight_decay=1e-2", "adamw",
             {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2}, "AdamW",
             {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}, deepspeed_adamw_mode=True),
        Rule("adafactor", "Adafactor lr=1e-2 (factored for matrices: try --sizes 4096x4096)", "adafactor",
             {"lr": 1e-2}, "Adafactor", {"lr": 1e-2}),
        Rule("nadam", "NAdam lr=2e-3 betas=(0.9, 0.999)", "nadam",
             {"lr": 2e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "NAdam",
             {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8}),
        Rule("radam", "RAdam lr=1e-3 betas=(0.9, 0.999)", "radam",
             {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "RAdam",
             {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}),
        Rule("adamax", "Adamax lr=2e-3 betas=(0.9, 0.999)", "adamax",
             {"lr": 2e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "Adamax",
             {"lr": 2e-3, "betas": (0.9, 0.999), "eps": 1e-8}),
        Rule("lion", "Lion lr=1e-4 betas=(0.9, 0.99)", "lion",
             {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99}, None, {}),
        Rule("adadelta", "Adadelta lr=1.0 rho=0.9", "adadelta", {"lr": 1.0, "rho": 0.9, "eps": 1e-6}, "Adadelta",
             {"lr": 1.0, "rho": 0.9, "eps": 1e-6}),
        Rule("rprop", "Rprop lr=1e-2 etas=(0.5, 1.2)", "rprop",
             {"lr": 1e-2, "etaminus": 0.5, "etaplus": 1.2, "step_size_min": 1e-6, "step_size_max": 50.0}, "Rprop",
             {"lr": 1e-2, "etas": (0.5, 1.2), "step_sizes": (1e-6, 50.0)}),
        Rule("asgd", "ASGD lr=1e-2 (t0=1e6: ax copies the parameter)", "asgd",
             {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6}, "ASGD",
             {"lr": 1e-2, "lambd": 1e-4, "alpha": 0.75, "t0": 1e6}),
        Rule("schedule_free_adamw", "ScheduleFreeAdamW lr=2.5e-3 betas=(0.9, 0.999)", "schedule_free_adamw",
             {"lr": 2.5e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "AdamWScheduleFree",
             {"lr": 2.5e-3, "betas": (0.9, 0.999), "eps": 1e-8}, schedulefree_class="AdamWScheduleFree"),
        Rule("schedule_free_sgd", "ScheduleFreeSGD lr=1e-2 momentum=0.9", "schedule_free_sgd",
             {"lr": 1e-2, "momentum": 0.9}, "SGDScheduleFree", {"lr": 1e-2, "momentum": 0.9},
             schedulefree_class="SGDScheduleFree"),
    )
}


def parse_rules(tokens: Sequence[str]) -> List[Rule]:
    """Rules from ``--rules`` tokens (``all`` for every rule).

    Raises:
        ValueError: an unknown rule name.
    """
    rules: List[Rule] = []
    for raw in tokens:
        token = raw.strip().lower()
        if not token:
            continue
        if token == "all":
            rules.extend(r for r in RULES.values() if r not in rules)
            continue
        if token not in RULES:
            raise ValueError(f"unknown rule {raw!r}; choose from {', '.join(RULES)} or all")
        if RULES[token] not in rules:
            rules.append(RULES[token])
    return rules
