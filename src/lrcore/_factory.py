"""Optimizers by name, for frameworks configured by text (a config file, a command line).

The names are the optimizer classes' (torch.optim's spelling), matched without
regard to case; the table is the rule descriptions', so a new rule is available
here as soon as it is described.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Type

from .optim import _classes
from .optim._optimizer import Optimizer

__all__ = ["available_optimizers", "create_optimizer"]


def _classes_by_name() -> Dict[str, Type[Optimizer]]:
    return {name.lower(): getattr(_classes, name) for name in _classes.__all__}


def available_optimizers() -> List[str]:
    """The optimizer names :func:`create_optimizer` accepts, as torch spells them (e.g. ``"AdamW"``)."""
    return list(_classes.__all__)


def create_optimizer(name: str, params: Iterable[Any], **hyperparameters: Any) -> Optimizer:
    """The optimizer called ``name`` (case-insensitive) over ``params``.

    Args:
        name: an optimizer name from :func:`available_optimizers`, e.g. ``"adamw"`` or ``"SGD"``.
        params: arrays, ``(name, array)`` pairs or parameter groups, as the class takes them.
        **hyperparameters: the class's keyword arguments (``lr``, ``betas``, ``skip_nonfinite``, ...).

    Raises:
        ValueError: an unknown name (the message lists the known ones).
        TypeError: a keyword argument the optimizer does not take.

    Examples:
        >>> import numpy as np, lrcore
        >>> opt = lrcore.create_optimizer("adamw", [np.zeros(3)], lr=1e-3, weight_decay=0.0)
        >>> type(opt).__name__
        'AdamW'
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {type(name).__name__}")
    cls = _classes_by_name().get(name.strip().lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; available: {', '.join(available_optimizers())}")
    known = set(cls.rule.defaults) | {"skip_nonfinite", "max_grad_norm", "norm_type"}
    unknown = sorted(set(hyperparameters) - known)
    if unknown:
        raise TypeError(f"{cls.__name__} takes no argument(s) {', '.join(unknown)}; it takes "
                        f"{', '.join(cls.rule.defaults)}, skip_nonfinite, max_grad_norm and norm_type")
    return cls(params, **hyperparameters)
