"""The update rules the benchmark runs, each in one fixed configuration.

A rule knows how to create its state, how to call lrcore's functional API and
the numpy reference with it, which arrays the memory roof must stream to move
the same bytes, and how torch.optim (and DeepSpeed) spell the same update.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..functional import state_like

__all__ = ["RULES", "Rule", "State", "parse_rules"]

#: A rule's state: ``"steps"`` (int64 counters, when the rule has them) and
#: one list of arrays per state name, as lrcore.functional takes them.
State = Dict[str, Any]


@dataclass(frozen=True)
class Rule:
    """One update rule in the configuration the benchmark times.

    Attributes:
        name: the ``--rules`` token.
        title: human-readable configuration.
        function: name of the function in :mod:`lrcore.functional` and :mod:`lrcore.reference`.
        state_names: the rule's state lists, in call order; each array of them
            is read and written once per step (so with the parameter and the
            gradient they make the step's memory traffic).
        has_steps: whether the function takes per-tensor step counters.
        hyperparameters: keyword arguments of the functional call.
        torch_class: name of the torch.optim class computing the same update.
        torch_arguments: its keyword arguments.
        deepspeed_adamw_mode: for DeepSpeedCPUAdam (Adam rules only): its adamw_mode flag.
        created_on_first_step: state lists whose entries start as None and are
            created by the first step (SGD's momentum buffers).
    """

    name: str
    title: str
    function: str
    state_names: Tuple[str, ...]
    has_steps: bool
    hyperparameters: Mapping[str, Any]
    torch_class: str
    torch_arguments: Mapping[str, Any]
    deepspeed_adamw_mode: Optional[bool] = None
    created_on_first_step: Tuple[str, ...] = field(default=())

    def bytes_per_element(self, itemsize: int) -> int:
        """Bytes one step must move per element: read the gradient, read and write the parameter and each state array."""
        return (1 + 2 * (1 + len(self.state_names))) * itemsize

    def new_state(self, params: Sequence[np.ndarray]) -> State:
        """Fresh state, as the optimizer classes create it (zeros, or None for lazily created buffers)."""
        state: State = {}
        for name in self.state_names:
            if name in self.created_on_first_step:
                state[name] = [None] * len(params)
            else:
                state[name] = [state_like(p) for p in params]
        if self.has_steps:
            state["steps"] = np.zeros(len(params), dtype=np.int64)
        return state


RULES: Dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule("sgd", "SGD lr=1e-2", "sgd", (), False, {"lr": 1e-2}, "SGD", {"lr": 1e-2}),
        Rule("momentum", "SGD lr=1e-2 momentum=0.9", "sgd", ("momentum_buffers",), False,
             {"lr": 1e-2, "momentum": 0.9}, "SGD", {"lr": 1e-2, "momentum": 0.9},
             created_on_first_step=("momentum_buffers",)),
        Rule("adagrad", "AdaGrad lr=1e-2", "adagrad", ("state_sums",), True, {"lr": 1e-2},
             "Adagrad", {"lr": 1e-2}),
        Rule("rmsprop", "RMSprop lr=1e-2 alpha=0.99", "rmsprop", ("square_avgs",), True,
             {"lr": 1e-2, "alpha": 0.99}, "RMSprop", {"lr": 1e-2, "alpha": 0.99}),
        Rule("adam", "Adam lr=1e-3 betas=(0.9, 0.999)", "adam", ("exp_avgs", "exp_avg_sqs"), True,
             {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}, "Adam",
             {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8}, deepspeed_adamw_mode=False),
        Rule("adamw", "AdamW lr=1e-3 weight_decay=1e-2", "adamw", ("exp_avgs", "exp_avg_sqs"), True,
             {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 1e-2}, "AdamW",
             {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}, deepspeed_adamw_mode=True),
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
