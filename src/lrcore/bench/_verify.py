"""Result checks: a contender is timed only after one of its steps matched the reference."""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

__all__ = ["TOLERANCE", "deviation", "rms_deviation", "state_deviation", "sign_ties", "SIGN_TIE"]

#: Largest accepted deviation from the reference, relative to the size of the
#: reference's change. float32 allows a few units in the last place of the
#: parameter on top of an update 1e-3 its size (torch's fused kernels round
#: differently); a wrong formula or a skipped element is far above it.
TOLERANCE: Dict[np.dtype, float] = {np.dtype(np.float32): 1e-3, np.dtype(np.float64): 1e-9}


def deviation(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray],
              initial: Optional[Sequence[Optional[np.ndarray]]] = None,
              ties: Optional[Sequence[Optional[np.ndarray]]] = None) -> float:
    """max |actual - expected| over all arrays, divided by max |expected - initial| (initial: zeros when None).

    ``ties`` (boolean masks, one per array, from :func:`sign_ties`) marks
    elements whose update is a sign decided by rounding: there the difference
    may be up to two whole updates (a flipped sign) and is left out of the
    maximum; anything larger still counts. Returns inf when any value is not
    finite where the reference's is, or when shapes differ.
    """
    if len(actual) != len(expected):
        return float("inf")
    error = 0.0
    change = 0.0
    tied: List[np.ndarray] = []
    slack = 0.0
    for k, (a, e) in enumerate(zip(actual, expected)):
        if a is None and e is None:  # a state this parameter does not have (Adafactor's vectors: no row_var)
            continue
        if a is None or e is None or a.shape != e.shape:
            return float("inf")
        x = None if initial is None else initial[k]
        difference = np.abs(a - e, dtype=np.float64)
        mask = None if ties is None else ties[k]
        if mask is not None and mask.any():
            tied.append(difference[mask])
            difference[mask] = 0.0
            slack = max(slack, TOLERANCE.get(np.dtype(a.dtype), TOLERANCE[np.dtype(np.float32)]))
        worst = float(np.max(difference, initial=0.0))
        if worst != worst:  # NaN somewhere: fine only where the reference has the same NaN
            if not np.array_equal(np.isnan(a), np.isnan(e)):
                return float("inf")
            worst = float(np.nanmax(difference, initial=0.0))
        error = max(error, worst)
        moved = np.abs(e if x is None else e - x, dtype=np.float64)
        change = max(change, float(np.nanmax(moved, initial=0.0)))
    for difference in tied:  # a flipped sign moves an element by at most twice the largest update
        beyond = float(np.max(difference, initial=0.0)) - 2.0 * change
        if not beyond <= slack * change:
            error = max(error, float("inf") if beyond != beyond else beyond)
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


#: How close to zero, relative to the size of its two terms, Lion's direction
#: beta1 * m + (1 - beta1) * g must be for its sign to count as a tie that
#: rounding decides. Implementations round the coefficients differently
#: (DeepSpeed's 1 - beta1 taken in float32 is 2.4e-7 away from lrcore's), so a
#: float32 direction within a few 1e-7 of cancelling can take either sign;
#: 1e-6 covers that with room, and such ties are about one element in 10^7
#: for normal gradients.
SIGN_TIE: Dict[np.dtype, float] = {np.dtype(np.float32): 1e-6, np.dtype(np.float64): 1e-14}


def sign_ties(rule_name: str, hyperparameters: Mapping[str, Any], params: Sequence[np.ndarray],
              first: Sequence[np.ndarray], second: Sequence[np.ndarray]) -> Optional[List[np.ndarray]]:
    """For a rule whose update is a sign (Lion), the elements whose sign is a tie at either of the
    two verification steps (gradients ``first`` then ``second`` from zero state), one boolean mask
    per parameter; None for every other rule.

    Recomputed in float64 from the gradients: the first direction is
    (1 - beta1) * g1, the second beta1 * m1 + (1 - beta1) * g2 with
    m1 = (1 - beta2) * g1. A tie is a direction within ``SIGN_TIE`` of the
    sum of its terms' magnitudes (a first direction ties only where g1 is 0).
    """
    if rule_name != "lion":
        return None
    beta1, beta2 = float(hyperparameters["beta1"]), float(hyperparameters["beta2"])
    masks = []
    for p, g1, g2 in zip(params, first, second):
        relative = SIGN_TIE[np.dtype(p.dtype)]
        g1 = np.asarray(g1, dtype=np.float64)
        g2 = np.asarray(g2, dtype=np.float64)
        momentum = beta1 * ((1.0 - beta2) * g1)
        step2 = (1.0 - beta1) * g2
        masks.append((g1 == 0.0) | (np.abs(momentum + step2) <= relative * (np.abs(momentum) + np.abs(step2))))
    return masks
