"""Learning-rate schedules: hyperparameters as pure functions of the step count.

A schedule ``s`` is called with ``t``, the number of optimizer steps already
taken, and returns the value for step ``t + 1``. Every lrcore optimizer
hyperparameter accepts a float or a :class:`Schedule`.

The closed forms are implemented once, in C++ (``lrcore/schedules.hpp``, also
usable from C++), and reproduce torch.optim.lr_scheduler to rounding; see
docs/schedules.md for the formulas and the equivalence table.

Examples:
    >>> from lrcore.schedules import CosineAnnealing, Warmup
    >>> lr = Warmup(CosineAnnealing(0.1, T_max=1000), warmup_steps=100)
    >>> lr(0), lr(100)
    (0.0, 0.1)
"""

from ._base import Product, Scaled, Schedule
from ._closed_form import (
    Constant,
    CosineAnnealing,
    CosineAnnealingWarmRestarts,
    Cyclic,
    CyclicMomentum,
    ExponentialDecay,
    InverseSqrt,
    InverseTimeDecay,
    Linear,
    MultiStepDecay,
    OneCycle,
    OneCycleMomentum,
    PolynomialDecay,
    StepDecay,
)
from ._composite import Chained, Lambda, Sequential, Warmup
from ._plateau import ReduceOnPlateau

__all__ = [
    "Schedule",
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
    "Lambda",
    "Sequential",
    "Chained",
    "Warmup",
    "InverseSqrt",
    "ReduceOnPlateau",
    "Scaled",
    "Product",
]
