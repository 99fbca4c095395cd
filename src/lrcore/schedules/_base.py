"""The Schedule base class and the argument checks shared by every schedule."""

from __future__ import annotations

import numbers
import operator
from abc import ABC, abstractmethod
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Union

__all__ = ["Schedule"]


class Schedule(ABC):
    """A hyperparameter as a function of the step count.

    A schedule ``s`` is called with ``t``, the number of optimizer steps already
    taken (``0`` before the first step), and returns the value to use for step
    ``t + 1``. Calls are pure: the same ``t`` gives the same value (a
    :class:`ReduceOnPlateau` changes its values only when it observes a metric).

    Every lrcore optimizer hyperparameter accepts a float or a ``Schedule``.
    Checkpoints save :meth:`state_dict` and restore it with :meth:`load_state_dict`;
    both are empty for schedules that hold no state.

    Subclasses implement :meth:`_value`; the public :meth:`__call__` checks ``t``.
    """

    #: Constructor arguments shown by ``repr`` (in order).
    _fields: Sequence[str] = ()

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


ScheduleLike = Union[Schedule, float]


def check_step(t: Any) -> int:
    """``t`` as a non-negative int; TypeError for non-integers, ValueError below zero."""
    try:
        step = operator.index(t)
    except TypeError:
        raise TypeError(f"t must be an integer step count, got {type(t).__name__}") from None
    if step < 0:
        raise ValueError(f"t must be >= 0 (the number of steps taken), got {step}")
    return step


def as_schedule(name: str, value: Any) -> Schedule:
    """A schedule as is, a real number as a :class:`Constant`."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        from ._closed_form import Constant

        return Constant(value)
    raise TypeError(f"{name} must be a Schedule or a real number, got {type(value).__name__}")


def as_schedule_list(name: str, values: Any) -> List[Schedule]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence of schedules, got {type(values).__name__}")
    schedules = [as_schedule(f"{name}[{index}]", value) for index, value in enumerate(values)]
    if not schedules:
        raise ValueError(f"{name} must hold at least one schedule")
    return schedules
