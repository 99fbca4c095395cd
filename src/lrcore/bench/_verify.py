"""Result checks: a contender is timed only after one of its steps matched the reference."""

from __future__ import annotations

from typing import Dict, Mapping, Optional, Sequence

import numpy as np

__all__ = ["TOLERANCE", "deviation", "rms_deviation", "state_deviation"]

#: Largest accepted deviation from the reference, relative to the size of the
#: reference's change. float32 allows a few units in the last place of the
#: parameter on top of an update 1e-3 its size (torch's fused kernels round
#: differently); a wrong formula or a skipped element is far above it.
TOLERANCE: Dict[np.dtype, float] = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}


def deviation(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray],
              initial: Optional[Sequence[Optional[np.ndarray]]] = None) -> float:
    """max |actual - expected| over all arrays, divided by max |expected - initial| (initial: zeros when None).

    Returns inf when any value is not finite where the reference's is, or
    when shapes differ.
    """
    if len(actual) != len(expected):
        return float("inf")
    error = 0.0
    change = 0.0
    for k, (a, e) in enumerate(zip(actual, expected)):
        if a is None or a.shape != e.shape:
            return float("inf")
        x = None if initial is None else initial[k]
        difference = np.abs(a - e, dtype=np.float64)
        worst = float(np.max(difference, initial=0.0))
        if worst != worst:  # NaN somewhere: fine only where the reference has the same NaN
            if not np.array_equal(np.isnan(a), np.isnan(e)):
                return float("inf")
            worst = float(np.nanmax(difference, initial=0.0))
        error = max(error, worst)
        moved = np.abs(e if x is None else e - x, dtype=np.float64)
        change = max(change, float(np.nanmax(moved, initial=0.0)))
    return error / change if change > 0 else error


def rms_deviation(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray],
                  initial: Optional[Sequence[Optional[np.ndarray]]] = None) -> float:
    """The root mean square of ``actual - expected`` over all elements, divided by that of ``expected - initial``.

    For optimizers that quantize their state (8-bit moments): a few elements
    whose moments round to a coarse level can move by a fifth of the update
    while the update as a whole stays within a percent, so the worst element
    says nothing about whether the formula is right; the mean square does (a
    wrong formula, such as no bias correction, moves it by tens of percent).
    Returns inf for mismatched shapes or a non-finite difference.
    """
    if len(actual) != len(expected):
        return float("inf")
    error = 0.0
    change = 0.0
    for k, (a, e) in enumerate(zip(actual, expected)):
        if a is None or a.shape != e.shape:
            return float("inf")
        x = None if initial is None else initial[k]
        error += float(np.sum(np.square(a - e, dtype=np.float64)))
        change += float(np.sum(np.square(e if x is None else e - x, dtype=np.float64)))
    if not np.isfinite(error):
        return float("inf")
    return float(np.sqrt(error / change)) if change > 0 else float(np.sqrt(error))


def state_deviation(actual: Optional[Mapping[str, Sequence[np.ndarray]]], expected: Mapping[str, Sequence[np.ndarray]],
                    names: Sequence[str]) -> float:
    """The worst :func:`deviation` over the named state lists (state starts at zero)."""
    if actual is None:
        raise TypeError("the runner has no state to compare")
    worst = 0.0
    for name in names:
        worst = max(worst, deviation(actual[name], expected[name]))
    return worst
