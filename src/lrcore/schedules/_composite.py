"""Schedules built from other schedules or from a Python function.

Composition is plain Python: the pieces are pure functions of the step, so
joining them is a few lines. Any state (a ReduceOnPlateau inside) is forwarded
by state_dict / load_state_dict.
"""

from __future__ import annotations

import bisect
from typing import Any, Callable, Dict, Iterable, List, Mapping, Sequence

from .._core import schedules as _native
from .._arguments import in_range, integer, non_negative
from ._base import Schedule, ScheduleLike, as_schedule, as_schedule_list

__all__ = ["Lambda", "Sequential", "Chained", "Warmup"]


def _children_state(schedules: Sequence[Schedule]) -> List[Dict[str, Any]]:
    return [schedule.state_dict() for schedule in schedules]


def _load_children_state(owner: str, schedules: Sequence[Schedule], states: Any) -> None:
    if not isinstance(states, (list, tuple)) or len(states) != len(schedules):
        raise ValueError(f"{owner} state must list the state of each of its {len(schedules)} schedules")
    for schedule, state in zip(schedules, states):
        schedule.load_state_dict(state)


def _expect_keys(owner: str, state: Mapping[str, Any], keys: Iterable[str]) -> None:
    if set(state) != set(keys):
        raise ValueError(f"{owner} state must have keys {sorted(keys)}, got {sorted(state)}")


class Lambda(Schedule):
    """``lr`` times a factor computed by a Python function (torch ``LambdaLR``).

    .. math:: s(t) = \\mathrm{lr} \\cdot \\mathrm{fn}(t)

    ``fn`` should be pure for the schedule to be. Functions are not part of
    :meth:`state_dict`.

    Args:
        lr: Base value (>= 0).
        fn: Callable taking the step ``t`` and returning a factor.

    Returns:
        Called with ``t``: ``lr * fn(t)`` as a float.

    Examples:
        >>> Lambda(0.5, lambda t: 0.9 ** t)(2)
        0.405
    """

    _fields = ("lr", "fn")

    def __init__(self, lr: float, fn: Callable[[int], float]) -> None:
        self.lr = non_negative("lr", lr)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def _value(self, t: int) -> float:
        return self.lr * float(self.fn(t))


