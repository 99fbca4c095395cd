"""Closed-form schedules: the public Python faces of the C++ value types.

Each schedule is declared once, in cpp/include/lrcore/schedules.hpp: its
formula, its fields and their constraints. The compiled class of the same name
in lrcore._core.schedules is generated from that declaration (keyword
constructor that converts and validates, read-only fields, pickling, repr).
The classes here add only what Python users read: the signature with its
defaults and the docstring. Their ``__init__`` hands its arguments to the
compiled constructor unchanged, so every check happens once, in C++.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, ClassVar, Iterable, Literal, Mapping, Optional, SupportsIndex, Tuple, Type

from .._core import schedules as _native
from ._base import Schedule

if TYPE_CHECKING:
    from .._core import _NativeSchedule, _OneCycle
else:  # names the stubs define for type checkers only; at run time an annotation just needs a name
    _NativeSchedule = _OneCycle = object

# The string options of the cycle and 1cycle schedules (the C++ refuses any other name).
CyclicMode = Literal["triangular", "triangular2", "exp_range"]
AnnealStrategy = Literal["cos", "linear"]

__all__ = [
    "Constant",
    "StepDecay",
    "MultiStepDecay",
    "ExponentialDecay",
    "InverseTimeDecay",
    "PolynomialDecay",
    "Linear",
    "CosineAnnealing",
    "CosineAnnealingWarmRestarts",
    "Cyclic",
    "CyclicMomentum",
    "OneCycle",
    "OneCycleMomentum",
    "InverseSqrt",
]


class _ClosedForm(Schedule):
    """A schedule evaluated by the compiled type of the same name.

    A subclass gets, from the compiled type: ``_fields`` and one read-only
    property per field. Its ``__init__`` calls ``self._build(locals())``.
    The field annotations in each subclass's body are for type checkers only
    (an annotation without a value sets no class attribute); tests/test_stubs.py
    checks they name exactly the compiled type's fields.
    """

    _native_type: ClassVar[Type[_NativeSchedule]]
    _native: _NativeSchedule
    #: The field that is this schedule's :attr:`base` (None: the schedule has no base).
    _base_field: Optional[str] = "lr"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._native_type = getattr(_native, cls.__name__)
        cls._fields = cls._native_type._fields
        for name in cls._fields:
            if name not in cls.__dict__:
                setattr(cls, name, property(operator.attrgetter(f"_native.{name}"), doc=f"The ``{name}`` argument."))

    def _build(self, arguments: Mapping[str, Any]) -> None:
        self._native = self._native_type(**{name: arguments[name] for name in self._fields})

    # The compiled __call__ checks t itself (TypeError, ValueError), so no Python check here.
    def __call__(self, t: SupportsIndex) -> float:
        return self._native(t)

    def _value(self, t: int) -> float:
        return self._native(t)

    @property
    def base(self) -> Optional[float]:
        if self._base_field is None:
            return None
        value: float = getattr(self, self._base_field)
        return value


class Constant(_ClosedForm):
    """A constant value.

    .. math:: s(t) = \\mathrm{lr}

    Args:
        lr: The value (>= 0).

    Returns:
        Called with ``t``: ``lr``.

    Examples:
        >>> Constant(0.1)(1000)
        0.1
    """

    lr: float

    def __init__(self, lr: float) -> None:
        self._build(locals())


class StepDecay(_ClosedForm):
    """Decay by ``gamma`` every ``step_size`` steps (torch ``StepLR``).

    .. math:: s(t) = \\mathrm{lr} \\cdot \\gamma^{\\lfloor t / \\mathrm{step\\_size} \\rfloor}

    Args:
        lr: Initial value (>= 0).
        step_size: Steps between decays (integer >= 1).
        gamma: Multiplicative decay (> 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = StepDecay(1.0, step_size=10, gamma=0.5)
        >>> s(9), s(10), s(25)
        (1.0, 0.5, 0.25)
    """

    lr: float
    step_size: int
    gamma: float

    def __init__(self, lr: float, step_size: int, gamma: float = 0.1) -> None:
        self._build(locals())


class MultiStepDecay(_ClosedForm):
    """Decay by ``gamma`` at each milestone (torch ``MultiStepLR``).

    .. math:: s(t) = \\mathrm{lr} \\cdot \\gamma^{\\#\\{i : m_i \\le t\\}}

    A milestone listed ``k`` times decays by ``gamma**k``, as in torch.

    Args:
        lr: Initial value (>= 0).
        milestones: Step counts (integers >= 0) in non-decreasing order.
        gamma: Multiplicative decay (> 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = MultiStepDecay(1.0, milestones=[2, 5, 5], gamma=0.5)
        >>> [s(t) for t in (0, 2, 4, 5)]
        [1.0, 0.5, 0.5, 0.125]
    """

    lr: float
    milestones: Tuple[int, ...]
    gamma: float

    def __init__(self, lr: float, milestones: Iterable[int], gamma: float = 0.1) -> None:
        self._build(locals())


class ExponentialDecay(_ClosedForm):
    """Exponential decay (torch ``ExponentialLR`` when ``decay_steps == 1``).

    .. math:: s(t) = \\mathrm{lr} \\cdot \\gamma^{p}, \\quad
              p = t / \\mathrm{decay\\_steps} \\ (\\lfloor t / \\mathrm{decay\\_steps} \\rfloor
              \\text{ with staircase})

    Args:
        lr: Initial value (>= 0).
        gamma: Decay per ``decay_steps`` steps (> 0).
        decay_steps: Steps over which the value decays by ``gamma`` (integer >= 1).
        staircase: Decay in jumps every ``decay_steps`` steps instead of smoothly.

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> ExponentialDecay(1.0, gamma=0.5)(3)
        0.125
        >>> ExponentialDecay(1.0, gamma=0.5, decay_steps=2, staircase=True)(3)
        0.5
    """

    lr: float
    gamma: float
    decay_steps: int
    staircase: bool

    def __init__(self, lr: float, gamma: float, decay_steps: int = 1, staircase: bool = False) -> None:
        self._build(locals())


class InverseTimeDecay(_ClosedForm):
    """Inverse-time decay (no torch counterpart).

    .. math:: s(t) = \\frac{\\mathrm{lr}}{1 + \\mathrm{decay\\_rate} \\cdot p}, \\quad
              p = t / \\mathrm{decay\\_steps} \\ (\\text{floored with staircase})

    Args:
        lr: Initial value (>= 0).
        decay_rate: Rate of decay (>= 0).
        decay_steps: Steps per unit of ``p`` (integer >= 1).
        staircase: Floor ``p`` so the value changes every ``decay_steps`` steps.

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> InverseTimeDecay(1.0, decay_rate=0.5, decay_steps=10)(20)
        0.5
    """

    lr: float
    decay_rate: float
    decay_steps: int
    staircase: bool

    def __init__(self, lr: float, decay_rate: float, decay_steps: int = 1, staircase: bool = False) -> None:
        self._build(locals())


class PolynomialDecay(_ClosedForm):
    """Polynomial decay to ``end_lr`` (torch ``PolynomialLR`` when ``end_lr == 0``).

    .. math:: s(t) = (\\mathrm{lr} - \\mathrm{end\\_lr})
              \\left(1 - \\frac{\\min(t, T)}{T}\\right)^{\\mathrm{power}} + \\mathrm{end\\_lr},
              \\quad T = \\mathrm{total\\_steps}

    Past ``total_steps`` the value holds at ``end_lr`` (as torch's does).

    Args:
        lr: Initial value (>= 0).
        total_steps: Steps to reach ``end_lr`` (integer >= 1).
        power: Exponent of the polynomial (>= 0).
        end_lr: Final value (>= 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = PolynomialDecay(1.0, total_steps=4, power=2.0)
        >>> [s(t) for t in (0, 2, 4, 100)]
        [1.0, 0.25, 0.0, 0.0]
    """

    lr: float
    total_steps: int
    power: float
    end_lr: float

    def __init__(self, lr: float, total_steps: int, power: float = 1.0, end_lr: float = 0.0) -> None:
        self._build(locals())


class Linear(_ClosedForm):
    """A factor moving linearly from ``start_factor`` to ``end_factor`` (torch ``LinearLR``).

    .. math:: s(t) = \\mathrm{lr} \\left(f_0 + (f_1 - f_0) \\frac{\\min(t, T)}{T}\\right),
              \\quad T = \\mathrm{total\\_steps}

    Args:
        lr: Base value (>= 0).
        start_factor: Factor at ``t = 0``, in (0, 1] (as torch requires).
        end_factor: Factor from ``t = total_steps`` on, in [0, 1].
        total_steps: Steps of the linear change (integer >= 1).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = Linear(1.0, start_factor=0.5, end_factor=1.0, total_steps=4)
        >>> [s(t) for t in (0, 2, 4, 9)]
        [0.5, 0.75, 1.0, 1.0]
    """

    lr: float
    start_factor: float
    end_factor: float
    total_steps: int

    def __init__(
        self, lr: float, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_steps: int = 5
    ) -> None:
        self._build(locals())


class CosineAnnealing(_ClosedForm):
    """Cosine annealing from ``lr`` to ``eta_min`` over ``T_max`` steps (torch ``CosineAnnealingLR``).

    .. math:: s(t) = \\eta_{\\min} + (\\mathrm{lr} - \\eta_{\\min})
              \\frac{1 + \\cos(\\pi t / T_{\\max})}{2}

    Past ``T_max`` the cosine continues (back up to ``lr`` at ``2 * T_max``),
    exactly as torch's scheduler does. To hold ``eta_min`` instead, follow it
    with a :class:`Constant` in a :class:`Sequential`.

    Torch advances this schedule recursively,
    ``(lr_t - eta_min) = (lr_{t-1} - eta_min) * (1 + cos(pi t/T)) / (1 + cos(pi (t-1)/T))``;
    its values drift from the closed form by rounding only (about 2e-12
    relative after 5000 steps), so the closed form is used.

    Args:
        lr: Initial (maximum) value (>= 0).
        T_max: Steps from ``lr`` down to ``eta_min`` (integer >= 1).
        eta_min: Minimum value (>= 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = CosineAnnealing(1.0, T_max=10, eta_min=0.0)
        >>> s(0), s(5), s(10)
        (1.0, 0.5, 0.0)
    """

    lr: float
    T_max: int
    eta_min: float

    def __init__(self, lr: float, T_max: int, eta_min: float = 0.0) -> None:
        self._build(locals())


class CosineAnnealingWarmRestarts(_ClosedForm):
    """Cosine annealing with warm restarts, SGDR (torch ``CosineAnnealingWarmRestarts``).

    Period ``i`` lasts :math:`T_i = T_0 \\cdot T_{\\mathrm{mult}}^i` steps; with
    :math:`T_{cur}` steps taken since the last restart,

    .. math:: s(t) = \\eta_{\\min} + (\\mathrm{lr} - \\eta_{\\min})
              \\frac{1 + \\cos(\\pi T_{cur} / T_i)}{2}

    Args:
        lr: Value at each restart (>= 0).
        T_0: Length of the first period (integer >= 1).
        T_mult: Growth factor of the period after each restart (integer >= 1).
        eta_min: Minimum value (>= 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = CosineAnnealingWarmRestarts(1.0, T_0=4, T_mult=2)
        >>> [round(s(t), 3) for t in (0, 2, 4, 8, 12)]
        [1.0, 0.5, 1.0, 0.5, 1.0]
    """

    lr: float
    T_0: int
    T_mult: int
    eta_min: float

    def __init__(self, lr: float, T_0: int, T_mult: int = 1, eta_min: float = 0.0) -> None:
        self._build(locals())


class Cyclic(_ClosedForm):
    """Cyclical learning rate, CLR (torch ``CyclicLR``).

    A cycle rises for ``step_size_up`` steps from ``base_lr`` towards ``max_lr``
    and falls back for ``step_size_down`` steps. With :math:`L` the cycle
    length, :math:`c = \\lfloor 1 + t/L \\rfloor` the cycle number,
    :math:`x = 1 + t/L - c` and :math:`r` = ``step_size_up`` / :math:`L`:

    .. math:: s(t) = \\mathrm{base\\_lr} + (\\mathrm{max\\_lr} - \\mathrm{base\\_lr})
              \\cdot h(x) \\cdot a, \\quad
              h(x) = \\begin{cases} x / r & x \\le r \\\\ (x - 1)/(r - 1) & x > r \\end{cases}

    with amplitude :math:`a = 1` (``"triangular"``), :math:`2^{1-c}`
    (``"triangular2"``) or :math:`\\gamma^t` (``"exp_range"``).

    Args:
        base_lr: Lower end of the cycle (>= 0).
        max_lr: Upper end of the cycle (>= 0); reached only while ``a == 1``.
        step_size_up: Steps of the rising half (integer >= 1).
        step_size_down: Steps of the falling half (integer >= 0); ``None`` means ``step_size_up``.
        mode: ``"triangular"``, ``"triangular2"`` or ``"exp_range"``.
        gamma: Base of the ``"exp_range"`` amplitude (> 0).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = Cyclic(0.1, 1.0, step_size_up=2)
        >>> [round(s(t), 2) for t in range(5)]
        [0.1, 0.55, 1.0, 0.55, 0.1]
    """

    base_lr: float
    max_lr: float
    step_size_up: int
    step_size_down: int
    mode: CyclicMode
    gamma: float

    def __init__(
        self,
        base_lr: float,
        max_lr: float,
        step_size_up: int = 2000,
        step_size_down: Optional[int] = None,
        mode: CyclicMode = "triangular",
        gamma: float = 1.0,
    ) -> None:
        if step_size_down is None:  # torch: a symmetric cycle
            step_size_down = step_size_up
        self._build(locals())

    _base_field = "base_lr"

    def momentum_schedule(self, base_momentum: float = 0.8, max_momentum: float = 0.9) -> "CyclicMomentum":
        """The momentum torch's ``CyclicLR`` sets with ``cycle_momentum=True``.

        It follows the same cycle inverted: ``max_momentum`` where the learning
        rate is at ``base_lr``, towards ``base_momentum`` where it peaks. Use it
        as SGD's ``momentum`` or as Adam's ``beta1``.

        Args:
            base_momentum: Lower end of the momentum cycle.
            max_momentum: Upper end of the momentum cycle.

        Returns:
            A :class:`CyclicMomentum` with this schedule's cycle.

        Examples:
            >>> m = Cyclic(0.1, 1.0, step_size_up=2).momentum_schedule(0.8, 0.9)
            >>> [round(m(t), 2) for t in range(3)]
            [0.9, 0.85, 0.8]
        """
        return CyclicMomentum(
            base_momentum, max_momentum, self.step_size_up, self.step_size_down, self.mode, self.gamma
        )


class CyclicMomentum(_ClosedForm):
    """The momentum cycle of :class:`Cyclic` (torch ``CyclicLR`` with ``cycle_momentum=True``).

    With :math:`h(x)` and :math:`a` as in :class:`Cyclic`:

    .. math:: m(t) = \\mathrm{max\\_momentum} - (\\mathrm{max\\_momentum} - \\mathrm{base\\_momentum})
              \\cdot h(x) \\cdot a

    Usually made by :meth:`Cyclic.momentum_schedule`.

    Args:
        base_momentum: Momentum at the learning-rate peak, in [0, 1].
        max_momentum: Momentum at the start of each cycle, in [base_momentum, 1].
        step_size_up, step_size_down, mode, gamma: The cycle, as in :class:`Cyclic`.

    Returns:
        Called with ``t``: the momentum above.

    Examples:
        >>> CyclicMomentum(0.8, 0.9, step_size_up=2)(2)
        0.8
    """

    base_momentum: float
    max_momentum: float
    step_size_up: int
    step_size_down: int
    mode: CyclicMode
    gamma: float

    def __init__(
        self,
        base_momentum: float = 0.8,
        max_momentum: float = 0.9,
        step_size_up: int = 2000,
        step_size_down: Optional[int] = None,
        mode: CyclicMode = "triangular",
        gamma: float = 1.0,
    ) -> None:
        if step_size_down is None:  # torch: a symmetric cycle
            step_size_down = step_size_up
        self._build(locals())

    _base_field = None  # a momentum, not a learning rate


class OneCycle(_ClosedForm):
    """The 1cycle policy (torch ``OneCycleLR``).

    From ``initial_lr = max_lr / div_factor`` up to ``max_lr``, then down to
    ``min_lr = initial_lr / final_div_factor``. Phase ends, as torch places
    them (:math:`p` = ``pct_start``, :math:`T` = ``total_steps``):

    - two phases: up on :math:`[0, pT - 1]`, down on :math:`[pT - 1, T - 1]`;
    - ``three_phase``: up on :math:`[0, pT - 1]`, back to ``initial_lr`` on
      :math:`[pT - 1, 2pT - 2]`, down to ``min_lr`` on :math:`[2pT - 2, T - 1]`.

    Within a phase :math:`[a, b]` from value :math:`u` to :math:`v`, with
    :math:`q = (t - a)/(b - a)`:

    .. math:: s(t) = v + (u - v)\\frac{1 + \\cos(\\pi q)}{2} \\ (\\texttt{"cos"}),
              \\qquad s(t) = u + (v - u)\\, q \\ (\\texttt{"linear"})

    Past the end: the value reached at ``t = total_steps - 1`` (``min_lr``)
    holds for every later ``t``. Torch instead extrapolates the last phase
    once more at ``t = total_steps`` (a value never used for a step, possibly
    negative with linear annealing) and raises beyond; that single point is
    the only place this schedule departs from torch.

    Args:
        max_lr: Peak value (>= 0).
        total_steps: Steps in the cycle (integer >= 1).
        pct_start: Fraction of the cycle spent rising, in [0, 1]; ``pct_start * total_steps``
            must not be exactly 1 (torch divides by zero there).
        anneal_strategy: ``"cos"`` or ``"linear"``.
        div_factor: ``initial_lr = max_lr / div_factor`` (> 0).
        final_div_factor: ``min_lr = initial_lr / final_div_factor`` (> 0).
        three_phase: Use the three-phase variant of the original paper.

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = OneCycle(1.0, total_steps=11, pct_start=0.5, anneal_strategy="linear",
        ...              div_factor=10.0, final_div_factor=1.0)
        >>> [round(s(t), 2) for t in (0, 3, 9, 10, 50)]
        [0.1, 0.7, 0.26, 0.1, 0.1]
    """

    max_lr: float
    total_steps: int
    pct_start: float
    anneal_strategy: AnnealStrategy
    div_factor: float
    final_div_factor: float
    three_phase: bool
    _native: _OneCycle

    def __init__(
        self,
        max_lr: float,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: AnnealStrategy = "cos",
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        self._build(locals())

    _base_field = "initial_lr"  # what torch's OneCycleLR records as base_lrs

    @property
    def initial_lr(self) -> float:
        """``max_lr / div_factor``: the value at ``t = 0``."""
        return self._native.initial_lr

    @property
    def min_lr(self) -> float:
        """``initial_lr / final_div_factor``: the value at the end of the cycle."""
        return self._native.min_lr

    def momentum_schedule(self, base_momentum: float = 0.85, max_momentum: float = 0.95) -> "OneCycleMomentum":
        """The momentum torch's ``OneCycleLR`` sets with ``cycle_momentum=True``.

        It runs opposite to the learning rate over the same phases:
        ``max_momentum`` -> ``base_momentum`` -> ``max_momentum`` (with
        ``three_phase``, the last phase holds ``max_momentum``). Use it as SGD's
        ``momentum`` or as Adam's ``beta1``.

        Args:
            base_momentum: Momentum at the learning-rate peak.
            max_momentum: Momentum at the start and end of the cycle.

        Returns:
            A :class:`OneCycleMomentum` with this schedule's phases.

        Examples:
            >>> m = OneCycle(1.0, total_steps=11, pct_start=0.5).momentum_schedule()
            >>> round(m(0), 2), round(m(4), 2), round(m(10), 2)
            (0.95, 0.85, 0.95)
        """
        return OneCycleMomentum(
            self.total_steps, self.pct_start, self.anneal_strategy, self.three_phase, base_momentum, max_momentum
        )


class OneCycleMomentum(_ClosedForm):
    """The momentum of the 1cycle policy (torch ``OneCycleLR`` with ``cycle_momentum=True``).

    Same phases and interpolation as :class:`OneCycle`, through the values
    ``max_momentum`` -> ``base_momentum`` -> ``max_momentum`` (three phases:
    ``max_momentum`` -> ``base_momentum`` -> ``max_momentum`` -> ``max_momentum``).
    Usually made by :meth:`OneCycle.momentum_schedule`.

    Args:
        total_steps, pct_start, anneal_strategy, three_phase: The phases, as in :class:`OneCycle`.
        base_momentum: Momentum at the learning-rate peak, in [0, 1].
        max_momentum: Momentum at the start and end, in [base_momentum, 1].

    Returns:
        Called with ``t``: the momentum.

    Examples:
        >>> OneCycleMomentum(total_steps=100)(0)
        0.95
    """

    total_steps: int
    pct_start: float
    anneal_strategy: AnnealStrategy
    three_phase: bool
    base_momentum: float
    max_momentum: float

    def __init__(
        self,
        total_steps: int,
        pct_start: float = 0.3,
        anneal_strategy: AnnealStrategy = "cos",
        three_phase: bool = False,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
    ) -> None:
        self._build(locals())

    _base_field = None  # a momentum, not a learning rate


class InverseSqrt(_ClosedForm):
    """Linear warmup, then inverse square-root decay (no torch counterpart).

    .. math:: s(t) = \\begin{cases} \\mathrm{lr} \\cdot t / W & t < W \\\\
              \\mathrm{lr} \\sqrt{W / t} & t \\ge W \\end{cases}, \\quad W = \\mathrm{warmup\\_steps}

    Args:
        lr: Peak value, reached at ``t = warmup_steps`` (>= 0).
        warmup_steps: Steps of the linear warmup (integer >= 1).

    Returns:
        Called with ``t``: the value above.

    Examples:
        >>> s = InverseSqrt(1.0, warmup_steps=4)
        >>> [s(t) for t in (0, 2, 4, 16)]
        [0.0, 0.5, 1.0, 0.5]
    """

    lr: float
    warmup_steps: int

    def __init__(self, lr: float, warmup_steps: int) -> None:
        self._build(locals())
