"""ReduceOnPlateau: reductions driven by an observed metric, scaling any schedule."""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, Optional, SupportsFloat

from .._arguments import choice, integer, non_negative
from ._base import Schedule, ScheduleLike
from ._coerce import as_schedule

__all__ = ["ReduceOnPlateau"]

_STATE_KEYS = ("best", "num_bad_epochs", "cooldown_counter", "scale", "num_observations", "last_step", "schedule")


class ReduceOnPlateau(Schedule):
    """Scale a schedule down when a metric stops improving (torch ``ReduceLROnPlateau``).

    Call :meth:`observe` once per evaluation with the monitored metric. After
    more than ``patience`` observations in a row without improvement, the
    scale is multiplied by ``factor``, then ``cooldown`` observations are
    ignored. With :math:`\\sigma` the current scale and :math:`s_0` the wrapped
    schedule,

    .. math:: s(t) = \\max\\big(\\sigma\\, s_0(t),\\ \\min(\\mathrm{min\\_lr},\\ s_0(t))\\big)

    that is, reductions scale the wrapped schedule but never take it below
    ``min_lr`` (and never raise a value that is already below ``min_lr``).
    A reduction that would change the current value by ``eps`` or less is
    skipped, the current value being the one at the most recent step this
    schedule was called with (step 0 before any call). Wrapping a constant
    reproduces torch exactly; torch cannot wrap a schedule.

    "Improvement" of a metric ``a`` over the best so far:

    - ``mode="min"``, ``threshold_mode="rel"``: ``a < best * (1 - threshold)``
    - ``mode="min"``, ``threshold_mode="abs"``: ``a < best - threshold``
    - ``mode="max"``, ``threshold_mode="rel"``: ``a > best * (1 + threshold)``
    - ``mode="max"``, ``threshold_mode="abs"``: ``a > best + threshold``

    Its state (best metric, counters, scale) round-trips through
    :meth:`state_dict` / :meth:`load_state_dict`, with the wrapped schedule's.

    Args:
        schedule_or_lr: The schedule to scale, or a constant learning rate.
        mode: ``"min"`` (lower metric is better) or ``"max"``.
        factor: Multiplier of each reduction, in [0, 1).
        patience: Observations without improvement tolerated before reducing (integer >= 0).
        threshold: Minimal change that counts as improvement (>= 0).
        threshold_mode: ``"rel"`` or ``"abs"``.
        cooldown: Observations to wait after a reduction before counting again (integer >= 0).
        min_lr: Lower bound for reduced values (>= 0).
        eps: Reductions changing the value by no more than this are skipped (>= 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = ReduceOnPlateau(1.0, factor=0.5, patience=1)
        >>> for loss in (3.0, 2.0, 2.0, 2.0):
        ...     s.observe(loss)
        >>> s(0)
        0.5
    """

    _fields = (
        "schedule",
        "mode",
        "factor",
        "patience",
        "threshold",
        "threshold_mode",
        "cooldown",
        "min_lr",
        "eps",
    )

    def __init__(
        self,
        schedule_or_lr: ScheduleLike,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        eps: float = 1e-8,
    ) -> None:
        self.schedule: Schedule = as_schedule("schedule_or_lr", schedule_or_lr)
        self.mode: str = choice("mode", mode, ("min", "max"))
        self.factor: float = non_negative("factor", factor)
        if self.factor >= 1.0:
            raise ValueError(f"factor must be < 1.0, got {self.factor}")
        self.patience: int = integer("patience", patience, 0)
        self.threshold: float = non_negative("threshold", threshold)
        self.threshold_mode: str = choice("threshold_mode", threshold_mode, ("rel", "abs"))
        self.cooldown: int = integer("cooldown", cooldown, 0)
        self.min_lr: float = non_negative("min_lr", min_lr)
        self.eps: float = non_negative("eps", eps)
        self.best: float = math.inf if self.mode == "min" else -math.inf
        self.num_bad_epochs: int = 0
        self.cooldown_counter: int = 0
        self.scale: float = 1.0
        self.num_observations: int = 0
        self.last_step: int = 0

    def _scaled(self, base: float, scale: float) -> float:
        return max(scale * base, min(self.min_lr, base))

    def _value(self, t: int) -> float:
        self.last_step = t
        return self._scaled(self.schedule(t), self.scale)

    def _is_better(self, metric: float) -> bool:
        if self.mode == "min" and self.threshold_mode == "rel":
            return metric < self.best * (1.0 - self.threshold)
        if self.mode == "min":
            return metric < self.best - self.threshold
        if self.threshold_mode == "rel":
            return metric > self.best * (self.threshold + 1.0)
        return metric > self.best + self.threshold

    def observe(self, metric: SupportsFloat) -> None:
        """Record one evaluation of the monitored metric, reducing the scale if it has plateaued.

        Args:
            metric: The metric (anything ``float()`` accepts, e.g. a 0-d array or tensor).
        """
        current = float(metric)
        self.num_observations += 1
        if self._is_better(current):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            base = self.schedule(self.last_step)
            reduced_scale = self.scale * self.factor
            if self._scaled(base, self.scale) - self._scaled(base, reduced_scale) > self.eps:
                self.scale = reduced_scale
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0

    @property
    def base(self) -> Optional[float]:
        return self.schedule.base

    @property
    def in_cooldown(self) -> bool:
        """Whether observations are currently ignored after a reduction."""
        return self.cooldown_counter > 0

    def __repr__(self) -> str:
        # The constructor names the wrapped schedule "schedule_or_lr"; say so, so the repr can be pasted back.
        return super().__repr__().replace("(schedule=", "(schedule_or_lr=", 1)

    def state_dict(self) -> Dict[str, Any]:
        """The plateau state and the wrapped schedule's state.

        Returns:
            ``{"best", "num_bad_epochs", "cooldown_counter", "scale",
            "num_observations", "last_step", "schedule"}``.
        """
        return {
            "best": self.best,
            "num_bad_epochs": self.num_bad_epochs,
            "cooldown_counter": self.cooldown_counter,
            "scale": self.scale,
            "num_observations": self.num_observations,
            "last_step": self.last_step,
            "schedule": self.schedule.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state saved by :meth:`state_dict` (hyperparameters come from the constructor).

        Raises:
            ValueError: if keys are missing or unexpected.
        """
        if set(state) != set(_STATE_KEYS):
            raise ValueError(f"ReduceOnPlateau state must have keys {sorted(_STATE_KEYS)}, got {sorted(state)}")
        self.schedule.load_state_dict(state["schedule"])
        self.best = float(state["best"])
        self.num_bad_epochs = int(state["num_bad_epochs"])
        self.cooldown_counter = int(state["cooldown_counter"])
        self.scale = float(state["scale"])
        self.num_observations = int(state["num_observations"])
        self.last_step = int(state["last_step"])