class Sequential(Schedule):
    """Schedules one after another (torch ``SequentialLR``).

    With milestones :math:`m_1 < \\dots < m_{n-1}` and :math:`m_0 = 0`, the
    schedule :math:`s_i` runs on :math:`m_i \\le t < m_{i+1}` and sees its own
    step count:

    .. math:: s(t) = s_i(t - m_i)

    Args:
        schedules: The schedules (or constants), at least one.
        milestones: ``len(schedules) - 1`` strictly increasing steps (integers >= 1)
            at which the next schedule takes over.

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> from lrcore.schedules import Linear, CosineAnnealing
        >>> s = Sequential([Linear(1.0, 0.5, 1.0, total_steps=2), CosineAnnealing(1.0, T_max=4)],
        ...                milestones=[2])
        >>> [s(t) for t in (0, 1, 2, 4, 6)]
        [0.5, 0.75, 1.0, 0.5, 0.0]
    """

    _fields = ("schedules", "milestones")

    def __init__(self, schedules: Iterable[ScheduleLike], milestones: Iterable[int]) -> None:
        self.schedules = as_schedule_list("schedules", schedules)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"milestones must be a sequence of integers, got {type(milestones).__name__}")
        self.milestones = [integer(f"milestones[{i}]", m, 1) for i, m in enumerate(milestones)]
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(
                f"milestones must have one entry fewer than schedules: got {len(self.milestones)} "
                f"milestones for {len(self.schedules)} schedules"
            )
        if any(later <= earlier for earlier, later in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones must be strictly increasing, got {self.milestones}")

    def _value(self, t: int) -> float:
        index = bisect.bisect_right(self.milestones, t)
        start = self.milestones[index - 1] if index else 0
        return self.schedules[index](t - start)

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedules": [state of each schedule]}``."""
        return {"schedules": _children_state(self.schedules)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state of each schedule from :meth:`state_dict` output."""
        _expect_keys("Sequential", state, ["schedules"])
        _load_children_state("Sequential", self.schedules, state["schedules"])


class Chained(Schedule):
    """The product of schedules (torch ``ChainedScheduler``).

    .. math:: s(t) = \\prod_i s_i(t)

    Torch chains schedulers that each multiply the learning rate by their own
    factor; the equivalent here gives the first schedule the learning rate
    and the others ``lr=1.0``, so they act as factors. (This matches torch for
    schedulers whose step is a pure multiplication: StepLR, MultiStepLR,
    ExponentialLR, LinearLR, PolynomialLR, ConstantLR, and CosineAnnealingLR
    with ``eta_min=0`` before ``T_max``.)

    Args:
        schedules: The schedules (or constants), at least one.

    Returns:
        Called with ``t``: the product above.

    Examples:
        >>> from lrcore.schedules import ExponentialDecay, StepDecay
        >>> s = Chained([StepDecay(1.0, step_size=2, gamma=0.5), ExponentialDecay(1.0, gamma=0.5)])
        >>> [s(t) for t in range(4)]
        [1.0, 0.5, 0.125, 0.0625]
    """

    _fields = ("schedules",)

    def __init__(self, schedules: Iterable[ScheduleLike]) -> None:
        self.schedules = as_schedule_list("schedules", schedules)

    def _value(self, t: int) -> float:
        value = 1.0
        for schedule in self.schedules:
            value *= schedule(t)
        return value

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedules": [state of each schedule]}``."""
        return {"schedules": _children_state(self.schedules)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state of each schedule from :meth:`state_dict` output."""
        _expect_keys("Chained", state, ["schedules"])
        _load_children_state("Chained", self.schedules, state["schedules"])


class Warmup(Schedule):
    """A linear warmup in front of a schedule.

    With :math:`W` = ``warmup_steps`` and :math:`f_0` = ``start_factor``:

    .. math:: s(t) = \\begin{cases} s_0(0) \\left(f_0 + (1 - f_0)\\, t / W\\right) & t < W \\\\
              s_0(t - W) & t \\ge W \\end{cases}

    The ramp is :class:`Linear` evaluated at ``lr = schedule(0)``. Equals torch's
    ``SequentialLR([LinearLR(start_factor, 1.0, W), scheduler], milestones=[W])``
    (torch needs ``start_factor > 0``).

    Args:
        schedule: The schedule (or constant) that follows the warmup.
        warmup_steps: Steps of the warmup (integer >= 0; 0 means no warmup).
        start_factor: Fraction of ``schedule(0)`` at ``t = 0``, in [0, 1].

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> from lrcore.schedules import CosineAnnealing
        >>> s = Warmup(CosineAnnealing(1.0, T_max=10), warmup_steps=4)
        >>> [s(t) for t in (0, 2, 4, 9)]
        [0.0, 0.5, 1.0, 0.5]
    """

    _fields = ("schedule", "warmup_steps", "start_factor")

    def __init__(self, schedule: ScheduleLike, warmup_steps: int, start_factor: float = 0.0) -> None:
        self.schedule = as_schedule("schedule", schedule)
        self.warmup_steps = integer("warmup_steps", warmup_steps, 0)
        self.start_factor = in_range("start_factor", start_factor, 0.0, 1.0)

    def _value(self, t: int) -> float:
        if t >= self.warmup_steps:
            return self.schedule(t - self.warmup_steps)
        ramp = _native.Linear(
            lr=self.schedule(0), start_factor=self.start_factor, end_factor=1.0, total_steps=self.warmup_steps
        )
        return ramp(t)

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedule": state of the wrapped schedule}``."""
        return {"schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the wrapped schedule's state from :meth:`state_dict` output."""
        _expect_keys("Warmup", state, ["schedule"])
        self.schedule.load_state_dict(state["schedule"])
