"""Schedules built from other schedules or from a Python function.

Composition is plain Python: the pieces are pure functions of the step, so
joining them is a few lines. Any state (a ReduceOnPlateau inside) is forwarded
by state_dict / load_state_dict.
"""

from __future__ import annotations

import bisect
import math
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional

from .._arguments import in_range, integer, non_negative
from ._base import Schedule, ScheduleLike, children_state, expect_keys, load_children_state
from ._coerce import as_schedule, as_schedule_list

__all__ = ["Lambda", "Sequential", "Chained", "Warmup"]


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
        self.lr: float = non_negative("lr", lr)
        if not callable(fn):
            raise TypeError(f"fn must be callable, got {type(fn).__name__}")
        self.fn = fn

    def _value(self, t: int) -> float:
        return self.lr * float(self.fn(t))

    @property
    def base(self) -> Optional[float]:
        return self.lr


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
        self.schedules: List[Schedule] = as_schedule_list("schedules", schedules)
        if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Iterable):
            raise TypeError(f"milestones must be a sequence of integers, got {type(milestones).__name__}")
        self.milestones: List[int] = [integer(f"milestones[{i}]", m, 1) for i, m in enumerate(milestones)]
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

    @property
    def base(self) -> Optional[float]:
        """The base its schedules share (as torch's schedulers share one optimizer), else ``None``."""
        bases = {schedule.base for schedule in self.schedules}
        return bases.pop() if len(bases) == 1 else None

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedules": [state of each schedule]}``."""
        return {"schedules": children_state(self.schedules)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state of each schedule from :meth:`state_dict` output."""
        expect_keys("Sequential", state, ["schedules"])
        load_children_state("Sequential", self.schedules, state["schedules"])


class Chained(Schedule):
    """Schedules acting together on one learning rate, in torch's idiom (torch ``ChainedScheduler``).

    Torch chains schedulers that all drive the same optimizer: each multiplies
    the learning rate by its own factor. Here each schedule is written as a
    torch user writes its scheduler, on the optimizer's learning rate: its
    :attr:`~Schedule.base` (the ``lr`` argument for most schedules) is that
    learning rate, and ``s_i(t) / base`` is the factor it applies. With the
    common base :math:`b`,

    .. math:: s(t) = b \\prod_i \\frac{s_i(t)}{b}

    This equals torch's ``ChainedScheduler`` for schedulers whose step
    multiplies the current learning rate: StepLR, MultiStepLR, ExponentialLR,
    LinearLR, PolynomialLR, and CosineAnnealingLR with ``eta_min=0`` before
    ``T_max``. (Torch's schedulers that set the learning rate outright, such as
    OneCycleLR and CyclicLR, overwrite each other's factors when chained; here
    they still contribute ``s_i(t) / b``.) To multiply the values themselves,
    e.g. a learning-rate schedule by a schedule of factors with ``lr=1.0``,
    write ``s1 * s2`` (a :class:`Product`).

    Args:
        schedules: The schedules (or constants), at least one, all with the
            same base.

    Returns:
        Called with ``t``: the value above.

    Raises:
        ValueError: if a schedule has no base (a momentum schedule), if the
            bases differ, or if the base is 0 (no factor can be taken from it).

    Examples:
        >>> from lrcore.schedules import Linear, MultiStepDecay
        >>> s = Chained([Linear(0.1, start_factor=0.4, total_steps=3), MultiStepDecay(0.1, [4, 8], 0.1)])
        >>> [round(s(t), 6) for t in (0, 3, 4, 8)]
        [0.04, 0.1, 0.01, 0.001]
    """

    _fields = ("schedules",)

    def __init__(self, schedules: Iterable[ScheduleLike]) -> None:
        self.schedules: List[Schedule] = as_schedule_list("schedules", schedules)
        self._base = _common_base(self.schedules)

    def _value(self, t: int) -> float:
        base = self._base
        value = base
        for schedule in self.schedules:
            value *= schedule(t) / base
        return value

    @property
    def base(self) -> Optional[float]:
        return self._base

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedules": [state of each schedule]}``."""
        return {"schedules": children_state(self.schedules)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the state of each schedule from :meth:`state_dict` output."""
        expect_keys("Chained", state, ["schedules"])
        load_children_state("Chained", self.schedules, state["schedules"])


def _common_base(schedules: List[Schedule]) -> float:
    """The base shared by chained schedules; ValueError naming the schedule that breaks the rule."""
    bases: List[float] = []
    for index, schedule in enumerate(schedules):
        base = schedule.base
        if base is None:
            raise ValueError(
                f"schedules[{index}] ({type(schedule).__name__}) has no base learning rate to take a "
                "factor from (see Schedule.base); Chained needs learning-rate schedules"
            )
        bases.append(base)
    first = bases[0]
    for index, base in enumerate(bases[1:], start=1):
        # A relative tolerance lets bases that went through arithmetic (0.5 * Constant(0.2)) still match.
        if not math.isclose(base, first, rel_tol=1e-12, abs_tol=0.0):
            raise ValueError(
                f"schedules must share one base learning rate, as torch's chained schedulers share the "
                f"optimizer's: schedules[0] has base {first!r}, schedules[{index}] has {base!r}; "
                "to multiply their values instead, write s1 * s2"
            )
    if first == 0.0:
        raise ValueError("schedules have base learning rate 0: the factors they apply are undefined")
    return first


class Warmup(Schedule):
    """A linear warmup in front of a schedule.

    With :math:`W` = ``warmup_steps`` and :math:`f_0` = ``start_factor``:

    .. math:: s(t) = \\begin{cases} s_0(0) \\left(f_0 + (1 - f_0)\\, t / W\\right) & t < W \\\\
              s_0(t - W) & t \\ge W \\end{cases}

    The ramp is the formula of :class:`Linear` with ``lr = schedule(0)``. Equals torch's
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
        self.schedule: Schedule = as_schedule("schedule", schedule)
        self.warmup_steps: int = integer("warmup_steps", warmup_steps, 0)
        self.start_factor: float = in_range("start_factor", start_factor, 0.0, 1.0)

    def _value(self, t: int) -> float:
        if t >= self.warmup_steps:
            return self.schedule(t - self.warmup_steps)
        # Linear's formula with lr = schedule(0), written out because Linear itself
        # refuses start_factor = 0 (torch's LinearLR divides by it), which a warmup allows.
        progress = t / self.warmup_steps
        return self.schedule(0) * ((1.0 - self.start_factor) * progress + self.start_factor)

    @property
    def base(self) -> Optional[float]:
        return self.schedule.base

    def state_dict(self) -> Dict[str, Any]:
        """``{"schedule": state of the wrapped schedule}``."""
        return {"schedule": self.schedule.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore the wrapped schedule's state from :meth:`state_dict` output."""
        expect_keys("Warmup", state, ["schedule"])
        self.schedule.load_state_dict(state["schedule"])
