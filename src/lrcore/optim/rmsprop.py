"""RMSprop (torch.optim.RMSprop semantics)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Sequence

import numpy as np

from .. import _core
from ._optimizer import Optimizer, state_like

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running root-mean-square of the gradient.

    The formula is in :func:`lrcore.functional.rmsprop`.

    Args:
        params: arrays or parameter groups (see :class:`Optimizer`).
        lr: learning rate (number or schedule).
        alpha: smoothing constant of the running averages.
        eps: added to the root for numerical stability.
        weight_decay: L2 penalty added to the gradient.
        momentum: momentum factor (0 disables it).
        centered: normalize by the estimated variance instead of the raw second moment.
        maximize: ascend the objective instead of descending it.
        skip_nonfinite: skip the whole step when a gradient has a NaN or Inf (see :meth:`Optimizer.step`).
    """

    _numeric_hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum")
    _flag_hyperparameters = ("centered", "maximize")
    _state_names = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(self, params: Iterable[Any], lr: Any = 1e-2, alpha: Any = 0.99, eps: Any = 1e-8,
                 weight_decay: Any = 0.0, momentum: Any = 0.0, centered: bool = False,
                 maximize: bool = False, *, skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum,
                                      centered=centered, maximize=maximize), skip_nonfinite=skip_nonfinite)

    def _validate(self, values: Dict[str, Any]) -> None:
        _core.validate_rmsprop(lr=values["lr"], alpha=values["alpha"], eps=values["eps"],
                               weight_decay=values["weight_decay"], momentum=values["momentum"])

    def _new_state(self, group: Dict[str, Any], params: List[np.ndarray]) -> Dict[str, Any]:
        return {"square_avgs": [state_like(p) for p in params], "momentum_buffers": None,
                "grad_avgs": None, "steps": np.zeros(len(params), dtype=np.int64)}

    def _prepare_state(self, group: Dict[str, Any], state: Dict[str, Any], values: Dict[str, Any]) -> None:
        if values["momentum"] > 0 and state["momentum_buffers"] is None:
            state["momentum_buffers"] = [state_like(p) for p in group["params"]]
        if values["centered"] and state["grad_avgs"] is None:
            state["grad_avgs"] = [state_like(p) for p in group["params"]]

    def _step_group(self, group: Dict[str, Any], state: Dict[str, Any], grads: Sequence[Any],
                    values: Dict[str, Any]) -> None:
        _core.rmsprop_step(group["params"], grads, state["square_avgs"], state["grad_avgs"],
                           state["momentum_buffers"], state["steps"], values["lr"], values["alpha"],
                           values["eps"], values["weight_decay"], values["momentum"], values["centered"],
                           values["maximize"])
