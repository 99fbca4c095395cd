"""AdaGrad (torch.optim.Adagrad semantics)."""

from __future__ import annotations

import numbers
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .. import _core
from ._optimizer import Optimizer, state_like

__all__ = ["Adagrad"]


class Adagrad(Optimizer):
    """AdaGrad: per-element steps scaled by the root of the summed squared gradients.

    The formula is in :func:`lrcore.functional.adagrad`.

    Args:
        params: arrays or parameter groups (see :class:`Optimizer`).
        lr: learning rate (number or schedule).
        lr_decay: learning-rate decay per step, ``clr = lr / (1 + (t - 1) * lr_decay)``.
        weight_decay: L2 penalty added to the gradient.
        initial_accumulator_value: starting value of the squared-gradient sums (>= 0).
        eps: added to the root for numerical stability.
        maximize: ascend the objective instead of descending it.
        skip_nonfinite: skip the whole step when a gradient has a NaN or Inf (see :meth:`Optimizer.step`).
    """

    _numeric_hyperparameters = ("lr", "lr_decay", "weight_decay", "eps")
    _flag_hyperparameters = ("maximize",)
    _state_names = ("sum",)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2, lr_decay: Any = 0.0, weight_decay: Any = 0.0,
                 initial_accumulator_value: float = 0.0, eps: Any = 1e-10, maximize: bool = False, *,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                                      initial_accumulator_value=initial_accumulator_value, eps=eps,
                                      maximize=maximize), skip_nonfinite=skip_nonfinite)

    def _validate(self, values: Dict[str, Any]) -> None:
        _core.validate_adagrad(lr=values["lr"], lr_decay=values["lr_decay"],
                               weight_decay=values["weight_decay"], eps=values["eps"])

    def _initial_state_array(self, group: Dict[str, Any], name: str, param: np.ndarray) -> Optional[np.ndarray]:
        return state_like(param, group["initial_accumulator_value"])

    def _new_state(self, group: Dict[str, Any], params: List[np.ndarray]) -> Dict[str, Any]:
        initial = group["initial_accumulator_value"]
        if isinstance(initial, bool) or not isinstance(initial, numbers.Real) or not 0.0 <= initial < float("inf"):
            raise ValueError(f"initial_accumulator_value must be a finite number >= 0, got {initial!r}")
        return {"sums": [self._initial_state_array(group, "sum", p) for p in params],
                "steps": np.zeros(len(params), dtype=np.int64)}

    def _step_group(self, group: Dict[str, Any], state: Dict[str, Any], grads: Sequence[Any],
                    values: Dict[str, Any]) -> None:
        _core.adagrad_step(group["params"], grads, state["sums"], state["steps"], values["lr"],
                           values["lr_decay"], values["weight_decay"], values["eps"], values["maximize"])
