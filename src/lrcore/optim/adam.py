"""Adam and AdamW (torch.optim.Adam / torch.optim.AdamW semantics)."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Sequence, Tuple

import numpy as np

from .. import _core
from ._optimizer import Optimizer, state_like

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam, optionally AMSGrad, with weight decay as an L2 term in the gradient.

    The formula is in :func:`lrcore.functional.adam`.

    Args:
        params: arrays or parameter groups (see :class:`Optimizer`).
        lr: learning rate (number or schedule).
        betas: decay rates of the first and second moment estimates; each a number or a schedule.
        eps: added to the denominator for numerical stability.
        weight_decay: L2 penalty added to the gradient.
        amsgrad: normalize by the running maximum of the second moment.
        maximize: ascend the objective instead of descending it.
        skip_nonfinite: skip the whole step when a gradient has a NaN or Inf (see :meth:`Optimizer.step`).
    """

    _numeric_hyperparameters = ("lr", "betas", "eps", "weight_decay")
    _flag_hyperparameters = ("amsgrad", "maximize")
    _state_names = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _decoupled_weight_decay = False

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3, betas: Tuple[Any, Any] = (0.9, 0.999),
                 eps: Any = 1e-8, weight_decay: Any = 0.0, amsgrad: bool = False, maximize: bool = False, *,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize), skip_nonfinite=skip_nonfinite)

    def _validate(self, values: Dict[str, Any]) -> None:
        _core.validate_adam(lr=values["lr"], beta1=values["beta1"], beta2=values["beta2"], eps=values["eps"],
                            weight_decay=values["weight_decay"])

    def _new_state(self, group: Dict[str, Any], params: List[np.ndarray]) -> Dict[str, Any]:
        return {"exp_avgs": [state_like(p) for p in params], "exp_avg_sqs": [state_like(p) for p in params],
                "max_exp_avg_sqs": None, "steps": np.zeros(len(params), dtype=np.int64)}

    def _prepare_state(self, group: Dict[str, Any], state: Dict[str, Any], values: Dict[str, Any]) -> None:
        if values["amsgrad"] and state["max_exp_avg_sqs"] is None:
            state["max_exp_avg_sqs"] = [state_like(p) for p in group["params"]]

    def _step_group(self, group: Dict[str, Any], state: Dict[str, Any], grads: Sequence[Any],
                    values: Dict[str, Any]) -> None:
        _core.adam_step(group["params"], grads, state["exp_avgs"], state["exp_avg_sqs"], state["max_exp_avg_sqs"],
                        state["steps"], values["lr"], values["beta1"], values["beta2"], values["eps"],
                        values["weight_decay"], values["amsgrad"], values["maximize"],
                        self._decoupled_weight_decay)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay, ``p *= 1 - lr * weight_decay`` before each step.

    Same arguments as :class:`Adam`; ``weight_decay`` defaults to 1e-2.
    """

    _decoupled_weight_decay = True

    def __init__(self, params: Iterable[Any], lr: Any = 1e-3, betas: Tuple[Any, Any] = (0.9, 0.999),
                 eps: Any = 1e-8, weight_decay: Any = 1e-2, amsgrad: bool = False, maximize: bool = False, *,
                 skip_nonfinite: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                         maximize=maximize, skip_nonfinite=skip_nonfinite)
