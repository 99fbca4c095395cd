"""Turning what users pass for a schedule (a Schedule or a number) into a Schedule.

It lives apart from _base because it needs Constant, which itself builds on
_base: with it here, the schedule modules import each other in one direction only.
"""

from __future__ import annotations

import numbers
from typing import Any, Iterable, List

from ._base import Schedule
from ._closed_form import Constant

__all__ = ["as_schedule", "as_schedule_list"]


def as_schedule(name: str, value: Any) -> Schedule:
    """A schedule as is, a real number as a :class:`Constant`."""
    if isinstance(value, Schedule):
        return value
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return Constant(float(value))  # the compiled constructor converts the same way
    raise TypeError(f"{name} must be a Schedule or a real number, got {type(value).__name__}")


def as_schedule_list(name: str, values: Any) -> List[Schedule]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence of schedules, got {type(values).__name__}")
    schedules = [as_schedule(f"{name}[{index}]", value) for index, value in enumerate(values)]
    if not schedules:
        raise ValueError(f"{name} must hold at least one schedule")
    return schedules
