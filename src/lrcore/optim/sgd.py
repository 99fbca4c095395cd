"""SGD with optional momentum, dampening and Nesterov momentum (torch.optim.SGD semantics)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np

from .. import _core
from ._optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum (the formula is in :func:`lrcore.functional.sgd`).

    Args:
        params: arrays or parameter groups (see :class:`Optimizer`).
        lr: learning rate (number or schedule).
        momentum: momentum factor; 0 disables momentum (number or schedule).
        dampening: dampening of the momentum (number or schedule).
        weight_decay: L2 penalty added to the gradient (number or schedule).
        nesterov: use Nesterov momentum (needs momentum > 0 and dampening 0).
        maximize: ascend the objective instead of descending it.
        skip_nonfinite: skip the whole step when a gradient has a NaN or Inf (see :meth:`Optimizer.step`).

    The momentum buffer of a parameter starts as its gradient on its first
    momentum step, as in torch.optim.SGD.
    """

    _numeric_hyperparameters = ("lr", "momentum", "dampening", "weight_decay")
    _flag_hyperparameters = ("nesterov", "maximize")
    _state_names = ("momentum_buffer",)

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3, momentum: Any = 0.0, dampening: Any = 0.0,
                 weight_decay: Any = 0.0, nesterov: bool = False, maximize: bool = False, *,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize), skip_nonfinite=skip_nonfinite)

    def _validate(self, values: Dict[str, Any]) -> None:
        _core.validate_sgd(lr=values["lr"], momentum=values["momentum"], dampening=values["dampening"],
                           weight_decay=values["weight_decay"], nesterov=values["nesterov"])

    def _new_state(self, group: Dict[str, Any], params: List[np.ndarray]) -> Dict[str, Any]:
        return {"momentum_buffers": [None] * len(params), "steps": np.zeros(len(params), dtype=np.int64)}

    def _initial_state_array(self, group: Dict[str, Any], name: str, param: np.ndarray) -> Optional[np.ndarray]:
        return None  # created from the gradient on the first momentum step

    def _step_group(self, group: Dict[str, Any], state: Dict[str, Any], grads: Sequence[Any],
                    values: Dict[str, Any]) -> None:
        _core.sgd_step(group["params"], grads, state["momentum_buffers"], state["steps"], values["lr"],
                       values["momentum"], values["dampening"], values["weight_decay"], values["nesterov"],
                       values["maximize"])
