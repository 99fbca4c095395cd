"""Whole-gradient operations before a step: a non-finite check, global-norm and value clipping.

All run natively over a list of arrays (float32 and float64 may be mixed;
``None`` entries are skipped), chunked over lrcore's thread pool without the
GIL. Norms are reduced in a fixed order (per-chunk partial sums in double at
fixed chunk boundaries, added in chunk order), so they do not depend on the
thread count.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence, Union

import numpy as np

from . import _core

__all__ = ["all_finite", "clip_grad_norm", "clip_grad_value", "global_norm"]

GradList = Union[np.ndarray, Sequence[Optional[np.ndarray]]]


def _as_list(grads: Any) -> Any:
    return [grads] if isinstance(grads, np.ndarray) else grads


def _norm_type(norm_type: Any) -> float:
    if isinstance(norm_type, str) and norm_type.lower() == "inf":
        return math.inf
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"norm_type must be a number > 0 or inf, got {type(norm_type).__name__}")
    value = float(norm_type)
    if not value > 0:
        raise ValueError(f"norm_type must be > 0 or inf, got {norm_type!r}")
    return value


def all_finite(grads: GradList) -> bool:
    """True when no element of any gradient is NaN or +-Inf.

    Args:
        grads: an array or a list of arrays (``None`` entries are skipped).
            Arrays must be C-contiguous float32 or float64; they are only read.
    """
    return bool(_core.gradients.all_finite(_as_list(grads)))


def global_norm(grads: GradList, norm_type: Union[float, str] = 2.0) -> float:
    """The p-norm of all gradient elements taken as one vector.

    ``(sum over all elements of |x|^p)^(1/p)``, or ``max |x|`` for ``norm_type=inf``.
    """
    return float(_core.gradients.global_norm(_as_list(grads), _norm_type(norm_type)))


def clip_grad_norm(
    grads: GradList,
    max_norm: float,
    norm_type: Union[float, str] = 2.0,
    error_if_nonfinite: bool = False,
) -> float:
    """Clips gradients in place by their global norm (torch.nn.utils.clip_grad_norm_ semantics).

    With ``total = global_norm(grads, norm_type)``, every gradient is scaled by
    ``max_norm / (total + 1e-6)`` when that is < 1 (the factor is computed in
    double and rounded once to each array's dtype). The norm is computed in
    double with a fixed-order reduction, so it is the same for any thread count.

    When ``total`` is NaN or Inf the gradients are left unchanged (torch would
    scale them by a NaN or zero factor), so a later non-finite check such as
    ``skip_nonfinite=True`` on the optimizer still sees and rejects them.

    Args:
        grads: an array or a list of arrays (``None`` entries are skipped);
            C-contiguous float32/float64, writeable, not overlapping each other.
        max_norm: the largest allowed total norm (>= 0; ``inf`` disables clipping).
        norm_type: p of the p-norm: a number > 0, or ``inf`` (``float("inf")`` or ``"inf"``).
        error_if_nonfinite: raise ``RuntimeError`` (changing nothing) when the
            total norm is NaN or Inf.

    Returns:
        The total norm before clipping.

    Examples:
        >>> import numpy as np, lrcore
        >>> g = [np.full(4, 3.0, np.float32)]
        >>> lrcore.clip_grad_norm(g, max_norm=1.0)
        6.0
        >>> float(np.linalg.norm(g[0])) < 1.0
        True
    """
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real):
        raise TypeError(f"max_norm must be a number, got {type(max_norm).__name__}")
    if not float(max_norm) >= 0:
        raise ValueError(f"max_norm must be >= 0, got {max_norm!r}")
    if not isinstance(error_if_nonfinite, (bool, np.bool_)):
        raise TypeError(f"error_if_nonfinite must be a bool, got {type(error_if_nonfinite).__name__}")
    return float(_core.gradients.clip_grad_norm(_as_list(grads), float(max_norm), _norm_type(norm_type),
                                                bool(error_if_nonfinite)))


def clip_grad_value(grads: GradList, clip_value: float) -> None:
    """Clamps every gradient element to ``[-clip_value, clip_value]``, in place
    (torch.nn.utils.clip_grad_value_ semantics).

    ``clip_value`` is rounded once to each array's dtype; NaN elements stay NaN
    (so a later non-finite check still sees them).

    Args:
        grads: an array or a list of arrays (``None`` entries are skipped);
            C-contiguous float32/float64, writeable, not overlapping each other.
        clip_value: the largest allowed magnitude (>= 0; ``inf`` changes nothing finite).

    Examples:
        >>> import numpy as np, lrcore
        >>> g = np.array([-3.0, 0.5, 2.0])
        >>> lrcore.clip_grad_value(g, 1.0)
        >>> g
        array([-1. ,  0.5,  1. ])
    """
    if isinstance(clip_value, bool) or not isinstance(clip_value, numbers.Real):
        raise TypeError(f"clip_value must be a number, got {type(clip_value).__name__}")
    _core.gradients.clip_grad_value(_as_list(grads), float(clip_value))
