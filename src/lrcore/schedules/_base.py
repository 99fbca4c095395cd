"""The Schedule base class, schedule arithmetic (Scaled, Product) and the helpers composites share.

This module imports no other schedule module: the closed forms and composites
build on it, never the other way round.
"""

from __future__ import annotations

import math
import numbers
import operator
from abc import ABC, abstractmethod
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .._arguments import non_negative

__all__ = ["Schedule", "Scaled", "Product"]


class Schedule(ABC):
    """A hyperparameter as a function of the step count.

    A schedule ``s`` is called with ``t``, the number of optimizer steps already
    taken (``0`` before the first step), and returns the value to use for step
    ``t + 1``. Calls are pure: the same ``t`` gives the same value (a
    :class:`ReduceOnPlateau` changes its values only when it observes a metric).

    Every lrcore optimizer hyperparameter accepts a float or a ``Schedule``.
    Checkpoints save :meth:`state_dict` and restore it with :meth:`load_state_dict`;
    both are empty for schedules that hold no state.

    Schedules multiply: ``0.5 * s`` and ``s * 0.5`` are a :class:`Scaled`,
    ``s1 * s2`` a :class:`Product` (the value is the product of the values).

    Subclasses implement :meth:`_value`; the public :meth:`__call__` checks ``t``.
    """

    #: Constructor arguments shown by ``repr`` (in order).
    _fields: Sequence[str] = ()

    # numpy scalars on the left of ``*`` must leave the product to __rmul__ instead of
    # turning the schedule into an object array.
    __array_ufunc__ = None

    def __call__(self, t: int) -> float:
        """Value at step ``t``.

        Args:
            t: Number of optimizer steps already taken (an integer >= 0).

        Returns:
            The hyperparameter value for step ``t + 1``.

        Raises:
            ValueError: if ``t`` is negative.
            TypeError: if ``t`` is not an integer.
        """
        return self._value(check_step(t))

    @abstractmethod
    def _value(self, t: int) -> float:
        """Value at a validated step ``t``."""

    @property
    def base(self) -> Optional[float]:
        """The learning rate this schedule scales, or ``None`` if it scales none.

        It is what torch records as a scheduler's ``base_lrs``: the optimizer's
        learning rate for the schedules that take an ``lr`` (so ``s(t) / base``
        is the factor torch's scheduler applies), ``base_lr`` for
        :class:`Cyclic`, ``initial_lr`` for :class:`OneCycle`. Momentum
        schedules have none. :class:`Chained` multiplies factors relative to it.
        """
        return None

    def state_dict(self) -> Dict[str, Any]:
        """The mutable state of this schedule (empty for a pure closed form)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore state produced by :meth:`state_dict` on an equally configured schedule.

        Raises:
            ValueError: if ``state`` holds keys this schedule does not know.
        """
        if state:
            raise ValueError(f"{type(self).__name__} holds no state, got keys {sorted(state)}")

    def __repr__(self) -> str:
        arguments = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__name__}({arguments})"

    def __mul__(self, other: Any) -> "Schedule":
        if isinstance(other, Schedule):
            return Product([self, other])
        if _is_real(other):
            return Scaled(self, other)
        return NotImplemented

    def __rmul__(self, other: Any) -> "Schedule":
        # Only numbers get here: a Schedule on the left is handled by its own __mul__.
        if _is_real(other):
            return Scaled(self, other)
        return NotImplemented


ScheduleLike = Union[Schedule, float]


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_step(t: Any) -> int:
    """``t`` as a non-negative int; TypeError for non-integers, ValueError below zero."""
    try:
        step = operator.index(t)
    except TypeError:
        raise TypeError(f"t must be an integer step count, got {type(t).__name__}") from None
    if step < 0:
        raise ValueError(f"t must be >= 0 (the number of steps taken), got {step}")
    return step


def check_schedule(name: str, value: Any) -> Schedule:
    """``value`` if it is a :class:`Schedule`, else TypeError naming ``name``."""
    if not isinstance(value, Schedule):
        raise TypeError(f"{name} must be a Schedule, got {type(value).__name__}")
    return value


def children_state(schedules: Sequence[Schedule]) -> List[Dict[str, Any]]:
    return [schedule.state_dict() for schedule in schedules]


def load_children_state(owner: str, schedules: Sequence[Schedule], states: Any) -> None:
    if not isinstance(states, (list, tuple)) or len(states) != len(schedules):
        raise ValueError(f"{owner} state must list the state of each of its {len(schedules)} schedules")
    for schedule, state in zip(schedules, states):
        schedule.load_state_dict(state)


def expect_keys(owner: str, state: Mapping[str, Any], keys: Iterable[str]) -> None:
    if set(state) != set(keys):
        raise ValueError(f"{owner} state must have keys {sorted(keys)}, got {sorted(state)}")


class Scaled(Schedule):
    """A schedule times a constant factor; what ``factor * schedule`` and ``schedule * factor`` build.

    .. math:: s(t) = \\mathrm{factor} \\cdot s_0(t)

    Its :attr:`base` is ``factor`` times the schedule's (``None`` if it has none).

    Args:
        schedule: The schedule to scale.
        factor: The constant factor (a finite real >= 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> from lrcore.schedules import StepDecay
        >>> s = 0.5 * StepDecay(1.0, step_size=2, gamma=0.1)
        >>> s
        Scaled(schedule=StepDecay(lr=1.0, step_size=2, gamma=0.1), factor=0.5)
        >>> s(0), s(2)
        (0.5, 0.05)
    """

    _fields = ("schedule", "factor")

    def __init__(self, schedule: Schedule, factor: float) -> None:
        self.schedule: Schedule = check_schedule("schedule", schedule)
        self.factor: float = non_negative("factor", factor)

    def _value(self, t: int) -> float:
        return self.factor * self.schedule(t)

    @property
    def base(self) -> Optional[float]:
        inner = self.schedule.base
        return None if inner is None else self.factor * inner

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedule": state of the scaled schedule}``."""
        return {"schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the scaled schedule's state from :meth:`state_dict` output."""
        expect_keys("Scaled", state, ["schedule"])
        self.schedule.load_state_dict(state["schedule"])


class Product(Schedule):
    """The product of the values of schedules; what ``s1 * s2`` builds.

    .. math:: s(t) = \\prod_i s_i(t)

    Unlike :class:`Chained` (which multiplies factors, as torch's
    ``ChainedScheduler`` does), the values themselves multiply: a learning-rate
    schedule times a schedule of factors (``lr=1.0``). ``s1 * s2 * s3`` is one
    ``Product`` of three. Its :attr:`base` is the product of the bases.

    Args:
        schedules: At least two schedules.

    Returns:
        Called with ``t``: the product above.

    Examples:
        >>> from lrcore.schedules import CosineAnnealing, StepDecay
        >>> s = CosineAnnealing(0.1, T_max=10) * StepDecay(1.0, step_size=5, gamma=0.5)
        >>> [round(s(t), 4) for t in (0, 5, 10)]
        [0.1, 0.025, 0.0]
    """

    _fields = ("schedules",)

    def __init__(self, schedules: Iterable[Schedule]) -> None:
        if isinstance(schedules, (str, bytes)) or not isinstance(schedules, Iterable):
            raise TypeError(f"schedules must be a sequence of schedules, got {type(schedules).__name__}")
        flat: List[Schedule] = []
        for index, schedule in enumerate(schedules):
            check_schedule(f"schedules[{index}]", schedule)
            # Flatten nested products so that s1 * s2 * s3 reads as one product of three.
            flat.extend(schedule.schedules if type(schedule) is Product else [schedule])
        if len(flat) < 2:
            raise ValueError(f"schedules must hold at least two schedules, got {len(flat)}")
        self.schedules: List[Schedule] = flat

    def _value(self, t: int) -> float:
        return math.prod(schedule(t) for schedule in self.schedules)

    @property
    def base(self) -> Optional[float]:
        product: float = 1  # as math.prod starts
        for schedule in self.schedules:
            base = schedule.base
            if base is None:
                return None
            product *= base
        return product

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedules": [state of each schedule]}``."""
        return {"schedules": children_state(self.schedules)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state of each schedule from :meth:`state_dict` output."""
        expect_keys("Product", state, ["schedules"])
        load_children_state("Product", self.schedules, state["schedules"])
